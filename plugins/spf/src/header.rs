//! The header fields that carry a result: `Received-SPF:` (RFC 7208
//! §9.1: the result, a comment in words, and the key-value pairs
//! `client-ip`, `envelope-from`, `helo`, `receiver`, `identity`,
//! `mechanism` and, for errors, `problem`), and `Authentication-Results:`
//! (RFC 8601: this host's authserv-id, `spf=RESULT` and the identity that
//! decided, `smtp.mailfrom` or `smtp.helo`, RFC 7208 §9.2). Also the
//! authserv-id of an Authentication-Results field that arrived with the
//! message, to tell ours from forgeries (RFC 8601 §5).

use crate::eval::{Outcome, SpfResult};
use crate::policy::Session;

/// The longest `problem=` kept: the whole field must stay one line of at
/// most 998 bytes (RFC 5322 §2.1.1).
const MAX_PROBLEM: usize = 200;

/// The header line, `Received-SPF: result (comment) key=value; ...`.
/// `sender` is none for the null sender.
pub fn received_spf(
    outcome: &Outcome,
    identity: &str,
    req: &Session<'_>,
    sender: Option<&str>,
    receiver: &str,
) -> String {
    let ip = req.client_address;
    let who = match sender {
        Some(s) => format!("domain of {}", comment_safe(s)),
        None => format!("domain of postmaster@{}", comment_safe(req.helo_name)),
    };
    let comment = match outcome.result {
        SpfResult::Pass => format!("{who} designates {ip} as permitted sender"),
        SpfResult::Fail => format!("{who} does not designate {ip} as permitted sender"),
        SpfResult::SoftFail => {
            format!("{who} does not designate {ip} as permitted sender (transitioning)")
        }
        SpfResult::Neutral => format!("{ip} is neither permitted nor denied by {who}"),
        SpfResult::None => format!("{who} does not designate permitted sender hosts"),
        SpfResult::TempError => format!("error in processing during lookup of {who}"),
        SpfResult::PermError => {
            format!("permanent error in processing during lookup of {who}")
        }
    };
    let mut pairs = vec![
        format!("client-ip={ip}"),
        format!("envelope-from={}", quoted(sender.unwrap_or(""))),
        format!("helo={}", value(req.helo_name)),
        format!("receiver={}", value(receiver)),
        format!("identity={identity}"),
    ];
    if let Some(m) = outcome.mechanism.as_deref().filter(|m| !m.is_empty()) {
        pairs.push(format!("mechanism={}", quoted(m)));
    }
    if let Some(p) = &outcome.problem {
        let p: String = p.chars().take(MAX_PROBLEM).collect();
        pairs.push(format!("problem={}", quoted(&p)));
    }
    format!(
        "Received-SPF: {} ({receiver}: {comment}) {};",
        outcome.result.as_str(),
        pairs.join("; ")
    )
}

/// The header line `Authentication-Results: AUTHSERV-ID; spf=RESULT
/// smtp.mailfrom=DOMAIN` (RFC 8601 §2.2, §2.7.2; RFC 7208 §9.2), or
/// `smtp.helo=NAME` when the HELO identity decided (the null sender,
/// RFC 7208 §2.4). Errors carry the problem as a `reason` (§2.3).
pub fn authentication_results(
    outcome: &Outcome,
    helo_identity: bool,
    req: &Session<'_>,
    authserv_id: &str,
) -> String {
    let property = if helo_identity {
        format!("smtp.helo={}", token(req.helo_name.trim()))
    } else {
        // RFC 7208 §4.3: a sender without a local part is its domain.
        let domain = req.sender.rsplit_once('@').map_or(req.sender, |(_, d)| d);
        format!("smtp.mailfrom={}", token(domain))
    };
    let reason = match (&outcome.problem, outcome.result) {
        (Some(p), SpfResult::TempError | SpfResult::PermError) => {
            let p: String = p.chars().take(MAX_PROBLEM).collect();
            format!(" reason={}", quoted(&p))
        }
        _ => String::new(),
    };
    format!(
        "Authentication-Results: {authserv_id}; spf={}{reason} {property}",
        outcome.result.as_str()
    )
}

/// The authserv-id of an `Authentication-Results:` field body (RFC 8601
/// §2.2: `[CFWS] authserv-id`, a token or a quoted-string), or none if it
/// has none.
pub fn authserv_id(body: &str) -> Option<String> {
    let mut rest = body.trim_start();
    // Leading comments, nested as RFC 5322 §3.2.2 allows.
    while rest.starts_with('(') {
        let mut depth = 0usize;
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = rest[end?..].trim_start();
    }
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut id = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return (!id.is_empty()).then_some(id),
                '\\' => id.extend(chars.next()),
                c => id.push(c),
            }
        }
        return None;
    }
    let id: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !";()\"".contains(*c))
        .collect();
    (!id.is_empty()).then_some(id)
}

/// A value (RFC 8601 §2.2, RFC 2045 `token`) as it is when it is a plain
/// host name, otherwise quoted: an address literal's brackets, a UTF-8
/// name.
fn token(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if plain { text.to_owned() } else { quoted(text) }
}

/// Text for inside a comment: no parentheses or backslashes to balance,
/// no control characters.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// A dot-atom as it is, anything else quoted (RFC 5322 §3.2.3, §3.2.4).
fn value(text: &str) -> String {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !text.is_empty()
        && text
            .split('.')
            .all(|a| !a.is_empty() && a.chars().all(atext));
    if dot_atom {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// A quoted-string: `"` and `\` escaped, control characters dropped.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
