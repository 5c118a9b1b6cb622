//! `check_client_a_access`: Postfix's restriction of the same name as a
//! Postern plugin, with access(5)'s semantics.
//!
//! `"check_client_a_access hash:/etc/postfix/access"` judges the verified
//! client host name (a client whose name is `unknown` is not looked up) by
//! its IPv4 and IPv6 addresses (A and AAAA), each looked up as a client
//! address is, and answers with the first action the table has for one of
//! them, with the reply of `check_client_access`. What cannot be resolved
//! has no opinion. The lookups and the actions are the SDK's
//! [`postern_plugin_sdk::server_access`].

use postern_plugin_sdk::access::Kind;
use postern_plugin_sdk::server_access::{self, Servers};
use postern_plugin_sdk::{Guest, Request, Verdict, export_plugin};

/// The plugin; its entry's settings live in the SDK's per-instance state.
struct CheckClientAAccess;

impl Guest for CheckClientAAccess {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        server_access::init(Kind::Client, Servers::A, args)
    }

    fn check(req: Request) -> Verdict {
        server_access::check(req)
    }
}

export_plugin!(CheckClientAAccess);
