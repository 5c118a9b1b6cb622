//! Cutting the input into whole commands (RFC 3501 §2.2): a command is
//! lines, each but the last ending in a literal announcement `{N}` (or
//! LITERAL+'s `{N+}`, RFC 7888) followed by N raw octets. The framer
//! collects a whole command with its literals before anything parses it,
//! and tells the session when a synchronizing literal needs its `+`
//! continuation.
//!
//! Limits keep a client from making the server hold unbounded input: the
//! command's line text (literals excluded) is capped, and so is each
//! literal and their sum. An incomplete command is not an error; it waits
//! for more bytes (mini-redis's `Incomplete`).

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole command, literals inline, without the final CRLF.
    Command(Vec<u8>),
    /// A synchronizing literal was announced: send `+ Ready`.
    Continue,
    /// The command's lines passed the cap; input up to the end of that
    /// line was dropped.
    TooLong {
        /// The tag, if the line had one.
        tag: Option<String>,
    },
    /// A literal over the cap. For a synchronizing literal nothing will
    /// follow it (the client waits for `+`); a non-synchronizing one is
    /// already on the way, so the session must close (RFC 7888 §4).
    LiteralTooBig {
        /// The tag, if the line had one.
        tag: Option<String>,
        /// `{N}` rather than `{N+}`.
        synchronizing: bool,
    },
}

/// The framer's state between reads.
#[derive(Debug)]
pub struct Framer {
    max_line: usize,
    max_literal: usize,
    /// The command so far.
    buf: Vec<u8>,
    /// Line bytes in `buf` (literals excluded).
    line_bytes: usize,
    /// Literal bytes in `buf`.
    literal_bytes: usize,
    /// Raw octets still owed to the current literal.
    literal_left: usize,
    /// Dropping input to the end of an over-long line.
    discarding: Option<Option<String>>,
}

impl Framer {
    /// A framer capping line text at `max_line` and literals at
    /// `max_literal` octets.
    pub fn new(max_line: usize, max_literal: usize) -> Framer {
        Framer {
            max_line,
            max_literal,
            buf: Vec::new(),
            line_bytes: 0,
            literal_bytes: 0,
            literal_left: 0,
            discarding: None,
        }
    }

    /// Consumes from `input`; returns how many bytes were used and what,
    /// if anything, is complete. Call again with the rest.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Option<Frame>) {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            if self.literal_left > 0 {
                let n = rest.len().min(self.literal_left);
                self.buf.extend_from_slice(&rest[..n]);
                self.literal_left -= n;
                used += n;
                if self.literal_left > 0 {
                    return (used, None);
                }
                continue;
            }
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                if self.discarding.is_some() {
                    return (input.len(), None);
                }
                if self.line_bytes + rest.len() > self.max_line {
                    // Keep only what is needed to name the tag.
                    let mut probe = self.buf.clone();
                    probe.extend_from_slice(&rest[..rest.len().min(80)]);
                    self.discarding = Some(tag_of(&probe));
                    self.reset();
                    return (input.len(), None);
                }
                return (used, None);
            };
            let line = &rest[..=end];
            used += end + 1;
            if let Some(tag) = self.discarding.take() {
                return (used, Some(Frame::TooLong { tag }));
            }
            if self.line_bytes + line.len() > self.max_line {
                let mut probe = self.buf.clone();
                probe.extend_from_slice(line);
                let tag = tag_of(&probe);
                self.reset();
                return (used, Some(Frame::TooLong { tag }));
            }
            self.buf.extend_from_slice(line);
            self.line_bytes += line.len();
            let text = trim_crlf(line);
            match literal_at_end(text) {
                None => {
                    let mut command = std::mem::take(&mut self.buf);
                    let keep = trim_crlf(&command).len();
                    command.truncate(keep);
                    self.reset();
                    return (used, Some(Frame::Command(command)));
                }
                Some((n, synchronizing)) => {
                    if n > self.max_literal || self.literal_bytes + n > self.max_literal {
                        let tag = self.tag();
                        self.reset();
                        return (used, Some(Frame::LiteralTooBig { tag, synchronizing }));
                    }
                    self.literal_left = n;
                    self.literal_bytes += n;
                    if synchronizing {
                        return (used, Some(Frame::Continue));
                    }
                }
            }
        }
    }

    fn tag(&self) -> Option<String> {
        tag_of(&self.buf)
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.line_bytes = 0;
        self.literal_bytes = 0;
        self.literal_left = 0;
    }
}

