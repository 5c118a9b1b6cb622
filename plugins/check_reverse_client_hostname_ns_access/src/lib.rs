//! `check_reverse_client_hostname_ns_access`: Postfix's restriction of the
//! same name as a Postern plugin, with access(5)'s semantics.
//!
//! `"check_reverse_client_hostname_ns_access hash:/etc/postfix/access"`
//! judges the client's unverified reverse (PTR) name (the server's, else
//! the first valid name a PTR lookup gives; a client without one is not
//! looked up) by its name servers (those of its closest parent domain that
//! has some), each by host name and then by address, and answers with the
//! first action the table has for one of them, with the reply
//! `<name[addr]>: Unverified Client host rejected: ...`. What cannot be
//! resolved has no opinion. The lookups and the actions are the SDK's
//! [`postern_plugin_sdk::server_access`].

use postern_plugin_sdk::access::Kind;
use postern_plugin_sdk::server_access::{self, Servers};
use postern_plugin_sdk::{Guest, Request, Verdict, export_plugin};

/// The plugin; its entry's settings live in the SDK's per-instance state.
struct CheckReverseClientHostnameNsAccess;

impl Guest for CheckReverseClientHostnameNsAccess {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        server_access::init(Kind::ReverseClient, Servers::Ns, args)
    }

    fn check(req: Request) -> Verdict {
        server_access::check(req)
    }
}

export_plugin!(CheckReverseClientHostnameNsAccess);
