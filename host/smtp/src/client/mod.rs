//! The outbound SMTP and LMTP client: what Postfix's smtp(8) and lmtp(8)
//! speak to the next hop. It knows one server at a time; which server
//! (MX lookup, relayhost, transport_maps) and what a reply means for the
//! queue belong to the delivery crate.
//!
//! Sans-IO where parsing is ([`reply`]: server replies; [`stuff`]: the
//! DATA body), a tokio [`Session`] for the rest: EHLO with a HELO
//! fallback, LHLO for LMTP, STARTTLS with rustls at Postfix's
//! `smtp_tls_security_level` ([`TlsLevel`]), AUTH PLAIN and LOGIN,
//! PIPELINING, SIZE, 8BITMIME, SMTPUTF8, the DSN parameters passed on
//! (RFC 3461 §5.2), several recipients per transaction with a reply for
//! each, and a timeout at every step ([`Timeouts`], Postfix's names). Not
//! here: DANE, client certificates, CHUNKING, STARTTLS for LMTP.
//!
//! # Layout
//! - [`reply`]: [`ReplyReader`], multi-line replies with limits.
//! - [`stuff`]: dot-stuffing ([`stuff::dot_stuff`]).
//! - [`tls`]: [`TlsLevel`], [`ClientTls`] (the rustls configs).
//! - `stream`: TCP, TLS or UNIX socket behind one type.
//! - [`session`]: [`Session`]: connect, greeting, EHLO, STARTTLS, AUTH.
//! - `transaction`: [`Session::send`], one message to many recipients.

pub mod reply;
pub mod session;
mod stream;
pub mod stuff;
pub mod tls;
mod transaction;

use std::sync::Arc;
use std::time::Duration;

use postern_mail::Reply;

pub use reply::{ReplyError, ReplyReader};
pub use session::{Extensions, Session};
pub use tls::{ClientTls, ClientTlsError, TlsLevel};

/// How long each step may take, under Postfix's `smtp_*_timeout` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `smtp_connect_timeout` (30s): the TCP connection.
    pub connect: Duration,
    /// `smtp_helo_timeout` (300s): the greeting, EHLO/HELO/LHLO, AUTH.
    pub helo: Duration,
    /// `smtp_starttls_timeout` (300s): STARTTLS and the handshake.
    pub starttls: Duration,
    /// `smtp_mail_timeout` (300s): MAIL FROM.
    pub mail: Duration,
    /// `smtp_rcpt_timeout` (300s): each RCPT TO.
    pub rcpt: Duration,
    /// `smtp_data_init_timeout` (120s): DATA's 354.
    pub data_init: Duration,
    /// `smtp_data_xfer_timeout` (180s): sending the content.
    pub data_xfer: Duration,
    /// `smtp_data_done_timeout` (600s): the reply after `.`.
    pub data_done: Duration,
    /// `smtp_rset_timeout` (20s): RSET on a reused connection.
    pub rset: Duration,
    /// `smtp_quit_timeout` (300s): QUIT.
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let s = Duration::from_secs;
        Timeouts {
            connect: s(30),
            helo: s(300),
            starttls: s(300),
            mail: s(300),
            rcpt: s(300),
            data_init: s(120),
            data_xfer: s(180),
            data_done: s(600),
            rset: s(20),
            quit: s(300),
        }
    }
}

/// What a session runs with.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `smtp_helo_name` ($myhostname): the EHLO argument.
    pub helo_name: String,
    /// LMTP (LHLO, a reply per recipient after DATA) instead of SMTP.
    pub lmtp: bool,
    /// `smtp_tls_security_level`.
    pub tls_level: TlsLevel,
    /// The rustls configs; `None` only with [`TlsLevel::None`].
    pub tls: Option<Arc<ClientTls>>,
    /// The step timeouts.
    pub timeouts: Timeouts,
}

/// Why a session or transaction failed as a whole. Each names the server
/// (`host[ip]:port`) and the step, as Postfix's log does.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection could not be made.
    #[error("connect to {relay}: {error}")]
    Connect {
        /// The server.
        relay: String,
        /// Why.
        error: String,
    },
    /// A step took longer than its timeout.
    #[error("conversation with {relay} timed out while {}", doing(.stage))]
    Timeout {
        /// The server.
        relay: String,
        /// The step.
        stage: &'static str,
    },
    /// The connection broke.
    #[error("lost connection with {relay} while {}: {error}", doing(.stage))]
    Lost {
        /// The server.
        relay: String,
        /// The step.
        stage: &'static str,
        /// Why.
        error: String,
    },
    /// The server answered something that is not an SMTP reply.
    #[error("protocol error with {relay} at {stage}: {error}")]
    Protocol {
        /// The server.
        relay: String,
        /// The step.
        stage: &'static str,
        /// What.
        error: String,
    },
    /// The server refused a step of the session (greeting, EHLO, AUTH...).
    #[error("host {relay} said: {reply} (in reply to {stage})")]
    Refused {
        /// The server.
        relay: String,
        /// The step.
        stage: &'static str,
        /// Its reply.
        reply: Reply,
    },
    /// `encrypt` or `verify`, and the server offers no STARTTLS.
    #[error("TLS is required, but was not offered by host {relay}")]
    TlsRequired {
        /// The server.
        relay: String,
    },
    /// The TLS handshake failed (for `verify`: the certificate too).
    #[error("TLS with {relay} failed: {error}")]
    Tls {
        /// The server.
        relay: String,
        /// Why.
        error: String,
    },
}

/// What the client was doing at `stage`, in the words of Postfix's
/// smtp(8) log lines ("timed out while receiving the initial server
/// greeting", "lost connection ... while sending end of data -- message
/// may be sent more than once"), which operators and their log tools know.
fn doing(stage: &str) -> &str {
    match stage {
        "greeting" => "receiving the initial server greeting",
        "EHLO" => "performing the EHLO handshake",
        "HELO" => "performing the HELO handshake",
        "LHLO" => "performing the LHLO handshake",
        "MAIL FROM" => "sending MAIL FROM",
        "RCPT TO" => "sending RCPT TO",
        "DATA" => "sending DATA command",
        "end of DATA" => "sending end of data -- message may be sent more than once",
        "STARTTLS" => "sending STARTTLS",
        "AUTH" => "authenticating",
        "RSET" => "sending RSET",
        "QUIT" => "sending QUIT",
        other => other,
    }
}

impl ClientError {
    /// Whether another server of the same destination may do better
    /// (Postfix tries the next MX host after a connection or greeting
    /// failure, not after a refused transaction).
    pub fn try_next(&self) -> bool {
        !matches!(self, ClientError::Refused { stage: "AUTH", .. })
    }

    /// Whether a transaction that failed so on a reused (cached)
    /// connection may be sent again on a new one: the connection turned
    /// out closed, or closing (421, RFC 5321 §3.8), before the message
    /// content went out, so the server cannot have taken the message.
    /// Postfix's smtp(8) likewise falls back to a new connection when a
    /// cached one is found dead.
    pub fn retry_fresh(&self) -> bool {
        match self {
            ClientError::Lost { stage, .. } => *stage != "end of DATA",
            ClientError::Refused { stage, reply, .. } => {
                *stage == "RSET" || (reply.code == 421 && *stage != "end of DATA")
            }
            ClientError::Timeout { stage, .. } => *stage == "RSET",
            _ => false,
        }
    }

    /// The server's reply, when the failure is one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            ClientError::Refused { reply, .. } => Some(reply),
            _ => None,
        }
    }
}
