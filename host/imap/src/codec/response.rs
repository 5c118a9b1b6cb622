//! Writing responses (RFC 3501 §7): strings as atoms, quoted strings or
//! literals as their content requires, and lists.

/// Appends `s` as a quoted string when it can be one, else a literal
/// (RFC 3501 §4.3: quoted strings carry no CR, LF, NUL or 8-bit octets).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024
        && s.iter()
            .all(|b| (0x01..0x80).contains(b) && *b != b'\r' && *b != b'\n');
    if quotable {
        out.push(b'"');
        for b in s {
            if *b == b'"' || *b == b'\\' {
                out.push(b'\\');
            }
            out.push(*b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `{N}` CRLF and the octets.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Appends `NIL` or the string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name as LIST and STATUS return it: an atom if it is one,
/// else a string.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    let atom = !name.is_empty()
        && name
            .bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b));
    if atom {
        out.extend_from_slice(name.as_bytes());
    } else {
        string(out, name.as_bytes());
    }
}

/// `(\Seen \Flagged)`.
pub fn flag_list<'a>(out: &mut Vec<u8>, flags: impl IntoIterator<Item = &'a str>) {
    out.push(b'(');
    for (i, f) in flags.into_iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b')');
}

/// A tagged completion: `tag OK text`.
pub fn tagged(tag: &str, status: &str, text: &str) -> Vec<u8> {
    format!("{tag} {status} {text}\r\n").into_bytes()
}

/// An untagged line: `* text`.
pub fn untagged(text: &str) -> Vec<u8> {
    format!("* {text}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\" \\");
        out.push(b' ');
        string(&mut out, "é".as_bytes());
        out.push(b' ');
        nstring(&mut out, None);
        out.push(b' ');
        mailbox(&mut out, "Sent");
        out.push(b' ');
        mailbox(&mut out, "My Box");
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            "\"a \\\"b\\\" \\\\\" {2}\r\né NIL Sent \"My Box\""
        );
    }
}
