//! Replies on the wire (RFC 5321 §4.2, enhanced codes RFC 2034 §3), written
//! straight into the session's output buffer.
//!
//! [`postern_mail::Reply::to_wire`] builds a `String` per reply and one
//! per number in it; a session writes seven replies or more per message,
//! so this writer appends the same bytes to the caller's buffer with no
//! allocation of its own. The two must agree byte for byte (tested below).

use postern_mail::{EnhancedCode, Reply};

/// Appends `reply` to `out`: one `CODE-text` line per line of its text but
/// the last, which is `CODE text` (RFC 5321 §4.2.1), each ending in CRLF,
/// the enhanced code (when there is one) after the code on every line.
pub fn write_reply(out: &mut Vec<u8>, reply: &Reply) {
    let mut lines = reply.text.split('\n').peekable();
    while let Some(line) = lines.next() {
        push_number(out, reply.code);
        out.push(if lines.peek().is_some() { b'-' } else { b' ' });
        if let Some(e) = reply.enhanced {
            push_enhanced(out, e);
            out.push(b' ');
        }
        out.extend_from_slice(line.trim_end_matches('\r').as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// `class.subject.detail`.
fn push_enhanced(out: &mut Vec<u8>, e: EnhancedCode) {
    push_number(out, u16::from(e.class));
    out.push(b'.');
    push_number(out, e.subject);
    out.push(b'.');
    push_number(out, e.detail);
}

/// `n` in decimal, without leading zeros.
fn push_number(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        // n % 10 < 10: the cast cannot truncate.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wire(reply: &Reply) -> String {
        let mut out = Vec::new();
        write_reply(&mut out, reply);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn agrees_with_to_wire() {
        let replies = [
            Reply::plain(220, "mx.example.org ESMTP Postern"),
            Reply::plain(250, "mx\nPIPELINING\nSIZE 10240000\nCHUNKING"),
            Reply::new(250, EnhancedCode::new(2, 0, 0), "Ok: queued as 3F2A1B"),
            Reply::new(554, EnhancedCode::new(5, 7, 1), "a\r\nb\nc"),
            Reply::new(451, EnhancedCode::new(4, 999, 0), ""),
            Reply::new(0, EnhancedCode::new(5, 0, 999), "\n"),
            Reply::plain(65535, "x"),
        ];
        for r in replies {
            assert_eq!(wire(&r), r.to_wire(), "{r:?}");
        }
    }

    #[test]
    fn appends() {
        let mut out = b"250 2.0.0 Ok\r\n".to_vec();
        write_reply(&mut out, &Reply::plain(221, "Bye"));
        assert_eq!(out, b"250 2.0.0 Ok\r\n221 Bye\r\n");
    }
}
