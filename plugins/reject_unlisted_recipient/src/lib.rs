//! `reject_unlisted_recipient`: Postfix's restriction of the same name as
//! a Postern plugin.
//!
//! Rejects a recipient at a domain delivered here (local or virtual) that
//! has no mailbox: `550 5.1.1 <ADDR>: Recipient address rejected: User
//! unknown in local recipient table` (or `virtual mailbox table`), the
//! code `unknown_local_recipient_reject_code` (`code = "..."`).
//!
//! Where it looks: the operator's tables named by `maps` (space or comma
//! separated; Postfix's `local_recipient_maps` / `virtual_mailbox_maps`),
//! each asked for `user+ext@domain`, `user@domain` (without the extension
//! after any `delimiter` character) and then, at a local domain, `user`
//! (as the passwd and aliases maps are keyed), at a virtual one `@domain`
//! (a catch-all). `postmaster` at a local domain always exists (RFC 5321
//! §4.5.1).
//!
//! Without `maps` it asks the server: the request's `recipient-known`
//! attribute is the server's own answer (the users file, aliases,
//! `local_recipient_maps`, virtual mailbox maps), the one the SMTP server
//! applies itself after the lists when `smtpd_reject_unlisted_recipient`
//! is on. As an entry it rejects in its place in the list, before a later
//! permit can accept the address. The rule is the SDK's
//! [`postern_plugin_sdk::unlisted`], shared with `reject_unlisted_sender`.

use postern_plugin_sdk::checks::Party;
use postern_plugin_sdk::unlisted::Unlisted;
use postern_plugin_sdk::{Entry, Guest, Request, Verdict, export_plugin};

/// What `init` read.
static CHECK: Entry<Unlisted> = Entry::new();

/// The plugin.
struct RejectUnlistedRecipient;

impl Guest for RejectUnlistedRecipient {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        let check = Unlisted::from_args(Party::Recipient, args)?;
        postern_plugin_sdk::host::cache_verdicts(
            &check.attributes(),
            postern_plugin_sdk::CACHE_MAX_SECONDS,
        );
        CHECK.init(Ok(check))
    }

    fn check(req: Request) -> Verdict {
        CHECK.check(|c| c.check(&req))
    }
}

export_plugin!(RejectUnlistedRecipient);
