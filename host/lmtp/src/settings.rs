//! What an LMTP session runs with: the limits (Postfix's smtpd names, as
//! the SMTP sessions read them), who the client is, and the mailboxes it
//! delivers into.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_mail::{Address, BoxFuture, DeliveryStatus, Domain, Envelope, QueueId, Recipient};
use postern_smtp::BareNewline;
use tokio::sync::watch;

/// The mailboxes an LMTP server delivers into: local delivery, seen
/// through two questions. Implemented by the server crate over
/// `postern_delivery::LocalDelivery`, and by a fake in the tests.
pub trait Mailboxes: Send + Sync + fmt::Debug {
    /// Whether `address` has a mailbox here (the users file, `postmaster`
    /// at a local domain, with a `recipient_delimiter` extension removed):
    /// RCPT is refused `550 5.1.1` otherwise.
    fn exists(&self, address: &Address) -> bool;

    /// Writes `content` into the mailbox of `recipient.address` and says
    /// how that went: `Sent` only once the message is on disk. `id` names
    /// the transaction in log lines.
    fn deliver<'a>(
        &'a self,
        id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus>;
}

/// What every session of one `lmtp` service shares.
#[derive(Clone)]
pub struct Settings {
    /// `$myhostname`: the greeting, the `Received:` header, and the domain
    /// of a bare `RCPT TO:<postmaster>`.
    pub myhostname: Domain,
    /// `message_size_limit` (bytes; 0: none): announced in SIZE, checked
    /// at MAIL and while the data arrives, which is never kept past it.
    pub message_size_limit: u64,
    /// `line_length_limit`: the longest command line, CRLF included.
    pub line_length_limit: usize,
    /// `smtpd_recipient_limit`: RCPTs past it get `452 4.5.3`, so a
    /// transaction's memory stays bounded.
    pub recipient_limit: usize,
    /// `smtpd_timeout`: how long a read or a write may wait.
    pub timeout: Duration,
    /// `smtpd_hard_error_limit`: errors before `421 4.7.0` and a close.
    pub hard_error_limit: u32,
    /// `smtpd_forbid_bare_newline`: what a bare CR or LF in the data
    /// does. Neither mode lets one end the data.
    pub bare_newline: BareNewline,
    /// Where recipients are checked and messages written.
    pub mailboxes: Arc<dyn Mailboxes>,
    /// Names each transaction in log lines and replies (the queue's id
    /// maker, so that ids never collide with queued mail's).
    pub next_id: fn() -> QueueId,
    /// Becomes `true` when the server stops: a session between
    /// transactions says `421 4.3.2` and closes; one in a transaction
    /// finishes it first.
    pub stop: Option<watch::Receiver<bool>>,
}

impl Settings {
    /// Postfix's defaults (10240000 bytes, 2048-byte lines, 1000
    /// recipients, 300 s, 20 errors), delivering into `mailboxes`.
    pub fn new(
        myhostname: Domain,
        mailboxes: Arc<dyn Mailboxes>,
        next_id: fn() -> QueueId,
    ) -> Settings {
        Settings {
            myhostname,
            message_size_limit: 10_240_000,
            line_length_limit: 2048,
            recipient_limit: 1000,
            timeout: Duration::from_secs(300),
            hard_error_limit: 20,
            bare_newline: BareNewline::Normalize,
            mailboxes,
            next_id,
            stop: None,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("myhostname", &self.myhostname)
            .field("message_size_limit", &self.message_size_limit)
            .field("recipient_limit", &self.recipient_limit)
            .finish_non_exhaustive()
    }
}

/// Who is on the other end of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The client's address and port; `None` on a UNIX socket.
    pub peer: Option<SocketAddr>,
    /// How log lines and the `Received:` header name the client:
    /// `unknown[192.0.2.1]`, or `local` on a UNIX socket (as Postfix
    /// names mail that did not come over the network).
    pub client: String,
}

impl Connection {
    /// A client that connected over TCP from `peer`.
    pub fn tcp(peer: SocketAddr) -> Connection {
        Connection {
            peer: Some(peer),
            client: format!("unknown[{}]", peer.ip()),
        }
    }

    /// A client that connected to a UNIX socket (its path is not logged
    /// per session: the `listening on` line names it).
    pub fn unix() -> Connection {
        Connection {
            peer: None,
            client: "local".to_owned(),
        }
    }
}
