//! Privilege separation: the few steps of a root-started daemon that need
//! another identity, asked of a small root helper over a Unix socket pair.
//! Postfix's counterpart is local(8) and pipe(8), which master starts as
//! root and which `setuid` per delivery; Postern's daemon itself runs as
//! `mail_owner` after start-up, and only this helper stays root.
//!
//! The helper is started (a fresh `exec` of the same binary, so it shares
//! no memory with the daemon: no TLS keys, no sessions) before the daemon
//! drops to `mail_owner`, and serves exactly the [`Request`]s below, each
//! checked by [`Policy::check`] before anything is done:
//! - [`Request::Maildir`]: deliver these bytes into this Maildir as
//!   uid:gid (making the user's missing home first);
//! - [`Request::Mbox`]: append these bytes to this mbox file as uid:gid;
//! - [`Request::Command`]: run `/bin/sh` with these arguments as uid:gid
//!   with this environment, directory, time limit and standard input (an
//!   alias or `.forward` `|command`, `mailbox_command`, and `/file`
//!   deliveries, which append through `sh -c 'cat >> "$1"'`);
//! - [`Request::Password`]: check this system account's password against
//!   `/etc/shadow`.
//!
//! # Threat model
//! The daemon (SMTP, IMAP, POP3 parsers, plugins' host side) is what
//! faces the network; assume it is taken over and speaks to the helper
//! with attacker-chosen bytes. Then:
//! - It must not get root: every request that runs as someone runs as a
//!   uid and gid that are never 0, and only as uids the helper was told at
//!   start may receive mail (`default_privs`, users-file uids, and system
//!   accounts from `first_uid` up), never as system daemons below it.
//! - A Maildir or mbox write lands only under that uid's own home (as
//!   /etc/passwd says, looked up by the helper), a users-file home given
//!   at start for that uid, or the configured mail roots
//!   (`virtual_mailbox_base`, `mail_spool_directory`); paths are absolute
//!   and without `..`. The write itself is done with the user's
//!   credentials, so the kernel's checks apply as well.
//! - A `Command` is what Postfix's local(8) grants any alias owner: the
//!   uid's own rights, nothing more (the helper runs only `/bin/sh`,
//!   in its own process group, killed at the time limit).
//! - A password check answers only whether the password is right; it
//!   never returns the hash. It can be used to guess passwords as SMTP
//!   AUTH can, which the daemon already could.
//! - Malformed, oversized or unknown requests are refused with a reason
//!   and never panic the helper; a frame longer than its cap ends the
//!   connection, and at most [`MAX_IN_FLIGHT`] requests run at once.
//!
//! What it still grants a compromised daemon: acting as any mail-receiving
//! uid (as local(8) running as root would), and reading the mail of those
//! uids through commands run as them. What it does not do: serve POP3 or
//! IMAP as the mailbox owner (Dovecot forks a process per login for
//! that); see the crate users.
//!
//! # Layout
//! - [`wire`]: [`Request`] and [`Response`] and their framed byte format.
//! - [`policy`]: [`Policy`], the validator.
//! - [`client`]: [`Client`], the daemon's side, and the process-wide
//!   [`install`]ed one the delivery and auth crates ask.
//! - [`serve`]: the helper's loop over one socket.

pub mod client;
pub mod policy;
pub mod serve;
pub mod wire;

pub use client::{Client, install, installed};
pub use policy::Policy;
pub use serve::serve;
pub use wire::{Ids, Request, Response};

/// How many requests the helper runs at once; more are answered "busy"
/// (deferred by the caller) rather than queued without bound.
pub const MAX_IN_FLIGHT: usize = 64;
