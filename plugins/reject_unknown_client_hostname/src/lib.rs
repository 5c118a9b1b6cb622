//! `reject_unknown_client_hostname`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Rejects a client without a forward-confirmed host name: no PTR record,
//! or no PTR name whose A (AAAA for IPv6) records include the client
//! address. The server's `client-name` is used when it has one; when it
//! says "unknown" the plugin asks the DNS itself. The reply is Postfix's:
//! `450 4.7.25 Client host rejected: cannot find your hostname, [ADDR]`,
//! the code `unknown_client_reject_code` (450; `code = "550"` to change
//! it); a temporary DNS failure is always 450. A forged name (PTR name
//! that does not resolve back) is logged as Postfix logs it.
//!
//! Its one optional argument is `code` (Postfix's `unknown_client_reject_code`); the
//! rule itself is in `postern_plugin_sdk::checks`.

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::lookup::NameStatus;
use postern_plugin_sdk::resolver::HostDns;
use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, checks, export_plugin, host};

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(checks::UNKNOWN_CLIENT_REJECT_CODE);

/// The plugin.
struct RejectUnknownClientHostname;

impl Guest for RejectUnknownClientHostname {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        host::reuse_instances();
        // A forged name is logged, and a call that logs is not kept.
        host::cache_verdicts(
            &[Attribute::ClientAddress, Attribute::ClientName],
            postern_plugin_sdk::CACHE_DNS_SECONDS,
        );
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        let (verdict, status) = checks::unknown_client_hostname(&HostDns, &req, CODE.get());
        if let NameStatus::Forged(why) = status {
            host::log(host::LogLevel::Warn, &why);
        }
        verdict
    }
}

export_plugin!(RejectUnknownClientHostname);
