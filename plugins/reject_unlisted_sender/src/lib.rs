//! `reject_unlisted_sender`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Rejects a MAIL FROM address at a domain delivered here that has no
//! mailbox, so that nobody outside can use a made-up local sender: `550
//! 5.1.0 <ADDR>: Sender address rejected: User unknown in local recipient
//! table`, the code `unknown_local_recipient_reject_code` (`code = "..."`).
//!
//! Where it looks: by default, at the server. The request's
//! `sender-class` says whether the sender's domain is delivered here
//! (local or virtual), and `sender-known` whether the address has a
//! mailbox, as the server's own recipient check answers it (the users
//! file, aliases, `local_recipient_maps`, virtual mailbox maps): `550
//! 5.1.0 ... User unknown in local recipient table` (or `virtual mailbox
//! table`). An operator may name the answer instead: `domains` (space or
//! comma separated: the local domains) and `maps` (tables of existing
//! users, asked for `user+ext@domain`, `user@domain` without the extension
//! after any `delimiter` character, and `user`), which then replace the
//! server's view. `postmaster` always exists (RFC 5321 §4.5.1); the null
//! sender passes. The rule is the SDK's [`postern_plugin_sdk::unlisted`],
//! shared with `reject_unlisted_recipient`.

use postern_plugin_sdk::checks::Party;
use postern_plugin_sdk::unlisted::Unlisted;
use postern_plugin_sdk::{Entry, Guest, Request, Verdict, export_plugin};

/// What `init` read.
static CHECK: Entry<Unlisted> = Entry::new();

/// The plugin.
struct RejectUnlistedSender;

impl Guest for RejectUnlistedSender {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        let check = Unlisted::from_args(Party::Sender, args)?;
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

export_plugin!(RejectUnlistedSender);
