//! `check_helo_mx_access`: Postfix's restriction of the same name as a
//! Postern plugin, with access(5)'s semantics.
//!
//! `"check_helo_mx_access hash:/etc/postfix/access"` judges the HELO/EHLO
//! name by its mail exchangers (the domain itself when it has no MX), each
//! by host name and then by address, and answers with the first action the
//! table has for one of them, with the reply of `check_helo_access`. What
//! cannot be resolved has no opinion. The lookups and the actions are the
//! SDK's [`postern_plugin_sdk::server_access`].

use postern_plugin_sdk::access::Kind;
use postern_plugin_sdk::server_access::{self, Servers};
use postern_plugin_sdk::{Guest, Request, Verdict, export_plugin};

/// The plugin; its entry's settings live in the SDK's per-instance state.
struct CheckHeloMxAccess;

impl Guest for CheckHeloMxAccess {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        server_access::init(Kind::Helo, Servers::Mx, args)
    }

    fn check(req: Request) -> Verdict {
        server_access::check(req)
    }
}

export_plugin!(CheckHeloMxAccess);
