//! `reject_unknown_reverse_client_hostname`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Rejects a client whose address has no PTR name (not checked against
//! the forward lookup: `reject_unknown_client_hostname` does that). The
//! server's `reverse-client-name` is used when it has one; else the
//! plugin asks the DNS. Postfix's reply: `450 4.7.1 Client host rejected:
//! cannot find your reverse hostname, [ADDR]`, the code
//! `unknown_client_reject_code` (450, `code = "..."`); a temporary DNS
//! failure is always 450.
//!
//! Its one optional argument is `code` (Postfix's `unknown_client_reject_code`); the
//! rule itself is in `postern_plugin_sdk::checks`.

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::resolver::HostDns;
use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, checks, export_plugin};

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(checks::UNKNOWN_CLIENT_REJECT_CODE);

/// The plugin.
struct RejectUnknownReverseClientHostname;

impl Guest for RejectUnknownReverseClientHostname {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        postern_plugin_sdk::host::cache_verdicts(
            &[Attribute::ClientAddress, Attribute::ReverseClientName],
            postern_plugin_sdk::CACHE_DNS_SECONDS,
        );
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        checks::unknown_reverse_client_hostname(&HostDns, &req, CODE.get())
    }
}

export_plugin!(RejectUnknownReverseClientHostname);
