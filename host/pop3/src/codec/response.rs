//! Replies (RFC 1939 §3): a status line `+OK text` or `-ERR text`, and
//! for multi-line responses the body with every line that starts with `.`
//! stuffed with one more, each line ended by CRLF, and `.` CRLF at the end.
//! RFC 2449 §8 response codes (`[AUTH]`, `[IN-USE]`, RFC 3206 `[SYS/TEMP]`)
//! are part of the text.

/// `+OK text` (or a bare `+OK`) with its CRLF.
pub fn ok(text: &str) -> Vec<u8> {
    status("+OK", text)
}

/// `-ERR text` with its CRLF.
pub fn err(text: &str) -> Vec<u8> {
    status("-ERR", text)
}

fn status(word: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len() + text.len() + 3);
    out.extend_from_slice(word.as_bytes());
    if !text.is_empty() {
        out.push(b' ');
        // A reply is one line whatever the text holds.
        out.extend(
            text.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `lines` (each without CRLF) as a multi-line body with its
/// terminating `.` line.
pub fn lines<'a>(out: &mut Vec<u8>, lines: impl IntoIterator<Item = &'a str>) {
    for line in lines {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// Appends a message as a multi-line body: line ends made CRLF (a bare LF,
/// as Dovecot stores mail, becomes CRLF; a bare CR stays data), a missing
/// final line end added, lines starting with `.` stuffed, then `.` CRLF.
/// With `body_lines` (TOP), only the header, the blank line that ends it
/// and that many body lines go out (RFC 1939 §7).
/// Returns the octets of the message part sent (before stuffing), which is
/// what Dovecot's logout line counts.
pub fn message(out: &mut Vec<u8>, content: &[u8], body_lines: Option<u32>) -> u64 {
    let mut sent = 0u64;
    let mut in_body = false;
    let mut body_left = body_lines;
    let mut rest = content;
    while !rest.is_empty() {
        if in_body && body_left == Some(0) {
            break;
        }
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(lf) => (&rest[..lf], &rest[lf + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        sent += line.len() as u64 + 2;
        if in_body {
            body_left = body_left.map(|n| n.saturating_sub(1));
        } else if line.is_empty() {
            in_body = true;
        }
    }
    out.extend_from_slice(b".\r\n");
    sent
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn whole(content: &[u8], top: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        message(&mut out, content, top);
        out
    }

    #[test]
    fn status_lines() {
        assert_eq!(ok(""), b"+OK\r\n");
        assert_eq!(ok("2 320"), b"+OK 2 320\r\n");
        assert_eq!(err("bad\r\nRSET"), b"-ERR bad  RSET\r\n");
    }

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(
            whole(b"A: 1\r\n\r\n.\r\n..x\r\n", None),
            b"A: 1\r\n\r\n..\r\n...x\r\n.\r\n"
        );
        assert_eq!(whole(b"A: 1\n\nbody\n", None), b"A: 1\r\n\r\nbody\r\n.\r\n");
        assert_eq!(
            whole(b"A: 1\r\n\r\nno end", None),
            b"A: 1\r\n\r\nno end\r\n.\r\n"
        );
        assert_eq!(whole(b"", None), b".\r\n");
        assert_eq!(whole(b"a\rb\r\n", None), b"a\rb\r\n.\r\n");
        let mut out = Vec::new();
        assert_eq!(message(&mut out, b"A: 1\r\n\r\nbody\r\n", None), 14);
    }

    #[test]
    fn top_counts_body_lines() {
        let m = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n.three\r\n";
        assert_eq!(whole(m, Some(0)), b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(
            whole(m, Some(2)),
            b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n.\r\n"
        );
        assert_eq!(
            whole(m, Some(9)),
            b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n..three\r\n.\r\n"
        );
        // No blank line: all of it is header.
        assert_eq!(whole(b"A: 1\r\n", Some(0)), b"A: 1\r\n.\r\n");
    }

    #[test]
    fn multi_line_lists() {
        let mut out = ok("2 messages:");
        lines(&mut out, ["1 120", ".hidden"]);
        assert_eq!(out, b"+OK 2 messages:\r\n1 120\r\n..hidden\r\n.\r\n");
    }
}
