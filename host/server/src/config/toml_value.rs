//! Turning TOML values into Postfix-style strings, with their positions.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A value as written, reduced to a Postfix string, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// The value: arrays joined with `, `, booleans as `yes`/`no`.
    pub value: String,
    /// Byte offset of the value in the file.
    pub offset: usize,
}

/// Reduces a scalar or a list of scalars to a string, or says what was found.
pub fn scalar(value: &Spanned<DeValue<'_>>) -> Result<Raw, String> {
    let offset = value.span().start;
    let text = match value.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => integer(i.as_str(), i.radix())?,
        DeValue::Boolean(b) => if *b { "yes" } else { "no" }.to_owned(),
        DeValue::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => parts.push(s.to_string()),
                    DeValue::Integer(i) => parts.push(integer(i.as_str(), i.radix())?),
                    other => {
                        return Err(format!(
                            "list items must be strings, found {}",
                            other.type_str()
                        ));
                    }
                }
            }
            parts.join(", ")
        }
        other => {
            return Err(format!(
                "expected a string, integer, boolean or list, found {}",
                other.type_str()
            ));
        }
    };
    Ok(Raw {
        value: text,
        offset,
    })
}

fn integer(digits: &str, radix: u32) -> Result<String, String> {
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    i128::from_str_radix(&clean, radix)
        .map(|n| n.to_string())
        .map_err(|_| format!("bad integer {digits:?}"))
}

/// The table under `value`, or what was found instead.
pub fn table<'a, 'i>(value: &'a Spanned<DeValue<'i>>) -> Result<&'a DeTable<'i>, String> {
    value
        .get_ref()
        .as_table()
        .ok_or_else(|| format!("expected a table, found {}", value.get_ref().type_str()))
}
