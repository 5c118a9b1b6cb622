//! What an access(5) table answer means: Postfix's `check_table_result`
//! (smtpd_check.c), action by action.
//!
//! The first word is the action, case-insensitive; the rest is its text.
//! Replies take Postfix's shape, `<NAME>: CLASS rejected: TEXT`, with the
//! codes of `access_map_reject_code` (554) and `access_map_defer_code`
//! (450), default enhanced codes 5.7.1 / 4.7.1, an enhanced code at the
//! start of the text taking their place, and Postfix's `smtpd_dsn_fix`
//! mapping of address codes (X.1.Y) to what is being rejected.
//!
//! FILTER gives the `filter` verdict: the queue delivers the message to
//! that `transport:destination` (Postfix's content filter); one without a
//! destination is logged and ignored, as Postfix does.
//! Where Postern has no such feature, the action says so in the log and
//! has no effect, as Postfix does with a malformed one: PREPEND in the end-of-data list is
//! refused with Postfix's warning (`action PREPEND is unavailable in
//! smtpd_end_of_data_restrictions`) and has no effect. HANGUP closes the
//! connection (the `hangup` verdict: `421 4.7.0`, logged as Postfix's
//! `hangup:` line); INFO and WARN log the text in Postfix's `info:` and
//! `warn:` lines (the `info` and `warn` verdicts) and go on. A right-hand
//! side that is not an action is a list of restriction names
//! ([`crate::restriction`]): those that need only the request are
//! evaluated here, the rest (restriction classes) handed to the server
//! with the `restriction` verdict; a name the server does not know is a
//! configuration error: logged, and the client gets `451 4.3.5 Server
//! configuration error`, as Postfix answers an unknown restriction.

use crate::host::LogLevel;
use crate::{Reply, Request, Stage, Verdict, restriction};

/// The reply codes of access map actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codes {
    /// `access_map_reject_code`: REJECT.
    pub reject: u16,
    /// `access_map_defer_code`: DEFER, DEFER_IF_PERMIT, DEFER_IF_REJECT.
    pub defer: u16,
}

impl Default for Codes {
    fn default() -> Codes {
        Codes {
            reject: 554,
            defer: 450,
        }
    }
}

/// What a lookup answered about, for replies and logs.
#[derive(Debug)]
pub struct Context<'a> {
    /// The table, as the entry names it.
    pub table: &'a str,
    /// The key that matched.
    pub key: &'a str,
    /// What replies quote in `<...>`: the address, HELO name or
    /// `name[addr]`.
    pub reply_name: &'a str,
    /// "Sender address", "Client host", ...
    pub class: &'a str,
    /// The reply codes.
    pub codes: Codes,
    /// The request, for restriction names on the right-hand side.
    pub request: &'a Request,
}

/// A verdict and the lines to log on the way.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What the plugin answers.
    pub verdict: Verdict,
    /// What it logs first (through `host.log` in a plugin).
    pub log: Vec<(LogLevel, String)>,
}

impl From<Verdict> for Outcome {
    fn from(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            log: Vec::new(),
        }
    }
}

impl Outcome {
    fn logged(verdict: Verdict, level: LogLevel, line: String) -> Outcome {
        Outcome {
            verdict,
            log: vec![(level, line)],
        }
    }
}

/// `451 4.3.5 Server configuration error`, after logging why.
pub fn server_error(why: String) -> Outcome {
    Outcome::logged(
        Verdict::Reject(reply(451, "4.3.5", "Server configuration error")),
        LogLevel::Warn,
        why,
    )
}

fn reply(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
    Reply {
        code,
        enhanced: enhanced.to_owned(),
        text: text.into(),
    }
}

