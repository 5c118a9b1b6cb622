//! `check_sasl_access`: Postfix's restriction of the same name as a
//! Postern plugin, with access(5)'s semantics.
//!
//! `"check_sasl_access hash:/etc/postfix/sasl_access"` looks up the SASL
//! login name of a client that authenticated, as a mail address is looked
//! up (`user@domain`, the domain and its parents, `user@`; a login
//! without a domain as it is, then as `user@`), and answers with the
//! first action found: `REJECT` a compromised or shared account,
//! `HOLD` its mail for review, `OK`, and the rest of access(5). Replies
//! name it as Postfix does: `554 5.7.1 <alice@example.org>: SASL login
//! name rejected: ...`. A client that did not log in is not looked up.
//! The lookup and the actions are the SDK's [`postern_plugin_sdk::access`],
//! shared by every `check_*_access` plugin.

use postern_plugin_sdk::access::{self, Kind};
use postern_plugin_sdk::{Guest, Request, Verdict, export_plugin};

/// The plugin; its entry's settings live in the SDK's per-instance state.
struct CheckSaslAccess;

impl Guest for CheckSaslAccess {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        access::init(Kind::Sasl, args)
    }

    fn check(req: Request) -> Verdict {
        access::check(req)
    }
}

export_plugin!(CheckSaslAccess);
