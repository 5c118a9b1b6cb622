//! Command lines: CRLF-terminated text (RFC 5321 §2.3.8), found in a byte
//! buffer without ever buffering more than one line's worth.
//!
//! Like Postfix's `smtp_get()`, a bare LF also ends a command line (clients
//! that send one are common and harmless in the command phase: the smuggling
//! risk lives in DATA, see [`super::data`]). A line longer than the limit is
//! skipped through its LF and reported once, so that the session can answer
//! `500 5.5.2 Error: line too long` and go on with the next command.

/// One result of [`LineReader::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A complete line, without its terminator.
    Line {
        /// The text before CRLF (or before a bare LF).
        text: &'a [u8],
        /// Whether the line ended in a bare LF rather than CRLF: the session
        /// refuses such lines when bare newlines are to be rejected.
        bare_lf: bool,
    },
    /// A line longer than the limit, now discarded through its LF.
    TooLong,
}

/// Splits a byte stream into command lines, bounded by a length limit.
///
/// Sans-IO: the caller owns the buffer, hands its unread part to
/// [`decode`](LineReader::decode) and drops the consumed prefix.
#[derive(Debug, Clone)]
pub struct LineReader {
    /// The longest accepted line, counting its CRLF as RFC 5321
    /// §4.5.3.1.4 does.
    limit: usize,
    /// Inside an overlong line whose LF has not arrived yet: everything up
    /// to it is thrown away, so that memory stays bounded.
    discarding: bool,
}

impl LineReader {
    /// A reader accepting lines of at most `limit` bytes, CRLF included.
    /// A limit below 3 is raised to 3 (one character and CRLF).
    pub fn new(limit: usize) -> LineReader {
        LineReader {
            limit: limit.max(3),
            discarding: false,
        }
    }

    /// The longest accepted line, CRLF included.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Looks for the next line at the start of `input`. Returns how many
    /// bytes of `input` were consumed (the caller drops them) and the event,
    /// if any. `(n, None)` means "need more bytes": an incomplete line is
    /// not an error. The reader never asks the caller to keep more than
    /// `limit` bytes: a longer unfinished line is consumed and discarded.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> (usize, Option<LineEvent<'a>>) {
        match input.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let consumed = lf + 1;
                if self.discarding || consumed > self.limit {
                    self.discarding = false;
                    return (consumed, Some(LineEvent::TooLong));
                }
                let line = &input[..lf];
                let (text, bare_lf) = match line.strip_suffix(b"\r") {
                    Some(text) => (text, false),
                    None => (line, true),
                };
                (consumed, Some(LineEvent::Line { text, bare_lf }))
            }
            None if self.discarding || input.len() >= self.limit => {
                // The line, once its LF arrives, will be longer than the
                // limit: drop what we have and remember to drop the rest.
                self.discarding = true;
                (input.len(), None)
            }
            None => (0, None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(text: &[u8]) -> Option<LineEvent<'_>> {
        Some(LineEvent::Line {
            text,
            bare_lf: false,
        })
    }

    #[test]
    fn complete_crlf_line() {
        let mut r = LineReader::new(100);
        assert_eq!(r.decode(b"NOOP\r\nQUIT\r\n"), (6, line(b"NOOP")));
        assert_eq!(r.decode(b"QUIT\r\n"), (6, line(b"QUIT")));
    }

    #[test]
    fn incomplete_line_needs_more() {
        let mut r = LineReader::new(100);
        assert_eq!(r.decode(b""), (0, None));
        assert_eq!(r.decode(b"NO"), (0, None));
        assert_eq!(r.decode(b"NOOP\r"), (0, None));
        assert_eq!(r.decode(b"NOOP\r\n"), (6, line(b"NOOP")));
    }

    #[test]
    fn bare_lf_ends_a_command_line() {
        let mut r = LineReader::new(100);
        assert_eq!(
            r.decode(b"NOOP\nQUIT"),
            (
                5,
                Some(LineEvent::Line {
                    text: b"NOOP",
                    bare_lf: true
                })
            )
        );
    }

    #[test]
    fn empty_lines() {
        let mut r = LineReader::new(100);
        assert_eq!(r.decode(b"\r\n"), (2, line(b"")));
        assert_eq!(
            r.decode(b"\n"),
            (
                1,
                Some(LineEvent::Line {
                    text: b"",
                    bare_lf: true
                })
            )
        );
    }

    #[test]
    fn only_the_last_cr_is_stripped() {
        let mut r = LineReader::new(100);
        assert_eq!(r.decode(b"A\rB\r\r\n"), (6, line(b"A\rB\r")));
    }

    #[test]
    fn limit_counts_the_crlf() {
        let mut r = LineReader::new(6);
        assert_eq!(r.decode(b"NOOP\r\n"), (6, line(b"NOOP")));
        assert_eq!(r.decode(b"NOOPS\r\n"), (7, Some(LineEvent::TooLong)));
        assert_eq!(r.decode(b"NOOP\r\n"), (6, line(b"NOOP")));
    }

    #[test]
    fn overlong_line_in_pieces_is_discarded_then_reported_once() {
        let mut r = LineReader::new(10);
        assert_eq!(r.decode(b"0123456"), (0, None));
        assert_eq!(r.decode(b"0123456789"), (10, None));
        assert_eq!(r.decode(b"abcdefghijklmnop"), (16, None));
        assert_eq!(r.decode(b"xyz\r\nNOOP\r\n"), (5, Some(LineEvent::TooLong)));
        assert_eq!(r.decode(b"NOOP\r\n"), (6, line(b"NOOP")));
    }

    #[test]
    fn buffering_is_bounded_by_the_limit() {
        let mut r = LineReader::new(1000);
        let mut kept = Vec::new();
        for _ in 0..10_000 {
            kept.extend_from_slice(b"xxxxxxx");
            let (n, ev) = r.decode(&kept);
            assert!(ev.is_none());
            kept.drain(..n);
            assert!(kept.len() < 1000);
        }
        kept.extend_from_slice(b"\r\nQUIT\r\n");
        let (n, ev) = r.decode(&kept);
        assert_eq!(ev, Some(LineEvent::TooLong));
        kept.drain(..n);
        assert_eq!(r.decode(&kept), (6, line(b"QUIT")));
    }

    #[test]
    fn tiny_limit_is_raised() {
        assert_eq!(LineReader::new(0).limit(), 3);
    }
}
