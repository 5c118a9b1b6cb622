//! `reject_unauth_destination`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Rejects the recipient unless its domain is one this server accepts mail
//! for: local (`mydestination`), virtual, or listed in `relay_domains`.
//! Like Postfix, it does not itself look at the client: trusted clients get
//! through because `permit_mynetworks` (or an authenticated-client permit)
//! comes earlier in the list. The reply is Postfix's: code 554
//! (`relay_domains_reject_code`), `5.7.1 <RCPT>: Relay access denied`.
//!
//! When no recipient is known yet (a client, HELO or sender list evaluated
//! before RCPT TO) it has no opinion (dunno), as Postfix skips the check
//! then. A recipient without a domain class is treated as `other`: when in
//! doubt, do not relay. It takes no arguments.

/// The generated bindings of the `postern:policy` `plugin` world, and the
/// exports that hand calls to [`RejectUnauthDestination`].
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

    use super::RejectUnauthDestination;
    export!(RejectUnauthDestination);
}

use bindings::postern::policy::types::{DomainClass, Reply};
use bindings::{Guest, Request, Verdict};

/// Postfix's `relay_domains_reject_code` default.
const RELAY_DOMAINS_REJECT_CODE: u16 = 554;

/// The plugin; stateless.
struct RejectUnauthDestination;

impl Guest for RejectUnauthDestination {
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
            Some(DomainClass::Other) | None => Verdict::Reject(Reply {
                code: RELAY_DOMAINS_REJECT_CODE,
                enhanced: "5.7.1".to_owned(),
                text: format!("<{}>: Relay access denied", req.recipient),
            }),
        }
    }
}
