//! `permit_dnswl_client`: Postfix's restriction of the same name as a Postern plugin.
//!
//! Asks a DNS list about the client address, its octets reversed (nibbles for IPv6).
//! Permits the request when the list has the client (an A record that
//! passes the filter), so that later entries (a block list, say) are
//! skipped; not for unauthorised relaying, since Postern's relay list is
//! separate. When the list cannot be asked (SERVFAIL, timeout) it answers
//! `defer_if_reject` 450 4.7.1 `<ADDR>: Client host rejected: Service
//! unavailable`, as Postfix does: a later reject then becomes a deferral.
//!
//! Arguments: the list, `"permit_dnswl_client list.example=127.0.0.[2..11]"` (the
//! filter after `=` is optional, in Postfix's syntax), or as a table
//! `{ plugin = "permit_dnswl_client", domain = "...", reply = "...", reply_maps =
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
struct PermitDnswlClient;

impl Guest for PermitDnswlClient {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        rbl::init(&CHECK, Target::ClientAddress, true, args)
    }

    fn check(req: Request) -> Verdict {
        CHECK.check(|c| c.check(&req, &HostDns))
    }
}

export_plugin!(PermitDnswlClient);