/// The first word, if it can be a tag (RFC 3501 §9 `tag`).
pub fn tag_of(bytes: &[u8]) -> Option<String> {
    let word = bytes.split(|b| *b == b' ').next()?;
    let word = trim_crlf(word);
    let ok = !word.is_empty()
        && word.len() <= 64
        && word
            .iter()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\+".contains(b));
    ok.then(|| String::from_utf8_lossy(word).into_owned())
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `{N}` or `{N+}` closing a line: the size and whether it synchronizes.
fn literal_at_end(text: &[u8]) -> Option<(usize, bool)> {
    let inner = text.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let mut digits = &inner[open + 1..];
    let synchronizing = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Too many digits for a u64 is simply too big.
    let n = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    Some((n, synchronizing))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn all(f: &mut Framer, input: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let (used, frame) = f.decode(&input[at..]);
            at += used;
            match frame {
                Some(fr) => out.push(fr),
                None => return out,
            }
        }
    }

    #[test]
    fn commands_and_literals() {
        let mut f = Framer::new(100, 20);
        let frames = all(
            &mut f,
            b"a1 NOOP\r\na2 LOGIN {5}\r\nalice {6+}\r\nsecret\r\na3",
        );
        assert_eq!(
            frames,
            [
                Frame::Command(b"a1 NOOP".to_vec()),
                Frame::Continue,
                Frame::Command(b"a2 LOGIN {5}\r\nalice {6+}\r\nsecret".to_vec()),
            ]
        );
        // A partial command waits, byte by byte.
        // A partial line stays with the caller until its end arrives.
        let mut f = Framer::new(100, 20);
        let mut got = Vec::new();
        let mut pending = Vec::new();
        for b in b"x APPEND M {3}\r\nabc\r\n" {
            pending.push(*b);
            let (used, frame) = f.decode(&pending);
            pending.drain(..used);
            got.extend(frame);
        }
        assert_eq!(
            got,
            [
                Frame::Continue,
                Frame::Command(b"x APPEND M {3}\r\nabc".to_vec())
            ]
        );
    }

    #[test]
    fn limits() {
        let mut f = Framer::new(20, 10);
        let long = [b"t1 NOOP ".as_slice(), &[b'x'; 50], b"\r\nt2 NOOP\r\n"].concat();
        assert_eq!(
            all(&mut f, &long),
            [
                Frame::TooLong {
                    tag: Some("t1".into())
                },
                Frame::Command(b"t2 NOOP".to_vec())
            ]
        );
        let mut f = Framer::new(40, 10);
        assert_eq!(
            all(
                &mut f,
                b"t3 APPEND x {11}\r\nt4 NOOP\r\nt5 APPEND x {99999999999+}\r\n"
            ),
            [
                Frame::LiteralTooBig {
                    tag: Some("t3".into()),
                    synchronizing: true
                },
                Frame::Command(b"t4 NOOP".to_vec()),
                Frame::LiteralTooBig {
                    tag: Some("t5".into()),
                    synchronizing: false
                },
            ]
        );
        // Discarding across reads, then the next command is clean.
        let mut f = Framer::new(20, 10);
        let first = [b"t7 ".as_slice(), &[b'y'; 27]].concat();
        assert_eq!(f.decode(&first), (30, None));
        assert_eq!(f.decode(&[b'y'; 30]), (30, None));
        assert_eq!(
            all(&mut f, b"yy\r\nt6 NOOP\r\n"),
            [
                Frame::TooLong {
                    tag: Some("t7".into())
                },
                Frame::Command(b"t6 NOOP".to_vec())
            ]
        );
    }
}
