//! `permit_pop_before_smtp`: POP/IMAP-before-SMTP as a Postern plugin.
//!
//! Permits the request when the client's address logged in over POP3 or
//! IMAP within `pop_before_smtp_timeout` (ten minutes by default), which
//! the server hands over as `request.pop-before-smtp`; else it has no
//! opinion (dunno) and the next entry of the list decides. Postfix sites
//! did this with a `pop-before-smtp` daemon feeding an access map named in
//! `smtpd_recipient_restrictions`; placed, like that map, before
//! `reject_unauth_destination`, it lets roaming users relay without SMTP
//! AUTH. It takes no arguments.

use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, export_plugin};

/// The plugin; stateless.
struct PermitPopBeforeSmtp;

impl Guest for PermitPopBeforeSmtp {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::init_pure(args, &[Attribute::PopBeforeSmtp])
    }

    fn check(req: Request) -> Verdict {
        if req.pop_before_smtp {
            Verdict::Permit
        } else {
            Verdict::Dunno
        }
    }
}

export_plugin!(PermitPopBeforeSmtp);
