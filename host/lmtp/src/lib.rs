//! Postern's LMTP server (RFC 2033): how another MTA hands mail to this
//! server's mailboxes, as Postfix hands it to Dovecot's `lmtp` through
//! `virtual_transport = lmtp:unix:private/dovecot-lmtp`. The counterpart
//! is Dovecot's LMTP server, and its behaviour is the model: LHLO (HELO
//! and EHLO get `500`, RFC 2033 §4.1), PIPELINING, ENHANCEDSTATUSCODES,
//! 8BITMIME and SIZE, no AUTH; RCPT only for addresses that have a
//! mailbox here (`550 5.1.1` otherwise); and after DATA one reply per
//! accepted recipient, in RCPT order (§4.2), each `250` only once that
//! recipient's mailbox has the message on disk.
//!
//! The message does not go through the queue: it is written straight into
//! each mailbox by the [`Mailboxes`] the server crate supplies (local
//! delivery: Maildir or mbox, `Return-Path:` and `Delivered-To:`, fsync).
//! A failure is that recipient's own reply (`451 4.3.0`, `452 4.2.2`,
//! `550 5.1.1`, `554 5.4.6`...), so the sending MTA retries or bounces
//! each recipient on its own. The command lines and the DATA decoder are
//! the SMTP server's ([`postern_smtp::codec`]), read through its socket
//! buffers ([`postern_smtp::session::io`]): the same line length
//! limit, and `<CRLF>.<CRLF>` as the only end of data (SMTP smuggling).
//!
//! Not here: restriction lists and policy plugins (the sending MTA decided
//! already, as with Dovecot), aliases and `.forward` (those are the
//! sending MTA's local(8) job), STARTTLS and AUTH, DSN and SMTPUTF8,
//! Sieve, quota. Listening (TCP or a UNIX socket) belongs to the server
//! crate, which calls [`serve`] once per accepted connection.
//!
//! # Layout
//! - [`settings`]: [`Settings`], [`Connection`], and the [`Mailboxes`]
//!   trait through which recipients are checked and delivered.
//! - `session`: [`serve`], greeting, LHLO, MAIL, RCPT, the short verbs.
//! - `data`: DATA, the `Received:` header, one delivery and one reply per
//!   recipient, and the log lines.

mod data;
mod session;
pub mod settings;

pub use session::serve;
pub use settings::{Connection, Mailboxes, Settings};
