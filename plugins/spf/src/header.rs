//! The `Received-SPF:` header field (RFC 7208 §9.1): the result, a
//! comment in words, and the key-value pairs `client-ip`,
//! `envelope-from`, `helo`, `receiver`, `identity`, `mechanism` and, for
//! errors, `problem`.

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
