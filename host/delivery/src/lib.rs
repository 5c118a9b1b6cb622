//! Postern's delivery agents: what the queue hands each recipient to.
//!
//! [`Router`] picks the agent for each recipient (transport_maps, local
//! domains, relayhost, MX) and is what the queue delivers through.
//! [`RemoteDelivery`] is Postfix's smtp(8) and lmtp(8): MX lookup,
//! STARTTLS, AUTH to a relayhost, several recipients per transaction,
//! connection reuse, and qmgr's slow start and dead-destination detection
//! per destination ([`remote`]). [`LocalDelivery`] is the counterpart of Postfix's
//! local(8) and virtual(8) delivering into Maildirs: it finds the
//! recipient in the users file (Dovecot's passwd-file, so Dovecot's
//! userdb agrees on where the mailbox is), adds `Return-Path:` and
//! `Delivered-To:`, and writes the message with [`postern_mailbox`]. The
//! same resolution answers the SMTP server's "does this user exist?"
//! ([`LocalDelivery::exists`]), so RCPT TO and delivery never disagree.
//!
//! Recipients at local (`mydestination`) domains go through `alias_maps`
//! first ([`aliases`], [`expand`]): lists of users, forwarding to
//! addresses, `/file` appends, `|command` pipes and `:include:` files,
//! with alias loops and `Delivered-To:` loops bounced 5.4.6, and files and
//! commands run never as root (`pipe`).
//!
//! The mailbox is a Maildir (`home_mailbox` ending in `/`), an mbox file
//! in the home (`home_mailbox = "Mailbox"`) or in `mail_spool_directory`
//! (empty `home_mailbox`), written under dotlock + fcntl locks
//! ([`postern_mailbox::Mbox`]), or an MDA through `mailbox_command` with
//! Postfix's environment for users at local domains. A user with a home
//! may redirect their mail with a `.forward` (`forward_path`), in the
//! syntax of an alias's values (`forward`).
//!
//! With `unix:passwd.byname` in `local_recipient_maps`, the system's
//! accounts receive mail at the local domains too, in their homes, and
//! a root daemon writes their Maildirs as their uid and gid
//! (`local_owner`); so it does for users-file entries that carry a uid
//! (and gid), making a missing home for them first. Not yet: quota.
//! Addresses at other domains that
//! an alias or `.forward` names are queued again as a new message
//! ([`LocalDelivery::set_forwarder`]); an alias with several local
//! destinations is delivered to all of them in one attempt, and if one
//! defers, the retry delivers the others again.
//!
//! # Layout
//! - [`settings`]: [`LocalSettings`], the Postfix parameters it uses.
//! - [`resolve`]: from a recipient address to a user and a Maildir path.
//! - [`aliases`]: the aliases file format, [`AliasMap`].
//! - [`expand`]: alias expansion, loops, `allow_mail_to_*`.
//! - `forward`: `.forward` files and `forward_path`.
//! - `pipe`: delivery to commands and files, and whose ids they run as.
//! - [`local`]: [`LocalDelivery`], the [`postern_mail::Deliver`] agent.
//! - `local_owner`: writing a mailbox as its owner, never as root.
//! - [`local_privsep`]: the same, through the root helper once the daemon
//!   runs as `mail_owner`.
//! - `store`: a user's mailbox: Maildir, mbox or `mailbox_command`.
//! - `direct`: straight into a mailbox, no aliases: for the LMTP server.
//! - [`remote`]: [`RemoteDelivery`], SMTP and LMTP to other servers.
//! - [`router`]: [`Router`], which agent each recipient goes to.

pub mod aliases;
mod direct;
pub mod expand;
mod forward;
pub mod local;
mod local_owner;
pub mod local_privsep;
mod pipe;
pub mod remote;
pub mod resolve;
pub mod router;
pub mod settings;
mod store;

pub use aliases::{AliasError, AliasMap};
pub use local::LocalDelivery;
pub use remote::{RemoteDelivery, RemoteSettings};
pub use router::Router;
pub use settings::LocalSettings;
