//! `reject_rbl_client`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Asks a DNS list about the client address, its octets reversed (nibbles for IPv6): `2.0.2.192.zen.spamhaus.org`.
//! Rejects the request when the list has it (an A record that passes the
//! filter) with Postfix's `default_rbl_reply`, the TXT record as the
//! reason: `554 5.7.1 Service unavailable; CLASS [WHAT] blocked using
//! DOMAIN; REASON`. When the list cannot be asked (SERVFAIL, timeout) the
//! client gets the benefit of the doubt (dunno, and a warning in the log),
//! as in Postfix.
//!
//! Arguments: the list, `"reject_rbl_client list.example=127.0.0.[2..11]"` (the
//! filter after `=` is optional, in Postfix's syntax), or as a table
//! `{ plugin = "reject_rbl_client", domain = "...", reply = "...", reply_maps =
//! "TABLE", code = "554" }`: `reply` is a template in Postfix's
//! `rbl_reply_maps` syntax (`$rbl_code $rbl_class $rbl_what $rbl_domain
//! $rbl_reason`), `reply_maps` a table whose entry for the list argument
//! holds one, `code` is `$rbl_code` (`maps_rbl_reject_code`, 554). The
//! parsing, lookups and replies are in `postern_plugin_sdk::rbl`.

use postern_plugin_sdk::rbl::{self, Check, Target};
use postern_plugin_sdk::resolver::HostDns;
use postern_plugin_sdk::{Entry, Guest, Request, Verdict, export_plugin};

/// The list this instance asks, from `init`.
static CHECK: Entry<Check> = Entry::new();

/// The plugin.
struct RejectRblClient;

impl Guest for RejectRblClient {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        rbl::init(&CHECK, Target::ClientAddress, false, args)
    }

    fn check(req: Request) -> Verdict {
        CHECK.check(|c| c.check(&req, &HostDns))
    }
}

export_plugin!(RejectRblClient);
