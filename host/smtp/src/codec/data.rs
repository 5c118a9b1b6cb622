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
mod tests {
    use super::*;

    /// Every smuggling look-alike of `<CRLF>.<CRLF>` (Postfix, Sendmail and
    /// Exim advisories of December 2023), with the content it must yield
    /// in normalize mode between `hello` and `MAIL`.
    const SMUGGLING: [(&[u8], &[u8]); 11] = [
        (b"\n.\n", b"\r\n.\r\n"),
        (b"\n.\r\n", b"\r\n.\r\n"),
        (b"\r\n.\n", b"\r\n\r\n"),
        (b"\r.\r", b"\r\n.\r\n"),
        (b"\r.\r\n", b"\r\n.\r\n"),
        (b"\r\n.\r", b"\r\n\r\n"),
        (b"\r.\n", b"\r\n.\r\n"),
        (b"\n.\r", b"\r\n.\r\n"),
        (b"\r\n.\r\r\n", b"\r\n\r\n\r\n"),
        (b"\r\n\0.\r\n", b"\r\n\0.\r\n"),
        (b"\r\n.\0\r\n", b"\r\n\0\r\n"),
    ];

    fn smuggling_input(variant: &[u8]) -> Vec<u8> {
        [b"hello", variant, b"MAIL FROM:<x@y.org>\r\n.\r\nQUIT\r\n"].concat()
    }

    /// Decodes `input` fed in the given chunk sizes (cycled); returns the
    /// bytes consumed and the decoder.
    fn decode_in(input: &[u8], chunks: &[usize], mode: BareNewline) -> (usize, DataDecoder) {
        let mut d = DataDecoder::new(1 << 20, mode);
        let mut at = 0;
        for &n in chunks.iter().cycle() {
            if at >= input.len() || d.is_done() {
                break;
            }
            let end = (at + n.max(1)).min(input.len());
            let used = d.decode(&input[at..end]);
            assert!(used == end - at || d.is_done(), "stopped early");
            at += used;
        }
        (at, d)
    }

    fn normalize(input: &[u8]) -> (usize, Result<Vec<u8>, DataError>) {
        let (n, d) = decode_in(input, &[input.len()], BareNewline::Normalize);
        (n, d.finish())
    }

    #[test]
    fn plain_message() {
        let (n, out) = normalize(b"Subject: x\r\n\r\nbody\r\n.\r\n");
        assert_eq!(n, 23);
        assert_eq!(out.unwrap(), b"Subject: x\r\n\r\nbody\r\n");
    }

    #[test]
    fn empty_message_is_a_dot_on_the_first_line() {
        assert_eq!(normalize(b".\r\nQUIT\r\n"), (3, Ok(Vec::new())));
    }

    #[test]
    fn dot_unstuffing() {
        let (_, out) = normalize(b"..\r\n...\r\n..x\r\n.x\r\nx.\r\n.\r\n");
        assert_eq!(out.unwrap(), b".\r\n..\r\n.x\r\nx\r\nx.\r\n");
    }

    #[test]
    fn stops_right_after_the_marker() {
        let input = b"a\r\n.\r\nMAIL FROM:<a@b.org>\r\n";
        let mut d = DataDecoder::new(100, BareNewline::Normalize);
        assert_eq!(d.decode(input), 6);
        assert!(d.is_done());
        assert_eq!(d.decode(b"more"), 0);
        assert_eq!(d.finish().unwrap(), b"a\r\n");
    }

    #[test]
    fn incomplete_until_the_marker() {
        let mut d = DataDecoder::new(100, BareNewline::Normalize);
        assert_eq!(d.decode(b"a\r\n.\r"), 5);
        assert!(!d.is_done());
        assert_eq!(d.clone().finish(), Err(DataError::Incomplete));
        assert_eq!(d.decode(b"\n"), 1);
        assert_eq!(d.finish().unwrap(), b"a\r\n");
    }

    #[test]
    fn smuggling_variants_never_end_the_data_in_one_chunk() {
        for (variant, middle) in SMUGGLING {
            let input = smuggling_input(variant);
            let (n, out) = normalize(&input);
            assert_eq!(n, input.len() - 6, "{variant:?}");
            let want = [b"hello", middle, b"MAIL FROM:<x@y.org>\r\n"].concat();
            assert_eq!(out.unwrap(), want, "{variant:?}");
        }
    }

    #[test]
    fn smuggling_variants_never_end_the_data_byte_by_byte() {
        for (variant, middle) in SMUGGLING {
            let input = smuggling_input(variant);
            let (n, d) = decode_in(&input, &[1], BareNewline::Normalize);
            assert_eq!(n, input.len() - 6, "{variant:?}");
            let want = [b"hello", middle, b"MAIL FROM:<x@y.org>\r\n"].concat();
            assert_eq!(d.finish().unwrap(), want, "{variant:?}");
        }
    }

    #[test]
    fn smuggling_variants_in_reject_mode() {
        for (variant, _) in SMUGGLING {
            let input = smuggling_input(variant);
            for chunks in [&[input.len()][..], &[1]] {
                let (n, d) = decode_in(&input, chunks, BareNewline::Reject);
                assert_eq!(n, input.len() - 6, "{variant:?}");
                let has_nul = variant.contains(&0);
                let out = d.finish();
                if has_nul {
                    assert!(out.is_ok(), "{variant:?}");
                } else {
                    assert_eq!(out, Err(DataError::BareNewline), "{variant:?}");
                }
            }
        }
    }

