//! The message as DATA sends it (RFC 5321 §4.5.2): every line that starts
//! with `.` gets another one, bare LFs become CRLF, the last line is
//! ended, and `.` CRLF closes it. Sans-IO: bytes in, bytes out.

/// `content` dot-stuffed and terminated, ready for the wire after `354`.
///
/// Line by line rather than byte by byte: a line is found with one SIMD
/// scan for its LF (`memchr`) and copied whole, and only its first and
/// last bytes are looked at (this runs for every relayed message).
pub fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
    // `rest` always starts a line.
    let mut rest = content;
    while let Some(&first) = rest.first() {
        if first == b'.' {
            out.push(b'.');
        }
        let Some(at) = memchr::memchr(b'\n', rest) else {
            // The last line, not ended: end it.
            out.extend_from_slice(rest);
            out.extend_from_slice(b"\r\n");
            break;
        };
        let (line, tail) = rest.split_at(at);
        out.extend_from_slice(line);
        if line.last() != Some(&b'\r') {
            // A bare LF would be a smuggling vector at the next hop
            // (RFC 5321 §2.3.8): send the canonical CRLF.
            out.push(b'\r');
        }
        out.push(b'\n');
        rest = tail.get(1..).unwrap_or_default();
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Whether `content` has bytes above 127: what `BODY=8BITMIME` (RFC 6152)
/// announces.
pub fn is_8bit(content: &[u8]) -> bool {
    content.iter().any(|&b| b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffs_leading_dots() {
        assert_eq!(
            dot_stuff(b"Subject: x\r\n\r\n.\r\n..a\r\nb.\r\n"),
            b"Subject: x\r\n\r\n..\r\n...a\r\nb.\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b".first"), b"..first\r\n.\r\n");
    }

    #[test]
    fn ends_the_last_line_and_fixes_bare_lf() {
        assert_eq!(dot_stuff(b"a\nb"), b"a\r\nb\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b"a\r\n"), b"a\r\n.\r\n");
        // A bare CR is left as it is: it does not end a line.
        assert_eq!(dot_stuff(b"a\r.b\r\n"), b"a\r.b\r\n.\r\n");
        assert_eq!(dot_stuff(b"a\r"), b"a\r\r\n.\r\n");
        assert_eq!(dot_stuff(b"\n\n.\n"), b"\r\n\r\n..\r\n.\r\n");
    }

    /// The byte-at-a-time definition the line-wise version must match.
    fn reference(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line_start = true;
        let mut previous = 0u8;
        for &b in content {
            if line_start && b == b'.' {
                out.push(b'.');
            }
            if b == b'\n' && previous != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            line_start = b == b'\n';
            previous = b;
        }
        if !content.is_empty() && !line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    #[test]
    fn matches_the_bytewise_definition() {
        // Every string of up to 6 bytes over the bytes that matter.
        let alphabet = [b'.', b'\r', b'\n', b'a'];
        let mut cases = vec![Vec::new()];
        for _ in 0..6 {
            let longer: Vec<Vec<u8>> = cases
                .iter()
                .filter(|c| c.len() == cases.last().map_or(0, Vec::len))
                .flat_map(|c| {
                    alphabet.iter().map(move |&b| {
                        let mut c = c.clone();
                        c.push(b);
                        c
                    })
                })
                .collect();
            cases.extend(longer);
        }
        for case in &cases {
            assert_eq!(dot_stuff(case), reference(case), "{case:?}");
        }
    }

    #[test]
    fn eight_bit() {
        assert!(!is_8bit(b"plain"));
        assert!(is_8bit("caf\u{e9}".as_bytes()));
    }
}
