//! `permit_auth_destination`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Permits the request when the recipient's domain is one this server
//! accepts mail for: local (`mydestination`), virtual, or listed in
//! `relay_domains` (the `recipient-class` the server computes). Otherwise,
//! and when no recipient is known yet (a client, HELO or sender list
//! evaluated before RCPT TO), it has no opinion (dunno). The mirror of
//! `reject_unauth_destination`. It takes no arguments.

use postern_plugin_sdk::{Args, DomainClass, Guest, Request, Verdict, export_plugin};

/// The plugin; stateless.
struct PermitAuthDestination;

impl Guest for PermitAuthDestination {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        Args::new(args).none()
    }

    fn check(req: Request) -> Verdict {
        if req.recipient.is_empty() {
            return Verdict::Dunno;
        }
        match req.recipient_class {
            Some(DomainClass::Local | DomainClass::Virtual | DomainClass::Relay) => Verdict::Permit,
            Some(DomainClass::Other) | None => Verdict::Dunno,
        }
    }
}

export_plugin!(PermitAuthDestination);