/// Evaluates a table answer `value` (Postfix's `check_table_result`).
pub fn evaluate(value: &str, cx: &Context<'_>) -> Outcome {
    let value = value.trim();
    let (cmd, text) = match value.split_once([' ', '\t']) {
        Some((c, t)) => (c, t.trim_start()),
        None => (value, ""),
    };
    let is = |word: &str| cmd.eq_ignore_ascii_case(word);
    let about = |what: &str| format!("<{}>: {} {what}", cx.reply_name, cx.class);
    let refuse = |code: u16, default_text: &str| {
        let (dsn, text) = split_dsn(text);
        let dsn = dsn.unwrap_or(if code >= 500 { "5.7.1" } else { "4.7.1" });
        let text = if text.is_empty() { default_text } else { text };
        reply(
            code,
            &fix_dsn(dsn, code, cx.class),
            about(&format!("rejected: {text}")),
        )
    };
    let ignored = |why: &str| {
        Outcome::logged(
            Verdict::Dunno,
            LogLevel::Warn,
            format!("access table {} entry \"{}\" {why}", cx.table, cx.key),
        )
    };
    if is("DUNNO") {
        Verdict::Dunno.into()
    } else if is("REJECT") {
        Verdict::Reject(refuse(cx.codes.reject, "Access denied")).into()
    } else if is("DEFER") {
        Verdict::Defer(refuse(cx.codes.defer, "Access denied")).into()
    } else if is("INFO") {
        Verdict::Info(text.to_owned()).into()
    } else if is("HANGUP") {
        Verdict::Hangup(text.to_owned()).into()
    } else if is("WARN") {
        Verdict::Warn(text.to_owned()).into()
    } else if is("FILTER") {
        if text.is_empty() {
            ignored("has FILTER entry without value")
        } else if !text.contains(':') || text.contains(char::is_whitespace) {
            ignored("requires transport:destination")
        } else {
            // smtpd logs `filter: RCPT from ...: triggers FILTER ...`.
            Verdict::Filter(text.to_owned()).into()
        }
    } else if is("HOLD") {
        Verdict::Hold(about(or(text, "triggers HOLD action"))).into()
    } else if is("DISCARD") {
        Verdict::Discard(about(or(text, "triggers DISCARD action"))).into()
    } else if is("REDIRECT") || is("BCC") {
        if !text.contains('@') {
            return ignored("requires user@domain target");
        }
        if is("REDIRECT") {
            Verdict::Redirect(text.to_owned()).into()
        } else {
            Verdict::Bcc(text.to_owned()).into()
        }
    } else if is("DEFER_IF_PERMIT") {
        Verdict::DeferIfPermit(refuse(cx.codes.defer, "Service unavailable")).into()
    } else if is("DEFER_IF_REJECT") {
        Verdict::DeferIfReject(refuse(cx.codes.defer, "Service unavailable")).into()
    } else if is("PREPEND") {
        if cx.request.stage == Stage::EndOfData {
            // Postfix's check_table_result: the header would come after
            // the message it belongs to.
            Outcome::logged(
                Verdict::Dunno,
                LogLevel::Warn,
                format!(
                    "access table {}: action PREPEND is unavailable in smtpd_end_of_data_restrictions",
                    cx.table
                ),
            )
        } else if is_header(text) {
            Verdict::Prepend(text.to_owned()).into()
        } else {
            ignored("requires header: text")
        }
    } else if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All-numeric: OK (an out-of-band authentication time stamp).
        Verdict::Permit.into()
    } else if let Some(code) = numeric(cmd).filter(|_| !text.is_empty()) {
        Verdict::Reject(refuse(code, "Access denied")).into()
    } else if is("OK") || is("RELAY") {
        Verdict::Permit.into()
    } else if value.contains(':') {
        server_error(format!(
            "access table {} has entry with lookup table: {value}; do not specify lookup tables inside access maps",
            cx.table
        ))
    } else if value.is_empty() {
        // "In the dark ages, an empty right-hand side meant OK."
        Outcome::logged(
            Verdict::Permit,
            LogLevel::Warn,
            format!("access table {} entry {} has empty value", cx.table, cx.key),
        )
    } else {
        restriction::evaluate_list(value, cx)
    }
}

