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
//!   `/etc/shadow`;
//! - [`Request::Session`]: start `postern mail-session` as uid:gid over the
//!   socket passed with the request: a POP3 or IMAP login, its password
//!   checked by the daemon, continued as the mailbox's owner (Dovecot's
//!   per-login `imap` and `pop3` processes);
//! - [`Request::ReadFile`]: read a root-only file the configuration names
//!   (a TLS key, the users file, an aliases file, a table), for a reload;
//! - [`Request::Forward`]: read a user's `.forward` as that user, in a
//!   home `mail_owner` may not enter or from a file it may not read;
//! - [`Request::Refresh`]: re-read the configuration and take the policy
//!   (mail roots, users-file uids and homes, the session cap) from it,
//!   after a reload.
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
//! - A `Session` runs only Postern's own `mail-session` code, as the
//!   owner (setgroups, setgid, setuid before exec: it cannot get root
//!   back), on a Maildir under that uid's home or a mail root, with the
//!   one passed socket (checked to be a socket) as its standard input
//!   and output, the daemon's log channel (a datagram socket the daemon
//!   only reads, and whose lines it checks) as its standard error, and no
//!   other descriptor of the helper. Its log filter (the daemon's, its
//!   environment being cleared) is levels and targets only, short
//!   ([`session::log_filter_ok`]). At most
//!   [`Policy::max_sessions`] run at once (the POP3 and IMAP session
//!   slots the config gives the daemon); they are reaped by threads of
//!   their own and do not count against [`MAX_IN_FLIGHT`].
//! - A `ReadFile` is answered only for the config file the helper was
//!   started with (for a daemon started without one, the default file
//!   its reload reads, once it exists) and the files that config names,
//!   as the helper reads it itself with the daemon's loader (never what
//!   the daemon says it names), and only while that file is root's, not
//!   writable by group or others, in directories only root may change. The file read is
//!   reached through root's directories and links only (followed by
//!   hand, each checked) and has one link, so a daemon that owns a
//!   directory on the way cannot swap it for a link to `/etc/shadow`;
//!   at most [`files::MAX_FILE`] bytes. So a compromised daemon learns
//!   what it read at start as root anyway: the keys and users the
//!   operator gave it.
//! - A `Forward` reads only the file `.forward` or `.forward+EXT` (one
//!   name, no `/`) in the home the helper finds for that uid (passwd, or
//!   a users-file home), as that uid and its group (never 0), without
//!   following a link or blocking on a FIFO, at most
//!   [`files::MAX_FORWARD`] bytes, owned by that uid or root and not
//!   writable by others: what the user may read anyway, and what local(8)
//!   running as the user reads. A file local(8) would ignore (those rules,
//!   or one the user may not open) is answered [`Response::Ignored`] with
//!   local(8)'s warning, and the daemon delivers to the mailbox; a
//!   refused request or a failed read defers the mail.
//! - A `Refresh` takes the policy only from the trusted config file (as
//!   for `ReadFile`), so a daemon cannot widen what the helper allows by
//!   asking; an untrusted or broken file keeps the running policy.
//!
//! What it still grants a compromised daemon: acting as any mail-receiving
//! uid (as local(8) running as root would), and reading the mail of those
//! uids through commands or sessions run as them. The daemon checks POP3
//! and IMAP passwords (Dovecot's login processes do too) and relays the
//! bytes of a logged-in session, TLS included, to its session process.
//!
//! # Layout
//! - [`wire`]: [`Request`] and [`Response`] and their framed byte format.
//! - [`policy`]: [`Policy`], the validator.
//! - [`client`]: [`Client`], the daemon's side, and the process-wide
//!   [`install`]ed one the delivery and auth crates ask.
//! - [`session`]: [`MailSession`], the session request, and its checks.
//! - [`fdpass`]: descriptors sent with a frame (SCM_RIGHTS).
//! - [`files`]: [`read_file_or_ask`], the daemon's reads at reload, and
//!   the helper's checked reads of named files and `.forward`;
//!   [`secure`]: reading a file only root could have put there.
//! - [`serve`](mod@serve): the helper's loop over one socket.

pub mod client;
pub mod fdpass;
pub mod files;
pub mod policy;
pub mod secure;
pub mod serve;
pub mod session;
pub mod wire;

pub use client::{Client, install, installed};
pub use files::read_file_or_ask;
pub use policy::Policy;
pub use serve::serve;
pub use session::MailSession;
pub use wire::{Ids, Request, Response};

/// How many requests the helper runs at once; more are answered "busy"
/// (deferred by the caller) rather than queued without bound.
pub const MAX_IN_FLIGHT: usize = 64;

/// How many session processes the helper keeps at once when it is told
/// no other number ([`Policy::max_sessions`]: the daemon's POP3 and IMAP
/// session slots, from the configuration at start and at each refresh).
pub const MAX_SESSIONS: usize = 4096;

/// The longest request frame the helper reads when it is told no other
/// length ([`Policy::max_frame`]: twice the daemon's
/// `message_size_limit` and a MiB, from the configuration at start and at
/// each refresh).
pub const MAX_FRAME: usize = 1 << 30;
