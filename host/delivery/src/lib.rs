//! Postern's delivery agents: what the queue hands each recipient to.
//!
//! Today there is one, [`LocalDelivery`], the counterpart of Postfix's
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
//! Not yet: mbox (`home_mailbox` without a trailing `/` defers with a
//! clear reason), `.forward`, `mailbox_command`, delivering to Maildirs
//! as the user's uid/gid, quota, and remote delivery over SMTP (MX
//! lookup, relayhost, TLS): an alias that forwards to another domain
//! defers 4.4.0 until it exists. An alias with several destinations is
//! delivered to all of them in one attempt; if one defers, the retry
//! delivers the others again (re-queueing the expansion as a new message
//! would avoid that; it needs the queue's `Enqueue` here).
//!
//! # Layout
//! - [`settings`]: [`LocalSettings`], the Postfix parameters it uses.
//! - [`resolve`]: from a recipient address to a user and a Maildir path.
//! - [`aliases`]: the aliases file format, [`AliasMap`].
//! - [`expand`]: alias expansion, loops, `allow_mail_to_*`.
//! - `pipe`: delivery to commands and files, and whose ids they run as.
//! - [`local`]: [`LocalDelivery`], the [`postern_mail::Deliver`] agent.

pub mod aliases;
pub mod expand;
pub mod local;
mod pipe;
pub mod resolve;
pub mod settings;

pub use aliases::{AliasError, AliasMap};
pub use local::LocalDelivery;
pub use settings::LocalSettings;
