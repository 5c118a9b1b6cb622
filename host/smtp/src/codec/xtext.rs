//! xtext (RFC 3461 §4): how DSN parameters carry arbitrary text through
//! an ESMTP parameter. Printable ASCII stands for itself, except `+` and
//! `=`; any other byte is `+` and two upper-case hex digits.

/// Decodes `s`; `None` when it is not xtext (a bare `+`, lower-case or
/// missing hex digits, a character outside `!`..`~`, a raw `=`) or the
/// result is not UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
                {
                    return None;
                }
                // Two hex digits always parse into a byte.
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'=' => return None,
            b @ b'!'..=b'~' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes `s` as xtext, for a parameter passed on to the next hop.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_hex_pairs() {
        assert_eq!(decode("abc+2Bdef+3D").unwrap(), "abc+def=");
        assert_eq!(decode("a+20b").unwrap(), "a b");
        assert_eq!(decode("").unwrap(), "");
        assert_eq!(decode("+C3+A9").unwrap(), "é");
    }

    #[test]
    fn refuses_what_is_not_xtext() {
        for bad in ["a+", "a+2", "a+2b", "a=b", "a b", "é", "+FF", "+G0"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip() {
        for s in ["plain", "a+b=c d", "ünïcode", "\u{1}"] {
            assert_eq!(decode(&encode(s)).unwrap(), s);
        }
        assert_eq!(encode("a+b=c d"), "a+2Bb+3Dc+20d");
    }
}
