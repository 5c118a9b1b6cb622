//! The MIME structure of a message (RFC 2045, 2046) as FETCH needs it:
//! every part's header and body as byte ranges of the stored message, so
//! that `BODY[2.1.HEADER]` is a slice, never a re-encoding.
//!
//! Why not mail-parser: IMAP wants the octets as stored. ENVELOPE carries
//! header values undecoded (RFC 3501 §7.4.2: encoded-words stay), and
//! BODY[section] and BODYSTRUCTURE's sizes and line counts are of the
//! raw part, where mail-parser decodes headers and bodies for display.
//! Splitting on boundaries and reading a few headers is what is needed.
//!
//! # Layout
//! - [`decode`]: encoded-words and text parts decoded, for SEARCH.
//! - [`envelope`]: ENVELOPE and address lists.
//! - [`structure`]: BODY and BODYSTRUCTURE.

pub mod decode;
pub mod envelope;
pub mod structure;

use crate::codec::fetch::{Section, SectionText};

/// Nesting beyond this is treated as an opaque body, so a hostile
/// message cannot make the parser recurse without bound.
const MAX_DEPTH: usize = 16;

/// One part: header and body ranges, and what it contains.
#[derive(Debug, Clone)]
pub struct Part {
    /// Where its header starts.
    pub start: usize,
    /// Where its body starts (after the blank line).
    pub body: usize,
    /// Where its body ends.
    pub end: usize,
    /// Content-Type, lower-case: (`text`, `plain`).
    pub kind: (String, String),
    /// Content-Type parameters, names lower-case, values as written.
    pub params: Vec<(String, String)>,
    /// The parts of a multipart.
    pub children: Vec<Part>,
    /// The message inside a message/rfc822.
    pub message: Option<Box<Part>>,
}

impl Part {
    /// Whether it is a multipart.
    pub fn is_multipart(&self) -> bool {
        self.kind.0 == "multipart"
    }

    /// A Content-Type parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole message.
pub fn parse(msg: &[u8]) -> Part {
    part(msg, 0, msg.len(), ("text", "plain"), 0)
}

fn part(msg: &[u8], start: usize, end: usize, default: (&str, &str), depth: usize) -> Part {
    let body = header_end(msg, start, end);
    let header = &msg[start..body];
    let (kind, params) = match field(header, "content-type").and_then(|v| content_type(&v)) {
        Some((t, s, p)) => ((t, s), p),
        None => ((default.0.to_owned(), default.1.to_owned()), vec![]),
    };
    let mut part = Part {
        start,
        body,
        end,
        kind,
        params,
        children: Vec::new(),
        message: None,
    };
    if depth >= MAX_DEPTH {
        return part;
    }
    if part.is_multipart() {
        if let Some(boundary) = part.param("boundary").map(str::to_owned) {
            let child_default = if part.kind.1 == "digest" {
                ("message", "rfc822")
            } else {
                ("text", "plain")
            };
            for (s, e) in split_multipart(msg, body, end, boundary.as_bytes()) {
                part.children
                    .push(self::part(msg, s, e, child_default, depth + 1));
            }
        }
    } else if part.kind == ("message".to_owned(), "rfc822".to_owned()) {
        part.message = Some(Box::new(self::part(
            msg,
            body,
            end,
            ("text", "plain"),
            depth + 1,
        )));
    }
    part
}

/// Where the header starting at `start` ends: after its blank line, or
/// `end` if there is none.
fn header_end(msg: &[u8], start: usize, end: usize) -> usize {
    let mut i = start;
    // A part that starts with a blank line has an empty header.
    loop {
        if msg[i..end].starts_with(b"\r\n") {
            return i + 2;
        }
        if msg[i..end].starts_with(b"\n") {
            return i + 1;
        }
        match msg[i..end].iter().position(|b| *b == b'\n') {
            Some(p) => i += p + 1,
            None => return end,
        }
    }
}

/// The (start, end) of each body part between boundary lines (RFC 2046
/// §5.1.1): the CRLF before a delimiter belongs to the delimiter.
fn split_multipart(msg: &[u8], body: usize, end: usize, boundary: &[u8]) -> Vec<(usize, usize)> {
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut i = body;
    while i < end {
        let line_end = msg[i..end]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(end, |p| i + p + 1);
        let line = &msg[i..line_end];
        if let Some(rest) = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(boundary))
        {
            let closing = rest.starts_with(b"--");
            let rest = if closing { &rest[2..] } else { rest };
            if rest.iter().all(|b| b.is_ascii_whitespace()) {
                if let Some(s) = open.take() {
                    let mut e = i;
                    if e > s && msg[e - 1] == b'\n' {
                        e -= 1;
                        if e > s && msg[e - 1] == b'\r' {
                            e -= 1;
                        }
                    }
                    parts.push((s, e.max(s)));
                }
                if closing {
                    return parts;
                }
                open = Some(line_end);
            }
        }
        i = line_end;
    }
    if let Some(s) = open {
        parts.push((s, end));
    }
    parts
}

