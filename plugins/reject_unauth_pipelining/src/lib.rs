//! `reject_unauth_pipelining`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Postfix rejects a client that sent commands ahead of the replies where
//! RFC 2920 §3.1 does not allow it (before the greeting, or behind a
//! command that ends a group, such as EHLO or DATA, or without PIPELINING
//! having been offered): `503 5.5.0 <WHAT>: CLASS rejected: Improper use
//! of SMTP command pipelining`, the spam-bot tell.
//!
//! The SMTP session watches for it and hands the answer over as the
//! request's `illegal-pipelining` attribute (set once, for the rest of the
//! session; the server logs `improper command pipelining after CMD from
//! host[ip]: ...` when it sets it). Postfix recommends the entry in
//! `smtpd_data_restrictions`, where a bot that blasted its whole
//! transaction has certainly been caught:
//! `503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command
//! pipelining`.
//!
//! It takes no arguments.

use postern_plugin_sdk::{Args, Guest, Request, Stage, Verdict, export_plugin};

/// The plugin; stateless.
struct RejectUnauthPipelining;

impl Guest for RejectUnauthPipelining {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        Args::new(args).none()
    }

    fn check(req: Request) -> Verdict {
        decide(&req)
    }
}

/// Rejects if the client pipelined illegally at any time in the session.
fn decide(req: &Request) -> Verdict {
    if req.illegal_pipelining {
        reply(req)
    } else {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use postern_plugin_sdk::Reply;

    fn request(stage: Stage) -> Request {
        Request {
            client_address: "192.0.2.1".to_owned(),
            helo_name: "bot".to_owned(),
            sender: "a@b.test".to_owned(),
            recipient: "c@d.test".to_owned(),
            ..Request::empty(stage)
        }
    }

    fn text(v: &Verdict) -> String {
        match v {
            Verdict::Reject(Reply {
                code,
                enhanced,
                text,
            }) => format!("{code} {enhanced} {text}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn only_illegal_pipelining_is_rejected() {
        let mut req = request(Stage::Data);
        assert!(matches!(decide(&req), Verdict::Dunno));
        req.illegal_pipelining = true;
        assert_eq!(
            text(&decide(&req)),
            "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining"
        );
        req.stage = Stage::Recipient;
        assert_eq!(
            text(&decide(&req)),
            "503 5.5.0 <c@d.test>: Recipient address rejected: Improper use of SMTP command pipelining"
        );
        req.stage = Stage::Client;
        assert_eq!(
            text(&decide(&req)),
            "503 5.5.0 <unknown[192.0.2.1]>: Client host rejected: Improper use of SMTP command pipelining"
        );
    }
}
