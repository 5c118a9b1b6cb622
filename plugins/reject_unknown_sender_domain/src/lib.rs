//! `reject_unknown_sender_domain`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Rejects a MAIL FROM domain that has no MX and no A or AAAA record
//! (`450 4.1.8 <ADDR>: Sender address rejected: Domain not found`, the
//! code `unknown_address_reject_code`), or a null MX (RFC 7505: `550
//! 5.7.27 ... Domain D does not accept mail (nullMX)`). A temporary DNS
//! failure answers `defer_if_permit` 450 (Postfix's
//! `unknown_address_tempfail_action`). The null sender and address
//! literals pass.
//!
//! Its one optional argument is `code` (Postfix's `unknown_address_reject_code`); the
//! rule itself is in `postern_plugin_sdk::checks`.

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::resolver::HostDns;
use postern_plugin_sdk::{
    Attribute, Guest, Request, Verdict, checks, checks::Party, export_plugin,
};

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(checks::UNKNOWN_ADDRESS_REJECT_CODE);

/// The plugin.
struct RejectUnknownSenderDomain;

impl Guest for RejectUnknownSenderDomain {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        postern_plugin_sdk::host::cache_verdicts(
            &[Attribute::Sender, Attribute::SenderClass],
            postern_plugin_sdk::CACHE_DNS_SECONDS,
        );
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        checks::unknown_domain(&HostDns, &req, Party::Sender, CODE.get())
    }
}

export_plugin!(RejectUnknownSenderDomain);
