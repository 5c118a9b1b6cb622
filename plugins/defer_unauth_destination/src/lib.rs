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
//! open-relay check at config load. The test is the SDK's
//! [`postern_plugin_sdk::destination`], shared with
//! `reject_unauth_destination` and `permit_auth_destination`.

use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, destination, export_plugin};

/// The plugin; stateless.
struct DeferUnauthDestination;

impl Guest for DeferUnauthDestination {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::init_pure(args, &[Attribute::Recipient, Attribute::RecipientClass])
    }

    fn check(req: Request) -> Verdict {
        destination::defer_unauth_destination(&req)
    }
}

export_plugin!(DeferUnauthDestination);
