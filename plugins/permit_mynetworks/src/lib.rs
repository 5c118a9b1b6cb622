//! `permit_mynetworks`: Postfix's restriction of the same name as a Postern
//! plugin.
//!
//! Permits the request when the client address is in `mynetworks`, which
//! the server computes and hands over as `request.trusted`; otherwise it
//! has no opinion (dunno) and the next entry of the list decides. It takes
//! no arguments.

use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, export_plugin};

/// The plugin; stateless.
struct PermitMynetworks;

impl Guest for PermitMynetworks {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::init_pure(args, &[Attribute::Trusted])
    }

    fn check(req: Request) -> Verdict {
        if req.trusted {
            Verdict::Permit
        } else {
            Verdict::Dunno
        }
    }
}

export_plugin!(PermitMynetworks);
