//! `reject_non_fqdn_sender`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Rejects a MAIL FROM address whose domain is missing or not a
//! fully-qualified host name: `504 5.5.2 <ADDR>: Sender address
//! rejected: need fully-qualified address`, the code
//! `non_fqdn_reject_code`. The null sender and address literals pass.
//!
//! Its one optional argument is `code` (Postfix's `non_fqdn_reject_code`); the
//! rule itself is in `postern_plugin_sdk::checks`.

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::{
    Attribute, Guest, Request, Verdict, checks, checks::Party, export_plugin,
};

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(checks::NON_FQDN_REJECT_CODE);

/// The plugin.
struct RejectNonFqdnSender;

impl Guest for RejectNonFqdnSender {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        postern_plugin_sdk::host::cache_verdicts(
            &[Attribute::Sender],
            postern_plugin_sdk::CACHE_MAX_SECONDS,
        );
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        checks::non_fqdn_address(&req, Party::Sender, CODE.get())
    }
}

export_plugin!(RejectNonFqdnSender);
