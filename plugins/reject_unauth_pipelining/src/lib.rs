//! `reject_unauth_pipelining`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Postfix rejects a client that sent commands ahead of the replies where
//! RFC 2920 §3.1 does not allow it (before the greeting, or behind a
//! command that ends a group, such as EHLO or DATA, or without PIPELINING
//! having been offered): `503 5.5.0 <WHAT>: CLASS rejected: Improper use
//! of SMTP command pipelining`, the spam-bot tell.
//!
//! Not enforced yet: the request does not say whether the client
//! pipelined illegally (that needs an attribute `illegal-pipelining: bool`
//! in `wit/policy.wit`'s `request`, which the SMTP session sets when it
//! finds input buffered where RFC 2920 forbids it). Until the host hands
//! it over the plugin has no opinion (dunno), and says so once a day in
//! the log, so that an operator's `main.cf` loads unchanged without
//! believing the check is in force. [`reply`] is the reply it will give.
//! It takes no arguments.

use postern_plugin_sdk::{Args, Guest, Request, Stage, Verdict, export_plugin, host, kv};

/// How often the "not enforced" notice is logged: once a day.
const NOTICE_TTL: u64 = 86_400;

/// The plugin; stateless.
struct RejectUnauthPipelining;

impl Guest for RejectUnauthPipelining {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        Args::new(args).none()
    }

    fn check(_req: Request) -> Verdict {
        if kv::get("notice").is_none() {
            kv::set("notice", "1", NOTICE_TTL);
            host::log(
                host::LogLevel::Warn,
                "not enforced: the request does not say whether the client pipelined illegally",
            );
        }
        Verdict::Dunno
    }
}

/// Postfix's reply for `req`: what was being checked (the client, the
/// HELO name, the sender, the recipient) and its class, as in every
/// `smtpd_check` reply.
pub fn reply(req: &Request) -> Verdict {
    let (what, class) = match req.stage {
        Stage::Client => (
            format!("{}[{}]", req.client_name, req.client_address),
            "Client host",
        ),
        Stage::Helo => (req.helo_name.clone(), "Helo command"),
        Stage::Sender => (req.sender.clone(), "Sender address"),
        Stage::Relay | Stage::Recipient => (req.recipient.clone(), "Recipient address"),
        Stage::Data => ("DATA".to_owned(), "Data command"),
        Stage::EndOfData => ("END-OF-MESSAGE".to_owned(), "End-of-data"),
    };
    postern_plugin_sdk::reject(
        503,
        "5.5.0",
        format!("<{what}>: {class} rejected: Improper use of SMTP command pipelining"),
    )
}

export_plugin!(RejectUnauthPipelining);
