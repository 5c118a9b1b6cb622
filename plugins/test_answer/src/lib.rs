//! `test_answer`: a test guest that answers what its arguments say, so that
//! the policy runtime's mapping of verdicts and requests can be tested
//! against a real component. Never embedded (its name starts with `test_`).
//!
//! Arguments: `verdict` (dunno, permit, reject, defer, defer_if_permit,
//! defer_if_reject, hold, discard, prepend, redirect, bcc, warn, info,
//! hangup, restriction), `code`,
//! `enhanced`, `text`, `log` (a message to send through `host.log`), and
//! `cache` (attribute names, comma-separated, for `host.cache-verdicts`,
//! kept `cache_ttl` seconds, default 60).
//! In `text`, `{recipient}`, `{sender}`, `{client_address}`, `{helo}`,
//! `{instance}`, `{queue_id}`, `{stage}`, `{trusted}`, `{class}`, `{args}`
//! and `{now}` are replaced from the request, the arguments and
//! `host.now`.

use std::sync::Mutex;

use postern_plugin_sdk::host::{self, LogLevel};
use postern_plugin_sdk::{Attribute, Guest, Reply, Request, Verdict, export_plugin};

/// The arguments saved by `init`.
static ARGS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Verdict names `init` accepts.
const VERDICTS: &[&str] = &[
    "dunno",
    "permit",
    "reject",
    "defer",
    "defer_if_permit",
    "defer_if_reject",
    "hold",
    "discard",
    "prepend",
    "redirect",
    "bcc",
    "warn",
    "info",
    "hangup",
    "restriction",
];

/// The plugin.
struct Answer;

impl Guest for Answer {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in &args {
            match key.as_str() {
                "verdict" if !VERDICTS.contains(&value.as_str()) => {
                    return Err(format!("verdict: unknown verdict {value:?}"));
                }
                "code" if value.parse::<u16>().is_err() => {
                    return Err(format!("code: {value:?} is not a number"));
                }
                "cache" => {
                    let ttl = args
                        .iter()
                        .find(|(k, _)| k == "cache_ttl")
                        .map_or(Ok(60), |(_, v)| v.parse())
                        .map_err(|_| "cache_ttl: not a number".to_owned())?;
                    host::cache_verdicts(&Attribute::list(value)?, ttl);
                }
                "verdict" | "code" | "enhanced" | "text" | "log" | "cache_ttl" => {}
                _ => return Err(format!("{key}: unknown argument")),
            }
        }
        *ARGS.lock().map_err(|_| "poisoned".to_owned())? = args;
        Ok(())
    }

    fn check(req: Request) -> Verdict {
        let args = ARGS.lock().map(|a| a.clone()).unwrap_or_default();
        let arg = |key: &str| {
            args.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let log = arg("log");
        if !log.is_empty() {
            host::log(LogLevel::Info, &log);
        }
        let text = arg("text")
            .replace("{recipient}", &req.recipient)
            .replace("{sender}", &req.sender)
            .replace("{client_address}", &req.client_address)
            .replace("{helo}", &req.helo_name)
            .replace("{instance}", &req.instance)
            .replace("{queue_id}", &req.queue_id)
            .replace("{stage}", &format!("{:?}", req.stage))
            .replace("{trusted}", &req.trusted.to_string())
            .replace("{class}", &format!("{:?}", req.recipient_class))
            .replace("{args}", &format!("{args:?}"));
        // Read only when asked for: a call that reads the time keeps no
        // verdict.
        let text = if text.contains("{now}") {
            text.replace("{now}", &host::now().to_string())
        } else {
            text
        };
        let reply = || Reply {
            code: arg("code").parse().unwrap_or(0),
            enhanced: arg("enhanced"),
            text: text.clone(),
        };
        match arg("verdict").as_str() {
            "permit" => Verdict::Permit,
            "reject" => Verdict::Reject(reply()),
            "defer" => Verdict::Defer(reply()),
            "defer_if_permit" => Verdict::DeferIfPermit(reply()),
            "defer_if_reject" => Verdict::DeferIfReject(reply()),
            "hold" => Verdict::Hold(text),
            "discard" => Verdict::Discard(text),
            "prepend" => Verdict::Prepend(text),
            "redirect" => Verdict::Redirect(text),
            "bcc" => Verdict::Bcc(text),
            "warn" => Verdict::Warn(text),
            "info" => Verdict::Info(text),
            "hangup" => Verdict::Hangup(text),
            "restriction" => Verdict::Restriction(text),
            _ => Verdict::Dunno,
        }
    }
}

export_plugin!(Answer);
