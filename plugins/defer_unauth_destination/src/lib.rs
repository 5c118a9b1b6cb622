//! `defer_unauth_destination`: Postfix's restriction of the same name
//! (Postfix 2.10's safety net in `smtpd_relay_restrictions`) as a Postern
//! plugin.
//!
//! The same test as `reject_unauth_destination`: the recipient's domain
//! must be one this server accepts mail for (local, virtual, or
//! `relay_domains`), else the recipient is refused. But for now, not for
//! good: a relay list that is wrong by mistake makes senders retry rather
//! than bounce. The reply is Postfix's, `relay_domains_reject_code` (554)
//! turned into a deferral: `454 4.7.1 <RCPT>: Relay access denied`.
//!
//! No opinion when no recipient is known yet, as Postfix skips the check
//! then; a recipient without a domain class is treated as `other`. It
//! takes no arguments, and counts as a relay guard in the server's
//! open-relay check at config load.

/// The generated bindings of the `postern:policy` `plugin` world, and the
/// exports that hand calls to [`DeferUnauthDestination`].
#[allow(unsafe_code, reason = "the canonical-ABI glue wit-bindgen generates")]
#[allow(
    missing_docs,
    reason = "generated from wit/policy.wit, documented there"
)]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
    });

    use super::DeferUnauthDestination;
    export!(DeferUnauthDestination);
}

use bindings::postern::policy::types::{DomainClass, Reply};
use bindings::{Guest, Request, Verdict};

/// Postfix's `relay_domains_reject_code` (554) as a deferral: Postfix
/// makes a 5xx code 4xx this way for its `defer_*` forms.
const RELAY_DOMAINS_DEFER_CODE: u16 = 454;

/// The plugin; stateless.
struct DeferUnauthDestination;

impl Guest for DeferUnauthDestination {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        match args.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!("unexpected argument {key:?}: takes none")),
        }
    }

    fn check(req: Request) -> Verdict {
        if req.recipient.is_empty() {
            return Verdict::Dunno;
        }
        match req.recipient_class {
            Some(DomainClass::Local | DomainClass::Virtual | DomainClass::Relay) => Verdict::Dunno,
            Some(DomainClass::Other) | None => Verdict::Defer(Reply {
                code: RELAY_DOMAINS_DEFER_CODE,
                enhanced: "4.7.1".to_owned(),
                text: format!("<{}>: Relay access denied", req.recipient),
            }),
        }
    }
}
