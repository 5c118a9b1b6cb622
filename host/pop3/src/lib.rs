//! Postern's POP3 server (RFC 1939, RFC 2449 CAPA and response codes,
//! RFC 2595 STLS, RFC 5034 SASL AUTH with an initial response, RFC 3206
//! `[AUTH]`/`[SYS/*]` codes): Dovecot's `pop3` and `pop3-login` over the
//! Maildirs that Postern's local delivery writes.
//!
//! Replies and log lines follow Dovecot's, so that operators and their
//! log tools find what they know: `-ERR [AUTH] Plaintext authentication
//! disallowed on non-secure (SSL/TLS) connections.`, `Login: user=<..>,
//! method=PLAIN, rip=.., lip=.., mpid=.., secured`, `Disconnected: Logged
//! out top=0/0, retr=1/415, del=1/1, size=415`.
//!
//! RETR sets `\Seen` at QUIT, as Dovecot does by default.
//!
//! A login whose mailbox another uid owns can be handed to a process of
//! that uid ([`Handover`], Dovecot's pop3-login to pop3): this session
//! relays the bytes, and the process runs [`serve_handed`]. The mailbox
//! lock is an flock in the Maildir, which every process sees.
//!
//! Not here: APOP, the POP-before-SMTP ledger, `pop3_no_flag_updates`,
//! pop3_uidl_format variants (UIDL is the Maildir base name).
//!
//! # Layout
//! - [`codec`]: sans-IO command lines, commands, replies and dot-stuffed
//!   multi-line bodies.
//! - [`session`]: the states (AUTHORIZATION, TRANSACTION, UPDATE) over a
//!   socket, with the one-session-per-mailbox [`Locks`], and the
//!   [`Handover`] of a login to another process.
//! - [`tls`]: the certificate for STLS and pop3s.

pub mod codec;
pub mod session;
pub mod tls;

pub use session::handover::{Handed, Handover};
pub use session::lock::{Guard, Locks};
pub use session::{Connection, Mailboxes, Settings, serve, serve_handed};
pub use tls::{TlsConfig, TlsError};
