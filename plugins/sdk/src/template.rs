//! Reply templates with Postfix's `$name` expansion (`mac_expand`), as
//! `default_rbl_reply` and `rbl_reply_maps` are written:
//! `"$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using
//! $rbl_domain${rbl_reason?; $rbl_reason}"`.
//!
//! Supported: `$name`, `${name}`, `$(name)`, `${name?text}` (text when the
//! value is not empty), `${name:text}` (text when it is empty), and `$$`
//! for a dollar sign. Names are checked when the template is parsed, so a
//! misspelt one is an error at load time, as Postfix refuses a template
//! with an undefined name.

use crate::{Reply, Verdict};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(String),
    IfSet(String, Template),
    IfEmpty(String, Template),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template(Vec<Part>);

impl Template {
    /// Parses `text`; `known` says which names may appear.
    pub fn parse(text: &str, known: &dyn Fn(&str) -> bool) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let (name, tail, consumed) = match rest.chars().next() {
                Some(open @ ('{' | '(')) => {
                    let close = if open == '{' { '}' } else { ')' };
                    let end = matching(rest, open, close)
                        .ok_or_else(|| format!("unbalanced {open:?} in {text:?}"))?;
                    let inner = &rest[1..end];
                    let split = inner.find(['?', ':']).unwrap_or(inner.len());
                    let (name, tail) = inner.split_at(split);
                    (name, Some(tail), end + 1)
                }
                _ => {
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    (&rest[..end], None, end)
                }
            };
            if name.is_empty() {
                return Err(format!("a '$' without a name in {text:?}"));
            }
            if !known(name) {
                return Err(format!("unknown name ${name} in {text:?}"));
            }
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            let name = name.to_owned();
            parts.push(match tail {
                None | Some("") => Part::Value(name),
                Some(t) if t.starts_with('?') => {
                    Part::IfSet(name, Template::parse(&t[1..], known)?)
                }
                Some(t) => Part::IfEmpty(name, Template::parse(&t[1..], known)?),
            });
            rest = &rest[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template(parts))
    }

    /// Every name the template uses, nested ones included, in order of
    /// appearance (repeats kept).
    pub fn names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        for part in &self.0 {
            match part {
                Part::Text(_) => {}
                Part::Value(n) => names.push(n.as_str()),
                Part::IfSet(n, t) | Part::IfEmpty(n, t) => {
                    names.push(n.as_str());
                    names.extend(t.names());
                }
            }
        }
        names
    }

    /// The text with each name replaced by `value(name)` (empty if none).
    pub fn expand(&self, value: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(n) => out.push_str(&value(n).unwrap_or_default()),
                Part::IfSet(n, t) => {
                    if value(n).is_some_and(|v| !v.is_empty()) {
                        out.push_str(&t.expand(value));
                    }
                }
                Part::IfEmpty(n, t) => {
                    if value(n).is_none_or(|v| v.is_empty()) {
                        out.push_str(&t.expand(value));
                    }
                }
            }
        }
        out
    }
}

