//! Message content after `354` (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing,
//! line-end normalisation, the size limit, and the end-of-data marker.
//!
//! The end of data is ONLY `<CRLF>.<CRLF>` in the raw byte stream, where
//! the first CRLF may be the one that ended the DATA command (an empty
//! message). Every look-alike (`<LF>.<LF>`, `<CR>.<CR>`, `<CRLF>.<LF>`,
//! `<LF>.<CRLF>`, NUL variants, ...) is content. That closes SMTP smuggling
//! (CVE-2023-51764 and kin): a message cannot end here where a
//! differently-parsing server upstream saw it continue, so no second message
//! can hide inside the first. The rule holds for every client, trusted too.
//!
//! A bare CR or bare LF in the content is handled per [`BareNewline`],
//! named after Postfix's `smtpd_forbid_bare_newline`.

use postern_mail::{EnhancedCode, Reply};

/// What to do with a bare CR or bare LF in message content, after Postfix's
/// `smtpd_forbid_bare_newline`. Neither mode lets one end the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareNewline {
    /// Store it as CRLF (Postfix `normalize`, the default): old clients
    /// keep working, and what leaves the queue is canonical CRLF text.
    #[default]
    Normalize,
    /// Read on to the real end of data, then refuse the message with
    /// `550 5.5.2 Error: bare <CR> or <LF> received` (Postfix `reject`).
    Reject,
}

/// The content buffer's first allocation: a typical message and the
/// headers the session prepends fit without a reallocation, and a message
/// that does not fit grows it by doubling as usual.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// Where the decoder is in the raw stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line that followed a real CRLF (or the start of
    /// the data): the only place where a dot means anything.
    LineStart,
    /// Saw `.` at a line start: either dot-stuffing or the end marker.
    Dot,
    /// Saw `.` CR at a line start: LF now ends the data.
    DotCr,
    /// Inside a line, or at the start of a line that followed a bare LF or
    /// bare CR (where a dot is plain text).
    Text,
    /// Saw a CR; LF makes it a line end, anything else makes it bare.
    Cr,
    /// Saw the end marker; nothing more is consumed.
    Done,
}

/// Why the content was refused once the end of data was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The content passed `message_size_limit`; it was read to the end but
    /// not kept.
    #[error("message file too big ({size} bytes)")]
    TooBig {
        /// The content's size, as far as it was counted.
        size: u64,
    },
    /// A bare CR or LF arrived and the mode is [`BareNewline::Reject`].
    #[error("bare <CR> or <LF> received")]
    BareNewline,
    /// [`DataDecoder::finish`] was called before the end of data.
    #[error("end of data not reached")]
    Incomplete,
}

impl DataError {
    /// The reply after the final dot, as Postfix words it.
    pub fn reply(&self) -> Reply {
        match self {
            DataError::TooBig { .. } => Reply::new(
                552,
                EnhancedCode::new(5, 3, 4),
                "Error: message file too big",
            ),
            DataError::BareNewline => Reply::new(
                550,
                EnhancedCode::new(5, 5, 2),
                "Error: bare <CR> or <LF> received",
            ),
            DataError::Incomplete => {
                Reply::new(451, EnhancedCode::new(4, 3, 0), "Error: incomplete message")
            }
        }
    }
}

/// Decodes the content of one DATA command, fed in arbitrary chunks.
///
/// Sans-IO: [`decode`](DataDecoder::decode) takes raw bytes and says how
/// many it consumed; it stops right after the end marker, so that pipelined
/// commands that follow stay with the caller.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: State,
    mode: BareNewline,
    /// `message_size_limit`: content beyond it is counted, not kept, so
    /// memory stays bounded whatever the client sends.
    limit: u64,
    /// The content so far: dot-unstuffed, CRLF line ends.
    content: Vec<u8>,
    /// How many content bytes were produced, kept or not.
    size: u64,
    too_big: bool,
    bare: bool,
}

impl DataDecoder {
    /// A decoder that keeps at most `limit` bytes of content.
    pub fn new(limit: u64, mode: BareNewline) -> DataDecoder {
        DataDecoder {
            state: State::LineStart,
            mode,
            limit,
            content: Vec::with_capacity(
                INITIAL_CAPACITY.min(usize::try_from(limit).unwrap_or(usize::MAX)),
            ),
            size: 0,
            too_big: false,
            bare: false,
        }
    }

