//! ENVELOPE (RFC 3501 §7.4.2): ten header fields, the address ones split
//! into (name adl mailbox host) quadruples, groups marked as the RFC says
//! (`(NIL NIL "group" NIL)` ... `(NIL NIL NIL NIL)`).

use super::fields;
use crate::codec::response::{nstring, string};

/// One address, or a group marker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// The display name.
    pub name: Option<String>,
    /// The local part (the group's name in a group start).
    pub mailbox: Option<String>,
    /// The domain.
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Special(char),
}

fn tokens(value: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => {
                // A comment, nested ones too (RFC 5322 §3.2.2).
                let mut depth = 1;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => s.extend(chars.next()),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                out.push(Tok::Quoted(s));
            }
            '<' | '>' | ',' | ':' | ';' | '@' | '.' => out.push(Tok::Special(c)),
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "()<>,:;@.\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Tok::Word(s));
            }
        }
    }
    out
}

/// Parses an address list leniently: what cannot be understood is
/// skipped, never an error (mail in the wild is messy).
pub fn addresses(value: &str) -> Vec<Address> {
    let toks = tokens(value);
    let mut out = Vec::new();
    let mut item: Vec<Tok> = Vec::new();
    let mut angle = false;
    let mut in_group = false;
    for tok in toks {
        match tok {
            Tok::Special('<') => {
                angle = true;
                item.push(tok);
            }
            Tok::Special('>') => {
                angle = false;
                item.push(tok);
            }
            Tok::Special(':') if !angle && !in_group && !item.contains(&Tok::Special('@')) => {
                let name = phrase(&item);
                item.clear();
                in_group = true;
                out.push(Address {
                    name: None,
                    mailbox: Some(name),
                    host: None,
                });
            }
            Tok::Special(',') if !angle => {
                out.extend(mailbox(&item));
                item.clear();
            }
            Tok::Special(';') if !angle && in_group => {
                out.extend(mailbox(&item));
                item.clear();
                in_group = false;
                out.push(Address::default());
            }
            tok => item.push(tok),
        }
    }
    out.extend(mailbox(&item));
    if in_group {
        out.push(Address::default());
    }
    out
}

fn phrase(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        let s = match t {
            Tok::Word(s) | Tok::Quoted(s) => s.clone(),
            Tok::Special(c) => c.to_string(),
        };
        if !out.is_empty() && !matches!(t, Tok::Special('.')) && !out.ends_with('.') {
            out.push(' ');
        }
        out.push_str(&s);
    }
    out
}

fn spec(toks: &[Tok]) -> (Option<String>, Option<String>) {
    let text: String = toks
        .iter()
        .map(|t| match t {
            Tok::Word(s) | Tok::Quoted(s) => s.clone(),
            Tok::Special(c) => c.to_string(),
        })
        .collect();
    match text.rsplit_once('@') {
        Some((l, d)) => (Some(l.to_owned()), Some(d.to_owned())),
        None if text.is_empty() => (None, None),
        None => (Some(text), None),
    }
}

fn mailbox(item: &[Tok]) -> Option<Address> {
    if item.is_empty() {
        return None;
    }
    let open = item.iter().position(|t| *t == Tok::Special('<'));
    let (name, (local, host)) = match open {
        Some(i) => {
            let close = item
                .iter()
                .position(|t| *t == Tok::Special('>'))
                .unwrap_or(item.len());
            let inner = &item[i + 1..close.max(i + 1)];
            // Drop a source route (`<@a,@b:user@host>`).
            let inner = match inner.iter().position(|t| *t == Tok::Special(':')) {
                Some(c) => &inner[c + 1..],
                None => inner,
            };
            let name = phrase(&item[..i]);
            ((!name.is_empty()).then_some(name), spec(inner))
        }
        None => (None, spec(item)),
    };
    local.as_ref()?;
    Some(Address {
        name,
        mailbox: local,
        host,
    })
}

fn address_list(out: &mut Vec<u8>, value: Option<&str>) {
    let list = value.map(addresses).unwrap_or_default();
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstring(out, a.name.as_deref().map(str::as_bytes));
        out.extend_from_slice(b" NIL ");
        nstring(out, a.mailbox.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, a.host.as_deref().map(str::as_bytes));
        out.push(b')');
    }
    out.push(b')');
}

/// Writes the ENVELOPE of the header block `header`.
pub fn envelope(out: &mut Vec<u8>, header: &[u8]) {
    let fields = fields(header);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let text = |out: &mut Vec<u8>, name: &str| nstring(out, get(name).map(str::as_bytes));
    out.push(b'(');
    text(out, "date");
    out.push(b' ');
    text(out, "subject");
    let from = get("from");
    for (name, fallback) in [
        ("from", None),
        ("sender", from),
        ("reply-to", from),
        ("to", None),
        ("cc", None),
        ("bcc", None),
    ] {
        out.push(b' ');
        let value = get(name).filter(|v| !v.is_empty()).or(fallback);
        address_list(out, value);
    }
    out.push(b' ');
    text(out, "in-reply-to");
    out.push(b' ');
    match get("message-id") {
        Some(id) => string(out, id.as_bytes()),
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b')');
}