/// The words [`evaluate`] reads as an action when they come first.
const ACTION_WORDS: [&str; 16] = [
    "DUNNO",
    "REJECT",
    "DEFER",
    "INFO",
    "HANGUP",
    "WARN",
    "FILTER",
    "HOLD",
    "DISCARD",
    "REDIRECT",
    "BCC",
    "DEFER_IF_PERMIT",
    "DEFER_IF_REJECT",
    "PREPEND",
    "OK",
    "RELAY",
];

/// The restriction names (lower-cased) of `value` when [`evaluate`] reads
/// it as a list of them; `None` when it is an action (or nothing).
pub fn restriction_names(value: &str) -> Option<Vec<String>> {
    let value = value.trim();
    let cmd = value.split_once([' ', '\t']).map_or(value, |(c, _)| c);
    let action = ACTION_WORDS.iter().any(|w| cmd.eq_ignore_ascii_case(w))
        || value.is_empty()
        || value.bytes().all(|b| b.is_ascii_digit())
        || numeric(cmd).is_some()
        || value.contains(':');
    (!action).then(|| {
        value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    })
}

fn or<'a>(text: &'a str, default: &'a str) -> &'a str {
    if text.is_empty() { default } else { text }
}

/// `4NN` or `5NN`.
fn numeric(cmd: &str) -> Option<u16> {
    let b = cmd.as_bytes();
    (b.len() == 3 && matches!(b[0], b'4' | b'5') && b[1..].iter().all(u8::is_ascii_digit))
        .then(|| cmd.parse().ok())
        .flatten()
}

/// An RFC 3463 code at the start of `text` (Postfix's `dsn_split`), and
/// the rest.
pub fn split_dsn(text: &str) -> (Option<&str>, &str) {
    let (word, rest) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    let mut parts = word.split('.');
    let valid = matches!(parts.next(), Some("2" | "4" | "5"))
        && parts
            .by_ref()
            .take(2)
            .filter(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
            .count()
            == 2
        && parts.next().is_none();
    if valid {
        (Some(word), rest.trim_start())
    } else {
        (None, text)
    }
}

/// Postfix's `smtpd_dsn_fix`: an address code (X.1.Y) is mapped to what
/// is being rejected (a sender or a recipient; 4.0.0 for anything else),
/// and the class digit follows the reply code.
pub fn fix_dsn(dsn: &str, code: u16, class: &str) -> String {
    const MAP: &[(&str, &str, &str)] = &[
        ("1", "4.1.0", "4.1.1"),
        ("2", "4.1.8", "4.1.2"),
        ("3", "4.1.7", "4.1.3"),
        ("4", "4.1.0", "4.1.4"),
        ("5", "4.1.0", "4.1.5"),
        ("6", "4.1.0", "4.1.6"),
        ("7", "4.1.7", "4.1.3"),
        ("8", "4.1.8", "4.1.2"),
    ];
    let fixed = match dsn.get(1..4) {
        Some(".1.") => {
            let micro = &dsn[4..];
            let row = MAP.iter().find(|(m, _, _)| *m == micro);
            match class {
                "Sender address" => row.map_or("4.1.0", |r| r.1),
                "Recipient address" => row.map_or("4.1.0", |r| r.2),
                _ => "4.0.0",
            }
        }
        _ => dsn,
    };
    let class_digit = if code >= 500 { '5' } else { '4' };
    format!("{class_digit}{}", &fixed[1..])
}

/// Whether `text` is a header line `Name: value` (Postfix's `is_header`):
/// a name of printable characters other than `:` and space, then `:`.
fn is_header(text: &str) -> bool {
    match text.split_once(':') {
        Some((name, _)) => !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()),
        None => false,
    }
}

#[cfg(test)]
#[path = "access_action_tests.rs"]
mod tests;