    /// Whether the end marker was seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The content size so far (after unstuffing and normalising), counted
    /// on past the limit.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Consumes raw bytes and returns how many it took: all of `input`,
    /// unless the end of data lies inside it, in which case the count stops
    /// right after the final LF (check [`is_done`](DataDecoder::is_done)).
    pub fn decode(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            let plain_line = self.state == State::LineStart && !special(input[i]);
            if self.state == State::Text || plain_line {
                match plain_run(&input[i..]) {
                    None => {
                        self.emit(&input[i..]);
                        self.state = State::Text;
                        return input.len();
                    }
                    Some(p) => {
                        self.emit(&input[i..i + p]);
                        self.state = State::Text;
                        i += p;
                    }
                }
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::Done, _) => return i - 1,
                (State::LineStart, b'.') => State::Dot,
                (State::LineStart | State::Text, b'\r') => State::Cr,
                (State::LineStart | State::Text, b'\n') => {
                    self.bare_newline();
                    State::Text
                }
                (State::LineStart | State::Text, _) => {
                    self.emit(&[b]);
                    State::Text
                }
                // RFC 5321 §4.5.2: a line that starts with a dot loses it,
                // unless the dot is all there is before CRLF.
                (State::Dot, b'\r') => State::DotCr,
                (State::Dot, b'\n') => {
                    self.bare_newline();
                    State::Text
                }
                (State::Dot, _) => {
                    self.emit(&[b]);
                    State::Text
                }
                (State::DotCr, b'\n') => {
                    self.state = State::Done;
                    return i;
                }
                // `.` then a bare CR: the dot was stuffing, the CR is bare.
                (State::DotCr | State::Cr, b'\r') => {
                    self.bare_newline();
                    State::Cr
                }
                (State::Cr, b'\n') => {
                    self.emit(b"\r\n");
                    State::LineStart
                }
                (State::DotCr | State::Cr, _) => {
                    self.bare_newline();
                    self.emit(&[b]);
                    State::Text
                }
            };
        }
        input.len()
    }

    /// The content, once the end of data was seen: dot-unstuffed, CRLF line
    /// ends, the CRLF before the final dot included as the last line's end.
    pub fn finish(self) -> Result<Vec<u8>, DataError> {
        if self.state != State::Done {
            Err(DataError::Incomplete)
        } else if self.bare && self.mode == BareNewline::Reject {
            Err(DataError::BareNewline)
        } else if self.too_big {
            Err(DataError::TooBig { size: self.size })
        } else {
            Ok(self.content)
        }
    }

    fn bare_newline(&mut self) {
        self.bare = true;
        if self.mode == BareNewline::Reject {
            // The message will be refused: stop keeping it.
            self.content = Vec::new();
        }
        self.emit(b"\r\n");
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.too_big || (self.bare && self.mode == BareNewline::Reject) {
            return;
        }
        if self.size > self.limit {
            self.too_big = true;
            self.content = Vec::new();
            return;
        }
        self.content.extend_from_slice(bytes);
    }
}

/// A byte that means something at the start of a line: a dot (stuffing or
/// the end marker) or a line end.
fn special(b: u8) -> bool {
    matches!(b, b'.' | b'\r' | b'\n')
}

/// The common case, taken in bulk: where the content from the start of
/// `text` (inside a line, or at the start of a line that does not begin
/// with a dot) stops being plain text and CRLF line ends each followed by
/// a byte that is not [`special`]. `None`: all of it is. Only the state
/// machine in [`DataDecoder::decode`] looks at what is at the returned
/// offset: a CR or LF that may be bare, or a CRLF at the end of the input
/// or before a dot or another line end.
fn plain_run(text: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let p = at + memchr::memchr2(b'\r', b'\n', &text[at..])?;
        match (text.get(p), text.get(p + 1), text.get(p + 2)) {
            (Some(b'\r'), Some(b'\n'), Some(&next)) if !special(next) => at = p + 3,
            _ => return Some(p),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
