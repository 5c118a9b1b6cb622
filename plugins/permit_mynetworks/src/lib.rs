//! `permit_mynetworks`: Postfix's restriction of the same name as a Postern
//! plugin.
//!
//! Permits the request when the client address is in `mynetworks`, which
//! the server computes and hands over as `request.trusted`; otherwise it
//! has no opinion (dunno) and the next entry of the list decides. It takes
//! no arguments.

/// The generated bindings of the `postern:policy` `plugin` world, and the
/// exports that hand calls to [`PermitMynetworks`].
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

    use super::PermitMynetworks;
    export!(PermitMynetworks);
}

use bindings::{Guest, Request, Verdict};

/// The plugin; stateless.
struct PermitMynetworks;

impl Guest for PermitMynetworks {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        match args.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!("unexpected argument {key:?}: takes none")),
        }
    }

    fn check(req: Request) -> Verdict {
        if req.trusted {
            Verdict::Permit
        } else {
            Verdict::Dunno
        }
    }
}
