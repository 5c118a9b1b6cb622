//! `$name` expansion in parameter values, as Postfix's `mac_expand(3)`.
//!
//! `$name`, `${name}` and `$(name)` are replaced by the named parameter's
//! value, itself expanded; `${name?text}` gives `text` when `name` is
//! non-empty and `${name:text}` when it is empty; `$$` is a literal `$`.
//! Unlike Postfix, a name that is not a parameter is an error, not an empty
//! string: a typo in `$mydomian` should stop a config check, not silently
//! accept mail for the wrong domain.

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `$name` names no parameter.
    Unknown(String),
    /// `a = $b`, `b = $a`.
    Recursive(String),
    /// `${name` without its closing brace, or `$` at the end.
    Syntax(String),
    /// The value grew past `MAX_EXPANDED`: names that each repeat the
    /// next (`a = $b$b$b`, `b = $c$c$c`, ...) multiply a small file into
    /// gigabytes (found writing the config fuzz target; fuzz/corpus/config/).
    TooLong(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Unknown(n) => write!(f, "unknown parameter ${n} in value"),
            ExpandError::Recursive(n) => write!(f, "${n} refers to itself (recursive expansion)"),
            ExpandError::Syntax(s) => write!(f, "bad $name syntax: {s}"),
            ExpandError::TooLong(n) => write!(
                f,
                "${n} expands to more than {MAX_EXPANDED} bytes (names that repeat each other)"
            ),
        }
    }
}

/// How deep `$a` → `$b` → ... may go before we call it a loop. Postfix
/// uses 100 (`mac_expand`'s recursion limit); real configs need 3 or 4.
const MAX_DEPTH: usize = 100;

/// The longest value expansion may build, far above any real list
/// (`mynetworks`, `mydestination`): it bounds both memory and time, since
/// every level stops as soon as its own text passes it.
const MAX_EXPANDED: usize = 1 << 20;

/// Expands `value`, looking names up with `lookup` (which returns the raw,
/// unexpanded value of a parameter, or `None` if there is no such one).
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    expand_at(value, lookup, &mut Vec::new())
}

fn expand_at(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    stack: &mut Vec<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, modifier, consumed) = match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
                continue;
            }
            Some(open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                let end = after.find(close).ok_or_else(|| {
                    ExpandError::Syntax(format!("missing '{close}' in {value:?}"))
                })?;
                let inner = &after[1..end];
                match inner.find(['?', ':']) {
                    Some(i) => (
                        &inner[..i],
                        Some((&inner[i..i + 1], &inner[i + 1..])),
                        end + 1,
                    ),
                    None => (inner, None, end + 1),
                }
            }
            _ => {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..len], None, len)
            }
        };
        if name.is_empty() {
            return Err(ExpandError::Syntax(format!(
                "'$' without a name in {value:?}"
            )));
        }
        if stack.iter().any(|n| n == name) || stack.len() >= MAX_DEPTH {
            return Err(ExpandError::Recursive(name.to_owned()));
        }
        let raw = lookup(name).ok_or_else(|| ExpandError::Unknown(name.to_owned()))?;
        stack.push(name.to_owned());
        let expanded = expand_at(&raw, lookup, stack)?;
        match modifier {
            None => out.push_str(&expanded),
            Some(("?", text)) if !expanded.is_empty() => {
                out.push_str(&expand_at(text, lookup, stack)?)
            }
            Some((":", text)) if expanded.is_empty() => {
                out.push_str(&expand_at(text, lookup, stack)?)
            }
            Some(_) => {}
        }
        if out.len() > MAX_EXPANDED {
            return Err(ExpandError::TooLong(name.to_owned()));
        }
        stack.pop();
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(name: &str) -> Option<String> {
        match name {
            "myhostname" => Some("mx.example.com".into()),
            "mydomain" => Some("example.com".into()),
            "myorigin" => Some("$myhostname".into()),
            "empty" => Some(String::new()),
            "a" => Some("$b".into()),
            "b" => Some("${a}".into()),
            _ => None,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(
            expand("$myhostname ESMTP", &params).unwrap(),
            "mx.example.com ESMTP"
        );
        assert_eq!(
            expand("localhost.${mydomain}", &params).unwrap(),
            "localhost.example.com"
        );
        assert_eq!(expand("$(myorigin)", &params).unwrap(), "mx.example.com");
        assert_eq!(expand("cost $$5", &params).unwrap(), "cost $5");
        assert_eq!(
            expand("${mydomain?yes}${empty?no}", &params).unwrap(),
            "yes"
        );
        assert_eq!(expand("${empty:fallback}", &params).unwrap(), "fallback");
    }

    #[test]
    fn errors() {
        assert_eq!(
            expand("$nope", &params),
            Err(ExpandError::Unknown("nope".into()))
        );
        assert!(matches!(
            expand("$a", &params),
            Err(ExpandError::Recursive(_))
        ));
        assert!(matches!(
            expand("${mydomain", &params),
            Err(ExpandError::Syntax(_))
        ));
        assert!(matches!(
            expand("end $", &params),
            Err(ExpandError::Syntax(_))
        ));
    }

    /// Found writing the config fuzz target: eight names, each ten times
    /// the next, made a 1 KB file expand to gigabytes and `postern check`
    /// hang.
    #[test]
    fn multiplying_names_are_refused() {
        let names = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
        let lookup = |name: &str| {
            let i = names.iter().position(|n| *n == name)?;
            Some(match names.get(i + 1) {
                Some(next) => format!("${next}").repeat(10),
                None => "xxxxxxxxxx".to_owned(),
            })
        };
        let started = std::time::Instant::now();
        assert!(matches!(
            expand("$n0", &lookup),
            Err(ExpandError::TooLong(_))
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(expand("$n6", &lookup).unwrap().len(), 100);
    }
}
