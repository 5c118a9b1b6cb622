//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2): the part tree with each
//! part's type, parameters, id, description, encoding, size and line
//! count; BODYSTRUCTURE adds the extension data (MD5, disposition,
//! language, location).

use super::{Part, field, fields, params, split_params};
use crate::codec::response::{nstring, string};

/// Writes the structure of `part`; `extended` for BODYSTRUCTURE.
pub fn write(out: &mut Vec<u8>, msg: &[u8], part: &Part, extended: bool) {
    let header = &msg[part.start..part.body];
    out.push(b'(');
    if part.is_multipart() {
        if part.children.is_empty() {
            // A multipart without parts (no or wrong boundary): Dovecot
            // shows it as one empty text part; so do we.
            out.extend_from_slice(
                b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
            );
        }
        for child in &part.children {
            write(out, msg, child, extended);
        }
        out.push(b' ');
        string(out, part.kind.1.as_bytes());
        if extended {
            out.push(b' ');
            param_list(out, &part.params);
            extension(out, header);
        }
        out.push(b')');
        return;
    }
    string(out, part.kind.0.as_bytes());
    out.push(b' ');
    string(out, part.kind.1.as_bytes());
    out.push(b' ');
    let mut ps = part.params.clone();
    if part.kind.0 == "text" && !ps.iter().any(|(n, _)| n == "charset") {
        ps.push(("charset".into(), "us-ascii".into()));
    }
    param_list(out, &ps);
    for name in ["content-id", "content-description"] {
        out.push(b' ');
        nstring(out, field(header, name).as_deref().map(str::as_bytes));
    }
    out.push(b' ');
    let encoding = field(header, "content-transfer-encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "7bit".to_owned());
    string(out, encoding.as_bytes());
    let body = &msg[part.body..part.end];
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|b| **b == b'\n').count();
    if let Some(inner) = &part.message {
        out.push(b' ');
        super::envelope::envelope(out, &msg[inner.start..inner.body]);
        out.push(b' ');
        write(out, msg, inner, extended);
        out.extend_from_slice(format!(" {lines}").as_bytes());
    } else if part.kind.0 == "text" {
        out.extend_from_slice(format!(" {lines}").as_bytes());
    }
    if extended {
        out.push(b' ');
        nstring(
            out,
            field(header, "content-md5").as_deref().map(str::as_bytes),
        );
        extension(out, header);
    }
    out.push(b')');
}

/// Disposition, language and location (RFC 3501 §9 `body-ext-1part`).
fn extension(out: &mut Vec<u8>, header: &[u8]) {
    out.push(b' ');
    match field(header, "content-disposition") {
        Some(v) => {
            let mut pieces = split_params(&v);
            let kind = pieces.remove(0).trim().to_ascii_lowercase();
            out.push(b'(');
            string(out, kind.as_bytes());
            out.push(b' ');
            param_list(out, &params(pieces));
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let all = fields(header);
    match all
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-language"))
    {
        Some((_, v)) => {
            let langs: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            out.push(b'(');
            for (i, l) in langs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, l.as_bytes());
            }
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring(
        out,
        field(header, "content-location")
            .as_deref()
            .map(str::as_bytes),
    );
}

fn param_list(out: &mut Vec<u8>, ps: &[(String, String)]) {
    if ps.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (n, v)) in ps.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, n.as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}
