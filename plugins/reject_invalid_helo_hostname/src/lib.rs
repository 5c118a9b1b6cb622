//! `reject_invalid_helo_hostname`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Rejects a HELO/EHLO argument with bad syntax: an address literal
//! without a valid address (`<[300.1.1.1]>: Helo command rejected:
//! invalid ip address`), or a name that is not a valid host name
//! (`<bad!name>: Helo command rejected: Invalid name`). Code
//! `invalid_hostname_reject_code` (501, `code = "..."`), 5.5.2. Before
//! HELO it has no opinion.
//!
//! Its one optional argument is `code` (Postfix's `invalid_hostname_reject_code`); the
//! rule itself is in `postern_plugin_sdk::checks`.

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::{Attribute, Guest, Request, Verdict, checks, export_plugin};

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(checks::INVALID_HOSTNAME_REJECT_CODE);

/// The plugin.
struct RejectInvalidHeloHostname;

impl Guest for RejectInvalidHeloHostname {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        postern_plugin_sdk::host::cache_verdicts(
            &[Attribute::HeloName],
            postern_plugin_sdk::CACHE_MAX_SECONDS,
        );
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        checks::invalid_helo_hostname(&req, CODE.get())
    }
}

export_plugin!(RejectInvalidHeloHostname);
