//! `permit_sasl_authenticated`: Postfix's restriction of the same name as
//! a Postern plugin.
//!
//! Permits the request when the client logged in with AUTH, which the
//! server hands over as `request.sasl-username` (empty otherwise); else it
//! has no opinion (dunno) and the next entry of the list decides. Placed
//! before `reject_unauth_destination`, it lets authenticated users relay,
//! as submission needs. It takes no arguments.

/// The generated bindings of the `postern:policy` `plugin` world, and the
/// exports that hand calls to [`PermitSaslAuthenticated`].
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

    use super::PermitSaslAuthenticated;
    export!(PermitSaslAuthenticated);
}

use bindings::{Guest, Request, Verdict};

/// The plugin; stateless.
struct PermitSaslAuthenticated;

impl Guest for PermitSaslAuthenticated {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        match args.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!("unexpected argument {key:?}: takes none")),
        }
    }

    fn check(req: Request) -> Verdict {
        if req.sasl_username.is_empty() {
            Verdict::Dunno
        } else {
            Verdict::Permit
        }
    }
}
