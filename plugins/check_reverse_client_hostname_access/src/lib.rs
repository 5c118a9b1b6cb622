//! `check_reverse_client_hostname_access`: Postfix's restriction of the same name as a Postern
//! plugin, with access(5)'s semantics.
//!
//! `"check_reverse_client_hostname_access hash:/etc/postfix/access"` looks
//! up the client: its unverified reverse (PTR) name and parent domains,
//! then its address and the networks that hold it, in the order Postfix
//! does, and answers with the first action found: OK, REJECT, 4NN/5NN text,
//! DEFER, HOLD, PREPEND and the rest, or a list of restriction names. A
//! table given as `type:path` is declared by the server for this entry; a
//! bare name is a `[tables.NAME]`. The lookup and the actions are the SDK's
//! [`postern_plugin_sdk::access`], shared by every `check_*_access` plugin.

use postern_plugin_sdk::access::{self, Kind};
use postern_plugin_sdk::{Guest, Request, Verdict, export_plugin};

/// The plugin; its entry's settings live in the SDK's per-instance state.
struct CheckReverseClientHostnameAccess;

impl Guest for CheckReverseClientHostnameAccess {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        access::init(Kind::ReverseClient, args)
    }

    fn check(req: Request) -> Verdict {
        access::check(req)
    }
}

export_plugin!(CheckReverseClientHostnameAccess);