/// The byte offset in `s` (which starts with `open`) of the `close` that
/// balances it.
fn matching(s: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// An expanded reply text "CODE [D.D.D] text" as a verdict, the way
/// Postfix's `rbl_reject_reply` reads it: the code must be 4xx or 5xx and
/// followed by a space, else the reply is "450 4.7.1 Service unavailable"
/// (and the caller logs the bad template); the enhanced code defaults to
/// `default_dsn` with its class digit made to agree with the code.
pub fn reply_verdict(expanded: &str, default_dsn: &str) -> Result<Verdict, Verdict> {
    let service_unavailable = || Verdict::Reject(fixed(450, "4.7.1", "Service unavailable"));
    let bytes = expanded.as_bytes();
    let well_formed = bytes.len() >= 4
        && matches!(bytes[0], b'4' | b'5')
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
        && bytes[3] == b' ';
    if !well_formed {
        return Err(service_unavailable());
    }
    let code: u16 = expanded[..3].parse().map_err(|_| service_unavailable())?;
    let rest = expanded[4..].trim_start();
    let (dsn, text) = match rest.split_once(' ') {
        Some((d, t)) if is_dsn(d) => (d, t),
        _ if is_dsn(rest) => (rest, ""),
        _ => (default_dsn, rest),
    };
    let text = if text.is_empty() {
        "Service unavailable"
    } else {
        text
    };
    Ok(Verdict::Reject(fixed(code, dsn, text)))
}

/// `D.D.D` with a 2, 4 or 5 class (RFC 3463 §2).
fn is_dsn(s: &str) -> bool {
    let mut fields = s.split('.');
    let ok = |f: Option<&str>, max: usize| {
        f.is_some_and(|f| !f.is_empty() && f.len() <= max && f.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(s.as_bytes().first(), Some(b'2' | b'4' | b'5'))
        && ok(fields.next(), 1)
        && ok(fields.next(), 3)
        && ok(fields.next(), 3)
        && fields.next().is_none()
}

/// A reply whose enhanced code's class digit agrees with `code` (Postfix
/// rewrites "4.7.1" to "5.7.1" for a 554 the same way).
pub fn fixed(code: u16, dsn: &str, text: &str) -> Reply {
    let class = match code / 100 {
        4 => '4',
        5 => '5',
        _ => '2',
    };
    let enhanced = match dsn.split_once('.') {
        Some((_, rest)) => format!("{class}.{rest}"),
        None => String::new(),
    };
    Reply {
        code,
        enhanced,
        text: text.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn any(_: &str) -> bool {
        true
    }

    fn vars(name: &str) -> Option<String> {
        match name {
            "rbl_code" => Some("554".to_owned()),
            "rbl_class" => Some("Client host".to_owned()),
            "rbl_what" => Some("192.0.2.1".to_owned()),
            "rbl_domain" => Some("rbl.test".to_owned()),
            "rbl_reason" => Some("listed".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn postfix_default_rbl_reply() {
        let t = Template::parse(
            "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using \
             $rbl_domain${rbl_reason?; $rbl_reason}",
            &any,
        )
        .unwrap();
        assert_eq!(
            t.expand(&vars),
            "554 Service unavailable; Client host [192.0.2.1] blocked using rbl.test; listed"
        );
        let no_reason = |n: &str| if n == "rbl_reason" { None } else { vars(n) };
        assert_eq!(
            t.expand(&no_reason),
            "554 Service unavailable; Client host [192.0.2.1] blocked using rbl.test"
        );
    }

    #[test]
    fn forms_and_errors() {
        let t = Template::parse("$$x ${rbl_reason:none} $(rbl_code)", &any).unwrap();
        assert_eq!(t.expand(&|_| None), "$x none ");
        let known = |n: &str| n.starts_with("rbl_");
        assert!(Template::parse("$rbl_cod", &|n| n == "rbl_code").is_err());
        assert!(Template::parse("${rbl_code", &known).is_err());
        assert!(Template::parse("$ x", &known).is_err());
        assert!(Template::parse("${rbl_reason?${nope}}", &known).is_err());
    }

    #[test]
    fn reply_text_to_verdict() {
        let show = |r: Result<Verdict, Verdict>| format!("{r:?}");
        let ok = |code, dsn, text| show(Ok(Verdict::Reject(fixed(code, dsn, text))));
        assert_eq!(
            show(reply_verdict("554 Service unavailable; x", "4.7.1")),
            ok(554, "5.7.1", "Service unavailable; x")
        );
        assert_eq!(
            show(reply_verdict("451 4.7.0 later", "4.7.1")),
            ok(451, "4.7.0", "later")
        );
        assert_eq!(
            show(reply_verdict("250 fine", "4.7.1")),
            show(Err(Verdict::Reject(fixed(
                450,
                "4.7.1",
                "Service unavailable"
            ))))
        );
        assert_eq!(fixed(554, "4.7.1", "x").enhanced, "5.7.1");
    }
}
