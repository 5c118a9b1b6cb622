//! What `postern sendmail` makes of its input: the message read from
//! standard input (sendmail(1)'s dot and `From ` line rules), addresses
//! qualified with `myorigin`, the caller's login name, and `-t`'s
//! recipients from the header.

use std::io::Read;

use postern_mail::Address;

use crate::sendmail::{EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, Failure, fail};

/// The message from `input`, CRLF line ends, a leading `From ` line
/// dropped, ended by EOF or (without `ignore_dots`) a lone `.`.
pub(crate) fn read_message(
    input: &mut dyn Read,
    ignore_dots: bool,
    limit: u64,
) -> Result<Vec<u8>, Failure> {
    let mut raw = Vec::new();
    // One byte over the limit is enough to know it is too much.
    input
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| fail(EX_TEMPFAIL, format!("cannot read the message: {e}")))?;
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut first = true;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let ended = line.ends_with(b"\n");
        let text = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        if std::mem::take(&mut first) && text.starts_with(b"From ") {
            continue;
        }
        if !ignore_dots && text == b"." && ended {
            return Ok(out);
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    if raw.len() as u64 > limit || out.len() as u64 > limit {
        return Err(fail(
            EX_DATAERR,
            format!("message is larger than message_size_limit ({limit} bytes)"),
        ));
    }
    Ok(out)
}

/// `name` → `name@myorigin`; an address must parse.
pub(crate) fn qualify(item: &str, origin: &str) -> Result<Address, Failure> {
    let item = item.trim();
    let item = item
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(item);
    let full = if item.contains('@') {
        item.to_owned()
    } else {
        format!("{item}@{origin}")
    };
    Address::parse(&full).map_err(|e| fail(EX_NOUSER, format!("bad address {item:?}: {e}")))
}

/// The login name of `uid` from /etc/passwd, else `$LOGNAME`/`$USER`.
pub(crate) fn login_name(uid: u32) -> String {
    let from_passwd = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_owned())
        })
    });
    from_passwd
        .or_else(|| std::env::var("LOGNAME").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "nobody".to_owned())
}

/// The addresses in the `To:`, `Cc:` and `Bcc:` fields of the header
/// (RFC 5322 §3.6.3), as written: `Name <a@b>` gives `a@b`, a group's
/// display name and comments are dropped.
pub fn header_recipients(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let mut fields: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.split("\r\n") {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        fields.extend(current.take());
        let Some((name, value)) = line.split_once(':') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        if matches!(name.as_str(), "to" | "cc" | "bcc") {
            current = Some(value.to_owned());
        }
    }
    fields.extend(current);
    fields.iter().flat_map(|f| address_list(f)).collect()
}

/// Splits an address list at commas outside quotes, brackets and comments.
fn address_list(value: &str) -> Vec<String> {
    let (mut items, mut item) = (Vec::new(), String::new());
    let (mut quoted, mut angle, mut comment) = (false, false, 0usize);
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if quoted {
                item.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '<' if !quoted => {
                angle = true;
                item.clear();
            }
            '>' if !quoted && angle => {
                angle = false;
                items.push(std::mem::take(&mut item));
                item.push('\0');
            }
            ':' if !quoted && !angle => item.clear(), // a group's name
            ',' | ';' if !quoted && !angle => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    items.push(item);
    items
        .into_iter()
        .filter(|i| !i.starts_with('\0'))
        .map(|i| i.split_whitespace().collect::<String>())
        .filter(|i| !i.is_empty())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dots_and_line_ends() {
        let read = |s: &[u8], i| read_message(&mut &s[..], i, 1000);
        assert_eq!(
            read(b"From x  date\nSubject: a\n\nx\n.\nafter\n", false).unwrap(),
            b"Subject: a\r\n\r\nx\r\n"
        );
        assert_eq!(read(b"a\r\n.\r\nb", true).unwrap(), b"a\r\n.\r\nb\r\n");
        assert_eq!(read(b"..\n", false).unwrap(), b"..\r\n");
        let big = vec![b'x'; 2000];
        assert_eq!(
            read_message(&mut &big[..], true, 1000).unwrap_err().code,
            EX_DATAERR
        );
    }

    #[test]
    fn recipients_from_the_header() {
        let content = b"To: Bob <bob@example.org>, carol\r\nCc: \"Doe, J\" <j@d.org> (x, y),\r\n  dave@e.org\r\nBcc: team: eve@f.org, fay@g.org;\r\nSubject: to: nobody@h.org\r\n\r\nTo: body@i.org\r\n";
        assert_eq!(
            header_recipients(content),
            [
                "bob@example.org",
                "carol",
                "j@d.org",
                "dave@e.org",
                "eve@f.org",
                "fay@g.org"
            ]
        );
        assert!(header_recipients(b"To: undisclosed-recipients:;\r\n\r\n").is_empty());
    }

    #[test]
    fn qualification() {
        assert_eq!(qualify("bob", "x.org").unwrap().to_string(), "bob@x.org");
        assert_eq!(
            qualify(" <a@b.org> ", "x.org").unwrap().to_string(),
            "a@b.org"
        );
        assert_eq!(qualify("a b@@", "x.org").unwrap_err().code, EX_NOUSER);
    }
}
