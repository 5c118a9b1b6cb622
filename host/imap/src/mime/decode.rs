//! Decoding for SEARCH, which matches what a reader sees (as Dovecot
//! does), not only the octets stored: RFC 2047 encoded-words in header
//! fields, and the quoted-printable or base64 text parts of a body in
//! their charset (RFC 2045 §6). FETCH never uses this: IMAP hands out the
//! stored octets.
//!
//! Charsets are looked up by their WHATWG labels (`encoding_rs`); an
//! unknown one decodes as UTF-8 with replacement characters, so a search
//! still finds the ASCII in it. Everything here is linear in its input and
//! never fails: malformed input is kept as it is.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use encoding_rs::Encoding;

use super::Part;

/// The longest encoded-word looked for.
const MAX_WORD: usize = 200;

/// Base64 as mail has it: padding optional, stray bits tolerated.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Text in `charset` as a string.
fn in_charset(bytes: &[u8], charset: &str) -> String {
    // RFC 2231 §5: `charset*language`.
    let label = charset.split('*').next().unwrap_or(charset);
    match Encoding::for_label(label.trim().as_bytes()) {
        Some(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Base64 with the line breaks and spaces of a body left out.
fn base64(text: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT.decode(clean).ok()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Quoted-printable (RFC 2045 §6.7); in an encoded-word (`q`), `_` is a
/// space (RFC 2047 §4.2).
fn quoted_printable(text: &[u8], word: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' if word => out.push(b' '),
            b'=' => {
                match (text.get(i + 1), text.get(i + 2)) {
                    (Some(a), Some(b)) if hex(*a).is_some() && hex(*b).is_some() => {
                        out.push(hex(*a).unwrap_or(0) * 16 + hex(*b).unwrap_or(0));
                        i += 3;
                        continue;
                    }
                    // A soft line break.
                    (Some(b'\r'), Some(b'\n')) => {
                        i += 3;
                        continue;
                    }
                    (Some(b'\n'), _) => {
                        i += 2;
                        continue;
                    }
                    _ => out.push(b'='),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// One encoded-word `=?charset?enc?text?=` at the start of `s`: its text
/// and its length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    // RFC 2047 §2: a word is at most 75 characters; looking no further
    // (with room for lax writers) keeps a header full of `=?` linear.
    let mut cut = s.len().min(MAX_WORD);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let s = &s[..cut];
    let rest = s.strip_prefix("=?")?;
    let (charset, rest) = rest.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty() || text.contains(' ') {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64(text.as_bytes())?,
        "Q" | "q" => quoted_printable(text.as_bytes(), true),
        _ => return None,
    };
    let used = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some((in_charset(&bytes, charset), used))
}

/// A header field value with its encoded-words decoded; the space between
/// two adjacent encoded-words goes (RFC 2047 §6.2).
pub fn header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    // Where the output stood right after the last encoded-word.
    let mut after_word: Option<usize> = None;
    while !rest.is_empty() {
        if rest.starts_with("=?")
            && let Some((text, used)) = encoded_word(rest)
        {
            if let Some(at) = after_word
                && out[at..].chars().all(|c| c == ' ' || c == '\t')
            {
                out.truncate(at);
            }
            out.push_str(&text);
            rest = &rest[used..];
            after_word = Some(out.len());
            continue;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// The decoded text of every text part under `part` (message/rfc822
/// ones included), as a reader would see it.
pub fn body_texts(msg: &[u8], part: &Part, out: &mut Vec<String>) {
    if let Some(inner) = &part.message {
        body_texts(msg, inner, out);
        return;
    }
    if part.is_multipart() {
        for child in &part.children {
            body_texts(msg, child, out);
        }
        return;
    }
    if part.kind.0 != "text" {
        return;
    }
    let header = &msg[part.start..part.body];
    let raw = &msg[part.body..part.end.max(part.body)];
    let encoding = super::field(header, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.trim() {
        "base64" => base64(raw).unwrap_or_else(|| raw.to_vec()),
        "quoted-printable" => quoted_printable(raw, false),
        _ => raw.to_vec(),
    };
    out.push(in_charset(&bytes, part.param("charset").unwrap_or("utf-8")));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(header_value("=?UTF-8?B?w6l0w6k=?="), "été");
        assert_eq!(
            header_value("=?iso-8859-1?q?caf=E9_cr=E8me?= ok"),
            "café crème ok"
        );
        // Adjacent words join; plain text keeps its spaces.
        assert_eq!(header_value("=?utf-8?q?a?= =?utf-8?q?b?= c  d"), "ab c  d");
        assert_eq!(header_value("x =?utf-8?q?y?="), "x y");
        assert_eq!(header_value("=?koi8-r?b?8NLJ18XU?="), "Привет");
        // Malformed words stay as they are.
        for raw in [
            "=?utf-8?x?abc?=",
            "=?utf-8?q?abc",
            "=??q?a?=",
            "=?utf-8?b?***?=",
        ] {
            assert_eq!(header_value(raw), raw);
        }
        assert_eq!(header_value("=?utf-8*en?q?hi?="), "hi");
        assert_eq!(header_value("=?utf-8?q?=E9t=C3=A9?="), "\u{fffd}té");
        // Many openings without an end: linear, kept as they are.
        let hostile = "=?a?b".repeat(200_000);
        let started = std::time::Instant::now();
        assert!(header_value(&hostile) == hostile);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn transfer_encodings() {
        assert_eq!(quoted_printable(b"a=3Db=\r\nc=\nd=zz", false), b"a=bcd=zz");
        let msg = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\
            Content-Type: text/plain; charset=iso-8859-1\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve\r\n\
            --x\r\nContent-Type: text/html; charset=utf-8\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nPGI+\r\nw7xiZXI8L2I+\r\n\
            --x\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--x--\r\n";
        let root = crate::mime::parse(msg);
        let mut texts = Vec::new();
        body_texts(msg, &root, &mut texts);
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].starts_with("naïve"), "{texts:?}");
        assert_eq!(texts[1], "<b>über</b>");
    }
}
