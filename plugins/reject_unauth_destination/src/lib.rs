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
//! doubt, do not relay. It takes no arguments. The test is the SDK's
//! [`postern_plugin_sdk::destination`], shared with
//! `defer_unauth_destination` and `permit_auth_destination`.

use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, destination, export_plugin};

/// The plugin; stateless.
struct RejectUnauthDestination;

impl Guest for RejectUnauthDestination {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::init_pure(args, &[Attribute::Recipient, Attribute::RecipientClass])
    }

    fn check(req: Request) -> Verdict {
        destination::reject_unauth_destination(&req)
    }
}

export_plugin!(RejectUnauthDestination);
