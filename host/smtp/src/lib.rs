//! Postern's SMTP server side: the job of Postfix's `smtpd`. It greets a
//! client, reads its commands, asks the restriction lists (the `policy`
//! crate, through [`postern_mail::Policy`]) and the recipient directory
//! whether to take each recipient, receives the message, prepends a
//! Received header and hands it to the queue (through
//! [`postern_mail::Enqueue`]), answering `250` only once the queue has it
//! on disk. Replies, log lines and defaults follow Postfix's smtpd, so an
//! operator's habits and log parsers carry over.
//!
//! The protocol is split the rustls way: a sans-IO [`codec`] (bytes in,
//! events out, fuzzable: command lines, command parsing, the DATA decoder
//! that closes SMTP smuggling) and a [`session`] that owns the socket and
//! the state, one task per connection as in mini-redis.
//!
//! STARTTLS (RFC 3207) and implicit TLS (smtps) run on rustls; AUTH (RFC
//! 4954, PLAIN and LOGIN with SASL-IR) checks passwords through the `auth`
//! crate; submission's rules (AUTH before MAIL, the sender-login check)
//! are settings of the session. The ESMTP extensions are Postfix's set:
//! PIPELINING, SIZE, ETRN, ENHANCEDSTATUSCODES, 8BITMIME, DSN (RFC 3461
//! parameters carried into the envelope), SMTPUTF8 (RFC 6531) and
//! CHUNKING (RFC 3030 BDAT); a submission's missing Message-Id and Date
//! are added on the way to the queue.
//!
//! Not here yet (later issues): DNS lookups of the client name (it is
//! always `unknown`).
//! The per-client limits are counted here ([`anvil`]) and enforced by the
//! session; the server crate decides which clients are exempt.
//! The outbound side, Postfix's `smtp` and `lmtp`, is [`client`]: one
//! server at a time; the delivery crate picks which. The listener, the
//! process limit and `mynetworks` matching belong to the server crate,
//! which calls [`serve`] once per accepted connection.
//!
//! # Layout
//! - [`anvil`]: per-client connection and message counters (Postfix's
//!   anvil), shared by a service's sessions.
//! - [`client`]: the outbound SMTP/LMTP client ([`client::Session`]).
//! - [`codec`]: sans-IO protocol.
//!   - [`codec::line`]: CRLF command lines with a length limit.
//!   - [`codec::command`] and [`codec::path`]: [`codec::Command`] parsing,
//!     MAIL/RCPT paths and ESMTP parameters, Postfix's error replies;
//!     [`codec::xtext`] for the DSN parameters.
//!   - [`codec::data`]: the DATA decoder: dot-unstuffing, bare CR/LF
//!     ([`BareNewline`]), the size limit, and `<CRLF>.<CRLF>` as the only
//!     end of data.
//!   - [`codec::reply`]: replies written into the output buffer without
//!     allocating.
//! - [`session`]: [`serve`], [`SessionSettings`], [`Connection`]; one file
//!   per command (`helo`, `mail`, `rcpt`, `data`, `bdat`, `vrfy`, `etrn`,
//!   `starttls`, `auth`, `simple` for the rest), `check` for the policy,
//!   `received` for the trace header, `limits` for the per-client limits,
//!   the error slow-down, `header_size_limit` and the stop signal,
//!   `cleanup` for a submission's
//!   Message-Id and Date, `io` for buffering and pipelining, `tls` for the
//!   certificate ([`TlsConfig`]) and the upgradable stream, `log` for
//!   maillog shapes.

pub mod anvil;
pub mod client;
pub mod codec;
pub mod session;

pub use anvil::Anvil;
pub use codec::BareNewline;
pub use session::{
    ClientLimits, Connection, SessionSettings, Shutdown, TlsConfig, TlsError, TlsInfo, serve,
};
