//! Restriction classes (Postfix `smtpd_restriction_classes`): named lists
//! that a restriction list, or an access map's answer, names to have them
//! evaluated in place (`postern_policy::PolicyConfig::classes`).
//!
//! Two spellings. Postfix's, as main.cf writes it, at the top level:
//!
//! ```toml
//! smtpd_restriction_classes = "from_freemail, verified"
//! from_freemail = "reject_rbl_client zen.example, permit"
//! verified = ["permit_sasl_authenticated", "reject"]
//! ```
//!
//! and a table that needs no list of names:
//!
//! ```toml
//! [smtpd.restriction_classes]
//! from_freemail = "reject_rbl_client zen.example, permit"
//! ```
//!
//! A class is written as a restriction list is (a main.cf string, or an
//! array of strings and tables), `$name`-expanded. A name listed in
//! `smtpd_restriction_classes` without a definition is an error, as it is
//! in Postfix (`restriction class 'x' needs a definition`); so is a class
//! defined twice or empty. Loops and names taken by plugins are found when
//! the policy is loaded (`postern check`, start-up, reload).

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::DeValue;

use super::error::{ConfigError, Source};
use super::sections::{self, Context, RawItem, Restriction};
use super::toml_value;

/// The parameter that names the top-level classes.
pub const PARAM: &str = "smtpd_restriction_classes";

/// Classes as read, before expansion.
#[derive(Debug, Default)]
pub(super) struct RawClasses {
    /// By name.
    defined: BTreeMap<String, RawClass>,
}

/// One class's definition as read.
#[derive(Debug)]
struct RawClass {
    /// The key errors about its items name.
    key: String,
    /// Its items, each with the offset it was read at.
    items: Vec<(usize, RawItem)>,
}

impl RawClasses {
    /// `[smtpd.restriction_classes]`: `NAME = list`, each.
    pub(super) fn read_table(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        let key = "smtpd.restriction_classes";
        match toml_value::table(value) {
            Err(msg) => errors.push(src.error(Some(value.span().start), key, msg)),
            Ok(table) => {
                for (name, v) in table.iter() {
                    let name = name.get_ref().as_ref();
                    self.define(name, &format!("{key}.{name}"), v, src, errors);
                }
            }
        }
    }

    /// A top-level `NAME = list` that [`PARAM`] names.
    pub(super) fn read_top(
        &mut self,
        name: &str,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        self.define(name, name, value, src, errors);
    }

    fn define(
        &mut self,
        name: &str,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        let at = value.span().start;
        if !is_name(name) {
            errors.push(src.error(
                Some(at),
                key,
                "not a restriction class name (a letter, then letters, digits, '_' or '-')",
            ));
            return;
        }
        if self.defined.contains_key(name) {
            errors.push(src.error(
                Some(at),
                key,
                format!("restriction class {name} is defined twice"),
            ));
            return;
        }
        let items = sections::read_items(key, value, src, errors);
        if items.is_empty() {
            errors.push(src.error(
                Some(at),
                key,
                format!("restriction class {name} needs a definition (a list of restrictions)"),
            ));
        }
        let class = RawClass {
            key: key.to_owned(),
            items,
        };
        self.defined.insert(name.to_owned(), class);
    }

    /// The classes, expanded; every name [`PARAM`] lists must be defined.
    pub(super) fn resolve(
        self,
        ctx: &Context<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> BTreeMap<String, Vec<Restriction>> {
        if let Some(raw) = ctx.set.get(PARAM) {
            for name in listed(&raw.value) {
                if !self.defined.contains_key(name) {
                    errors.push(ctx.source.error(
                        Some(raw.offset),
                        PARAM,
                        format!(
                            "restriction class {name} needs a definition: a top-level \
                             {name} = \"...\" or {name} in [smtpd.restriction_classes]"
                        ),
                    ));
                }
            }
        }
        self.defined
            .into_iter()
            .map(|(name, RawClass { key, items })| {
                let list = sections::resolve_items(&items, &key, ctx.lookup, ctx.source, errors);
                (name, list)
            })
            .collect()
    }
}

/// The names a [`PARAM`] value lists, separated by commas or white space.
pub(super) fn listed(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
}

/// A main.cf parameter name: a letter, then letters, digits, `_`, `-`.
fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
