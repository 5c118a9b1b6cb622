//! The DATA decoder's tests: every smuggling look-alike of `<CRLF>.<CRLF>`
//! in one chunk, byte by byte and under random splits, and a slow obvious
//! oracle the decoder must agree with. Apart because they outweigh the
//! decoder itself.

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