/// The unfolded value of the first `name` field in a header block.
pub fn field(header: &[u8], name: &str) -> Option<String> {
    fields(header)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Every field as (name, unfolded value without leading space).
pub fn fields(header: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in raw_fields(header) {
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        let value: String = value
            .split(['\r', '\n'])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("");
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    out
}

/// Each field's raw octets, folded lines included, with their line end.
pub fn raw_fields(header: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(header.len(), |p| i + p + 1);
        let line = &header[i..end];
        let blank = line == b"\r\n" || line == b"\n";
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            if let Some(s) = start.take() {
                out.push(&header[s..i]);
            }
            if !blank {
                start = Some(i);
            }
        }
        i = end;
    }
    if let Some(s) = start {
        out.push(&header[s..]);
    }
    out
}

/// Content-Type parameters: (name, value) pairs.
pub type Params = Vec<(String, String)>;

/// `type/subtype; name=value; name="quoted value"`.
pub fn content_type(value: &str) -> Option<(String, String, Params)> {
    let mut pieces = split_params(value);
    let first = pieces.remove(0);
    let (t, s) = first.split_once('/')?;
    let (t, s) = (t.trim().to_ascii_lowercase(), s.trim().to_ascii_lowercase());
    if t.is_empty() || s.is_empty() {
        return None;
    }
    Some((t, s, params(pieces)))
}

/// Parameters after a `;`-separated value (Content-Disposition too).
pub fn params(pieces: Vec<String>) -> Vec<(String, String)> {
    pieces
        .into_iter()
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map_or_else(
                    || v.to_owned(),
                    |v| v.replace("\\\"", "\"").replace("\\\\", "\\"),
                );
            Some((n.trim().to_ascii_lowercase(), v))
        })
        .collect()
}

/// Splits at `;` outside quotes.
pub fn split_params(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            out.push(String::new());
            continue;
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// The part a section's numbers point at (RFC 3501 §6.4.5): part 1 of a
/// single-part message is its body; a message/rfc822 part's numbers go
/// into the message it holds.
pub fn find<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut cur = root;
    for (i, n) in path.iter().enumerate() {
        let base = match &cur.message {
            Some(m) if i > 0 => m,
            _ => cur,
        };
        let n = usize::try_from(*n).ok()?.checked_sub(1)?;
        cur = if base.is_multipart() {
            base.children.get(n)?
        } else if n == 0 {
            base
        } else {
            return None;
        };
    }
    Some(cur)
}

/// The octets of a section; `None` when the part does not exist (the
/// response is then NIL, as Dovecot answers).
pub fn section<'m>(
    msg: &'m [u8],
    root: &Part,
    section: &Section,
) -> Option<std::borrow::Cow<'m, [u8]>> {
    use std::borrow::Cow;
    let part = find(root, &section.part)?;
    // HEADER and TEXT of a nested part are those of the message it holds.
    let message = if section.part.is_empty() {
        Some(part)
    } else {
        part.message.as_deref()
    };
    Some(match &section.text {
        None if section.part.is_empty() => Cow::Borrowed(msg),
        None => Cow::Borrowed(&msg[part.body..part.end]),
        Some(SectionText::Mime) => Cow::Borrowed(&msg[part.start..part.body]),
        Some(SectionText::Header) => {
            let m = message?;
            Cow::Borrowed(&msg[m.start..m.body])
        }
        Some(SectionText::Text) => {
            let m = message?;
            Cow::Borrowed(&msg[m.body..m.end])
        }
        Some(SectionText::Fields(names) | SectionText::FieldsNot(names)) => {
            let m = message?;
            let keep = matches!(section.text, Some(SectionText::Fields(_)));
            let mut out = Vec::new();
            for raw in raw_fields(&msg[m.start..m.body]) {
                let name = raw.split(|b| *b == b':').next().unwrap_or_default();
                let name = String::from_utf8_lossy(name).trim().to_ascii_uppercase();
                if names.contains(&name) == keep {
                    out.extend_from_slice(raw);
                }
            }
            out.extend_from_slice(b"\r\n");
            Cow::Owned(out)
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
