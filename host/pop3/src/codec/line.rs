//! Command lines. RFC 2449 §4 caps a command at 255 octets and an AUTH
//! response line (RFC 5034 §4) may be longer, so the cap is the caller's.
//! A partial line waits for more bytes; an over-long one is discarded up
//! to its end and reported once, so a client cannot grow our buffer.

/// What the reader found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A line, without CRLF (or a bare LF, which is accepted as clients
    /// such as telnet send it).
    Line(&'a [u8]),
    /// A line longer than the cap ended; its bytes were dropped.
    TooLong,
}

/// Splits input into lines of at most `max` octets.
#[derive(Debug, Clone)]
pub struct LineReader {
    max: usize,
    /// Inside an over-long line: drop bytes up to its LF.
    discarding: bool,
}

impl LineReader {
    /// A reader for lines up to `max` octets (terminator excluded).
    pub fn new(max: usize) -> LineReader {
        LineReader {
            max,
            discarding: false,
        }
    }

    /// Looks at buffered `input`; returns how many bytes were consumed and
    /// the event, if a line ended. `(n, None)`: feed more bytes after
    /// dropping the first `n`.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> (usize, Option<LineEvent<'a>>) {
        match input.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let used = lf + 1;
                if std::mem::take(&mut self.discarding) {
                    return (used, Some(LineEvent::TooLong));
                }
                let line = &input[..lf];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > self.max {
                    return (used, Some(LineEvent::TooLong));
                }
                (used, Some(LineEvent::Line(line)))
            }
            None if self.discarding || input.len() > self.max + 1 => {
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

    #[test]
    fn lines_partial_and_bare_lf() {
        let mut r = LineReader::new(10);
        assert_eq!(r.decode(b"STA"), (0, None));
        assert_eq!(
            r.decode(b"STAT\r\nNOOP"),
            (6, Some(LineEvent::Line(b"STAT")))
        );
        assert_eq!(r.decode(b"NOOP\n"), (5, Some(LineEvent::Line(b"NOOP"))));
        assert_eq!(r.decode(b"\r\n"), (2, Some(LineEvent::Line(b""))));
    }

    #[test]
    fn too_long_is_dropped_in_pieces_and_reported_once() {
        let mut r = LineReader::new(4);
        assert_eq!(r.decode(b"ABCDEFGH"), (8, None));
        assert_eq!(r.decode(b"IJKL"), (4, None));
        assert_eq!(r.decode(b"M\r\nQUIT\r\n"), (3, Some(LineEvent::TooLong)));
        assert_eq!(r.decode(b"QUIT\r\n"), (6, Some(LineEvent::Line(b"QUIT"))));
        assert_eq!(r.decode(b"ABCDEF\r\n"), (8, Some(LineEvent::TooLong)));
        // Exactly the cap, with its CR not yet arrived, still waits.
        assert_eq!(r.decode(b"ABCD\r"), (0, None));
    }
}
