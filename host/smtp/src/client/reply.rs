//! Server replies as a client reads them (RFC 5321 §4.2): `NNN-text` lines
//! until `NNN text`, found in a byte buffer without buffering more than a
//! bounded reply. Sans-IO, as [`crate::codec`]: the caller owns the buffer.

use postern_mail::{EnhancedCode, Reply};

/// The longest reply line read (RFC 5321 §4.5.3.1.5 says 512 with CRLF;
/// servers exceed it, Postfix reads up to `line_length_limit`).
const LINE_LIMIT: usize = 4096;

/// The most lines of one reply: an EHLO answer has a dozen; a server that
/// sends more is broken or hostile.
const LINES_LIMIT: usize = 200;

/// Why bytes from a server are not a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line does not start with three digits and a space or hyphen.
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
    /// The lines of one reply carry different codes.
    #[error("reply lines with different codes: {0} then {1}")]
    MixedCodes(u16, u16),
    /// A line or the whole reply is longer than the limits.
    #[error("reply too long")]
    TooLong,
}

/// Collects the lines of one reply at a time.
#[derive(Debug, Default)]
pub struct ReplyReader {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyReader {
    /// A reader waiting for the first line of a reply.
    pub fn new() -> ReplyReader {
        ReplyReader::default()
    }

    /// Reads from the start of `input`: how many bytes were consumed (the
    /// caller drops them) and the reply once its last line has come.
    /// `Ok((n, None))` means "need more bytes".
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Reply>), ReplyError> {
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > LINE_LIMIT {
                    return Err(ReplyError::TooLong);
                }
                return Ok((consumed, None));
            };
            if lf > LINE_LIMIT {
                return Err(ReplyError::TooLong);
            }
            let raw = &rest[..lf];
            consumed += lf + 1;
            let line = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw));
            let (code, last, text) = split_line(&line)?;
            match self.code {
                Some(c) if c != code => return Err(ReplyError::MixedCodes(c, code)),
                _ => self.code = Some(code),
            }
            if self.lines.len() >= LINES_LIMIT {
                return Err(ReplyError::TooLong);
            }
            self.lines.push(text.to_owned());
            if last {
                let lines = std::mem::take(&mut self.lines);
                self.code = None;
                return Ok((consumed, Some(assemble(code, lines))));
            }
        }
    }
}

/// `250-text` into (250, false, "text"); `250` alone is a last line with
/// no text.
fn split_line(line: &str) -> Result<(u16, bool, &str), ReplyError> {
    let bad = || ReplyError::Malformed(line.chars().take(80).collect());
    let digits = line.get(..3).ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&digits.as_bytes()[0])
    {
        return Err(bad());
    }
    let code: u16 = digits.parse().map_err(|_| bad())?;
    match line.as_bytes().get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(bad()),
    }
}

/// One [`Reply`]: the enhanced code (RFC 2034 §4) from the first line,
/// and taken off every line that repeats it.
fn assemble(code: u16, lines: Vec<String>) -> Reply {
    let enhanced = lines
        .first()
        .and_then(|l| l.split_whitespace().next())
        .and_then(EnhancedCode::parse)
        .filter(|e| u16::from(e.class) == code / 100);
    let text: Vec<&str> = lines
        .iter()
        .map(|l| match enhanced {
            Some(e) => l
                .strip_prefix(&e.to_string())
                .map_or(l.as_str(), str::trim_start),
            None => l.as_str(),
        })
        .collect();
    Reply {
        code,
        enhanced,
        text: text.join("\n"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        let mut r = ReplyReader::new();
        let input = b"250-mx.example ESMTP\r\n250-PIPELINING\r\n250 SIZE 1000\r\n220 x\r\n";
        let (n, reply) = r.decode(input).unwrap();
        let reply = reply.unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.text, "mx.example ESMTP\nPIPELINING\nSIZE 1000");
        assert_eq!(reply.enhanced, None);
        let (m, reply) = r.decode(&input[n..]).unwrap();
        assert_eq!(n + m, input.len());
        assert_eq!(reply.unwrap().code, 220);
    }

    #[test]
    fn enhanced_code_is_taken_off() {
        let mut r = ReplyReader::new();
        let (_, reply) = r
            .decode(b"550-5.1.1 no such user\r\n550 5.1.1 really\r\n")
            .unwrap();
        let reply = reply.unwrap();
        assert_eq!(reply.enhanced, Some(EnhancedCode::new(5, 1, 1)));
        assert_eq!(reply.text, "no such user\nreally");
        // A 2.x.x code on a 4xx reply is not its enhanced code.
        let (_, reply) = r.decode(b"421 2.0.0 odd\r\n").unwrap();
        assert_eq!(reply.unwrap().enhanced, None);
    }

    #[test]
    fn partial_input_waits() {
        let mut r = ReplyReader::new();
        assert_eq!(r.decode(b"250-a\r\n250 b").unwrap().0, 7);
        let (_, reply) = r.decode(b"250 b\r\n").unwrap();
        assert_eq!(reply.unwrap().text, "a\nb");
        assert_eq!(r.decode(b"").unwrap(), (0, None));
        // A bare code is a whole reply; a bare LF ends a line too.
        assert_eq!(r.decode(b"354\n").unwrap().1.unwrap().code, 354);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut r = ReplyReader::new();
        assert!(matches!(
            r.decode(b"hello\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(r.decode(b"25\r\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(
            r.decode(b"650 x\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            r.decode(b"250x\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            r.decode("é\r\n".as_bytes()),
            Err(ReplyError::Malformed(_))
        ));
        let mut r = ReplyReader::new();
        assert_eq!(
            r.decode(b"250-a\r\n550 b\r\n"),
            Err(ReplyError::MixedCodes(250, 550))
        );
        let mut r = ReplyReader::new();
        assert_eq!(r.decode(&[b'2'; 5000]), Err(ReplyError::TooLong));
        let mut many = Vec::new();
        for _ in 0..300 {
            many.extend_from_slice(b"250-x\r\n");
        }
        assert_eq!(ReplyReader::new().decode(&many), Err(ReplyError::TooLong));
    }
}
