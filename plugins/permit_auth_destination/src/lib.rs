//! `permit_auth_destination`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Permits the request when the recipient's domain is one this server
//! accepts mail for: local (`mydestination`), virtual, or listed in
//! `relay_domains` (the `recipient-class` the server computes). Otherwise,
//! and when no recipient is known yet (a client, HELO or sender list
//! evaluated before RCPT TO), it has no opinion (dunno). The mirror of
//! `reject_unauth_destination`, with the same test, the SDK's
//! [`postern_plugin_sdk::destination`]. It takes no arguments.

use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, destination, export_plugin};

/// The plugin; stateless.
struct PermitAuthDestination;

impl Guest for PermitAuthDestination {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::init_pure(args, &[Attribute::Recipient, Attribute::RecipientClass])
    }

    fn check(req: Request) -> Verdict {
        destination::permit_auth_destination(&req)
    }
}

export_plugin!(PermitAuthDestination);
