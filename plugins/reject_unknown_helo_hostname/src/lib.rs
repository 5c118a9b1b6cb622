//! `reject_unknown_helo_hostname`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Rejects a HELO/EHLO name that has no A, AAAA or MX record: `450 4.7.1
//! <NAME>: Helo command rejected: Host not found`, the code
//! `unknown_hostname_reject_code` (450). A temporary DNS failure answers
//! `defer_if_permit` with the same text, as Postfix's
//! `unknown_helo_hostname_tempfail_action`. Address literals pass.
//!
//! Its one optional argument is `code` (Postfix's `unknown_hostname_reject_code`); the
//! rule itself is in `postern_plugin_sdk::checks`.

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::resolver::HostDns;
use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, checks, export_plugin};

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(checks::UNKNOWN_HOSTNAME_REJECT_CODE);

/// The plugin.
struct RejectUnknownHeloHostname;

impl Guest for RejectUnknownHeloHostname {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        postern_plugin_sdk::host::cache_verdicts(
            &[Attribute::HeloName],
            postern_plugin_sdk::CACHE_DNS_SECONDS,
        );
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        checks::unknown_helo_hostname(&HostDns, &req, CODE.get())
    }
}

export_plugin!(RejectUnknownHeloHostname);