    #[test]
    fn bare_newlines_are_normalized() {
        let (_, out) = normalize(b"a\nb\rc\r\rd\r\n.\r\n");
        assert_eq!(out.unwrap(), b"a\r\nb\r\nc\r\n\r\nd\r\n");
    }

    #[test]
    fn a_dot_after_a_bare_newline_is_text() {
        let (_, out) = normalize(b"a\n.b\r\n.\r\n");
        assert_eq!(out.unwrap(), b"a\r\n.b\r\n");
    }

    #[test]
    fn bare_cr_before_the_real_marker_still_ends() {
        // The raw stream holds <CRLF>.<CRLF>: the first CR is bare content.
        let (n, out) = normalize(b"a\r\r\n.\r\n");
        assert_eq!(n, 7);
        assert_eq!(out.unwrap(), b"a\r\n\r\n");
    }

    #[test]
    fn reject_mode_reads_to_the_end_then_refuses() {
        let input = b"a\nb\r\n.\r\nQUIT\r\n";
        let (n, d) = decode_in(input, &[input.len()], BareNewline::Reject);
        assert_eq!(n, 8);
        assert!(d.content.is_empty());
        let err = d.finish().unwrap_err();
        assert_eq!(
            err.reply().to_wire(),
            "550 5.5.2 Error: bare <CR> or <LF> received\r\n"
        );
        let (_, d) = decode_in(b"clean\r\n.\r\n", &[3], BareNewline::Reject);
        assert_eq!(d.finish().unwrap(), b"clean\r\n");
    }

    #[test]
    fn size_limit() {
        let mut d = DataDecoder::new(7, BareNewline::Normalize);
        d.decode(b"12345\r\n.\r\n");
        assert_eq!(d.finish().unwrap(), b"12345\r\n");

        let mut d = DataDecoder::new(6, BareNewline::Normalize);
        let body = vec![b'x'; 10_000];
        assert_eq!(d.decode(&body), body.len());
        assert!(d.content.is_empty(), "nothing kept past the limit");
        assert_eq!(d.decode(b"\r\n.\r\nQUIT"), 5);
        assert_eq!(d.size(), 10_002);
        let err = d.finish().unwrap_err();
        assert_eq!(err, DataError::TooBig { size: 10_002 });
        assert_eq!(
            err.reply().to_wire(),
            "552 5.3.4 Error: message file too big\r\n"
        );
    }

    #[test]
    fn long_lines_are_accepted() {
        let line = vec![b'y'; 5000];
        let input = [&line[..], b"\r\n.\r\n"].concat();
        let (_, out) = normalize(&input);
        assert_eq!(out.unwrap().len(), 5002);
    }

    /// A small deterministic generator (Knuth's MMIX LCG), so the
    /// property tests need no extra crate and always run the same cases.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % bound.max(1)
        }
    }

    /// The specification, written the slow and obvious way: the data ends
    /// at the first `<CRLF>.<CRLF>` of the stream (counting the CRLF of the
    /// DATA command); the content before it is split at CRLF, bare CR and
    /// bare LF; a leading dot is removed from lines that follow a CRLF.
    fn oracle(input: &[u8]) -> Option<(usize, Vec<u8>)> {
        let stream = [b"\r\n", input].concat();
        let k = stream.windows(5).position(|w| w == b"\r\n.\r\n")?;
        let raw = &input[..k];
        let mut out = Vec::new();
        let (mut i, mut after_crlf, mut line_start) = (0, true, true);
        while i < raw.len() {
            let b = raw[i];
            if line_start && after_crlf && b == b'.' {
                i += 1;
                line_start = false;
                continue;
            }
            line_start = false;
            if b == b'\r' && raw.get(i + 1) == Some(&b'\n') {
                out.extend_from_slice(b"\r\n");
                (i, after_crlf, line_start) = (i + 2, true, true);
            } else if b == b'\r' || b == b'\n' {
                out.extend_from_slice(b"\r\n");
                (i, after_crlf, line_start) = (i + 1, false, true);
            } else {
                out.push(b);
                i += 1;
            }
        }
        Some((k + 3, out))
    }

    #[test]
    fn random_inputs_and_splits_agree_with_the_oracle() {
        const ALPHABET: &[u8] = b"\r\n.\r\n.a\0";
        let mut rng = Lcg(0x5eed);
        for case in 0..20_000 {
            let len = rng.next(40);
            let mut input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[rng.next(ALPHABET.len())])
                .collect();
            if case % 2 == 0 {
                input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            }
            let chunks: Vec<usize> = (0..8).map(|_| 1 + rng.next(6)).collect();
            let (n, d) = decode_in(&input, &chunks, BareNewline::Normalize);
            match oracle(&input) {
                Some((end, content)) => {
                    assert_eq!(n, end, "case {case}: {input:?} {chunks:?}");
                    assert_eq!(d.finish().unwrap(), content, "case {case}: {input:?}");
                }
                None => {
                    assert_eq!(n, input.len(), "case {case}: {input:?}");
                    assert!(!d.is_done(), "case {case}: {input:?}");
                }
            }
        }
    }

    #[test]
    fn smuggling_variants_under_random_splits() {
        let mut rng = Lcg(42);
        for (variant, middle) in SMUGGLING {
            let input = smuggling_input(variant);
            let want = [b"hello", middle, b"MAIL FROM:<x@y.org>\r\n"].concat();
            for _ in 0..200 {
                let chunks: Vec<usize> = (0..5).map(|_| 1 + rng.next(9)).collect();
                let (n, d) = decode_in(&input, &chunks, BareNewline::Normalize);
                assert_eq!(n, input.len() - 6);
                assert_eq!(d.finish().unwrap(), want);
            }
        }
    }
}
