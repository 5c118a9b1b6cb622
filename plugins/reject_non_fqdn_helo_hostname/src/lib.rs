//! `reject_non_fqdn_helo_hostname`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Rejects a HELO/EHLO name that is not a fully-qualified host name (no
//! dot, or not a valid name): `504 5.5.2 <NAME>: Helo command rejected:
//! need fully-qualified hostname`, the code `non_fqdn_reject_code`. An
//! address literal passes.
//!
//! Its one optional argument is `code` (Postfix's `non_fqdn_reject_code`); the
//! rule itself is in `postern_plugin_sdk::checks`.

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, checks, export_plugin};

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(checks::NON_FQDN_REJECT_CODE);

/// The plugin.
struct RejectNonFqdnHeloHostname;

impl Guest for RejectNonFqdnHeloHostname {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        postern_plugin_sdk::host::cache_verdicts(
            &[Attribute::HeloName],
            postern_plugin_sdk::CACHE_MAX_SECONDS,
        );
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        checks::non_fqdn_helo_hostname(&req, CODE.get())
    }
}

export_plugin!(RejectNonFqdnHeloHostname);
