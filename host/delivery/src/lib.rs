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
//! Not yet: mbox (`home_mailbox` without a trailing `/` defers with a
//! clear reason), aliases and `.forward`, `mailbox_command` and pipes,
//! mail-loop detection on `Delivered-To`, delivering as the user's
//! uid/gid, quota, and remote delivery over SMTP (MX lookup, relayhost,
//! TLS).
//!
//! # Layout
//! - [`settings`]: [`LocalSettings`], the Postfix parameters it uses.
//! - [`resolve`]: from a recipient address to a user and a Maildir path.
//! - [`local`]: [`LocalDelivery`], the [`postern_mail::Deliver`] agent.

pub mod local;
pub mod resolve;
pub mod settings;

pub use local::LocalDelivery;
pub use settings::LocalSettings;
