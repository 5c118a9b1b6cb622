//! `permit_sasl_authenticated`: Postfix's restriction of the same name as
//! a Postern plugin.
//!
//! Permits the request when the client logged in with AUTH, which the
//! server hands over as `request.sasl-username` (empty otherwise); else it
//! has no opinion (dunno) and the next entry of the list decides. Placed
//! before `reject_unauth_destination`, it lets authenticated users relay,
//! as submission needs. It takes no arguments.

use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, export_plugin};

/// The plugin; stateless.
struct PermitSaslAuthenticated;

impl Guest for PermitSaslAuthenticated {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::init_pure(args, &[Attribute::SaslUsername])
    }

    fn check(req: Request) -> Verdict {
        if req.sasl_username.is_empty() {
            Verdict::Dunno
        } else {
            Verdict::Permit
        }
    }
}

export_plugin!(PermitSaslAuthenticated);
