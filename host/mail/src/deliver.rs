//! Where the queue hands recipients of a message to a delivery agent
//! (Postfix's qmgr → local/virtual/smtp boundary): one at a time for local
//! mailboxes, several of one destination at once for SMTP, where one
//! transaction carries them all.

use crate::enqueue::BoxFuture;
use crate::envelope::{Envelope, QueueId, Recipient};
use crate::reply::EnhancedCode;

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Delivered: the mailbox file is on disk (or the next hop said 250).
    Sent {
        /// The RFC 3463 code for the log's `dsn=` (normally 2.0.0).
        dsn: EnhancedCode,
        /// Why, as the log shows it: `delivered to maildir`.
        detail: String,
    },
    /// Failed for now; the queue tries again later.
    Deferred {
        /// A 4.x.x code.
        dsn: EnhancedCode,
        /// Why.
        detail: String,
    },
    /// Failed for good; the queue returns the message to the sender.
    Bounced {
        /// A 5.x.x code.
        dsn: EnhancedCode,
        /// Why.
        detail: String,
    },
}

impl DeliveryStatus {
    /// The word Postfix logs after `status=`.
    pub fn word(&self) -> &'static str {
        match self {
            DeliveryStatus::Sent { .. } => "sent",
            DeliveryStatus::Deferred { .. } => "deferred",
            DeliveryStatus::Bounced { .. } => "bounced",
        }
    }

    /// The enhanced code for `dsn=`.
    pub fn dsn(&self) -> EnhancedCode {
        match self {
            DeliveryStatus::Sent { dsn, .. }
            | DeliveryStatus::Deferred { dsn, .. }
            | DeliveryStatus::Bounced { dsn, .. } => *dsn,
        }
    }

    /// The text in parentheses after the status word.
    pub fn detail(&self) -> &str {
        match self {
            DeliveryStatus::Sent { detail, .. }
            | DeliveryStatus::Deferred { detail, .. }
            | DeliveryStatus::Bounced { detail, .. } => detail,
        }
    }
}

/// What became of one recipient of a batch, and who says so: the agent
/// and relay the queue's log line names (`postern/smtp: ID: to=<..>,
/// relay=mx.example.net[192.0.2.1]:25, ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The agent that handled it: `local`, `smtp`, `lmtp`, `error`.
    pub agent: &'static str,
    /// `relay=` in the log: `local`, `host[ip]:port`, or `none` when no
    /// server was reached.
    pub relay: String,
    /// The outcome.
    pub status: DeliveryStatus,
    /// The server's own reply, when one answered for this recipient: the
    /// bounce notice's `Remote-MTA` and `Diagnostic-Code: smtp; ...`
    /// (RFC 3464 §2.3.5, §2.3.6). `None` for local delivery and for
    /// failures before any server spoke (no address, connection refused).
    pub remote: Option<RemoteReply>,
    /// The next hop announced DSN and was handed this recipient's NOTIFY
    /// and ORCPT (RFC 3461 §4.1, §4.2): a success is its to report from
    /// now on, so the queue sends no success notice of its own (Postfix's
    /// smtp clears NOTIFY=SUCCESS then). False for local delivery and for
    /// a next hop without DSN, for which the queue reports `relayed`.
    pub next_hop_notifies: bool,
}

/// What a remote server said about one recipient, as Postfix's smtp(8)
/// hands it to bounce(8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReply {
    /// The server's host name as it was found (MX host, next hop, or the
    /// address of a `[ip]` next hop): `mx.example.net`.
    pub mta: String,
    /// Its reply on one line, code first: `550 5.1.1 <bob@example.net>:
    /// unknown user`.
    pub reply: String,
}

/// A delivery agent: local (Maildir, mbox, pipe) or remote SMTP.
pub trait Deliver: Send + Sync {
    /// The agent's name as logs show it: `local`, `virtual`, `smtp`. The
    /// queue logs `postern/<agent>: ID: to=<..>, relay=<relay>, ...`.
    fn agent(&self) -> &'static str;

    /// Delivers `content` to one recipient. Must only answer `Sent` once
    /// the message is durable at the destination. An agent never panics on
    /// bad content; it answers `Bounced` or `Deferred` with the reason.
    fn deliver<'a>(
        &'a self,
        id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus>;

    /// Which recipients may share one delivery: the queue hands the
    /// pending recipients of a message that have the same key to
    /// [`Deliver::deliver_batch`] together (Postfix's qmgr groups by
    /// transport and next hop). `None`, the default, delivers a recipient
    /// on its own.
    fn destination(&self, recipient: &Recipient) -> Option<String> {
        let _ = recipient;
        None
    }

    /// Delivers `content` to `recipient` now, before the message is
    /// queued (`immediate_local_delivery`), when that delivery is a plain
    /// store into a mailbox here: no alias, no `.forward`, no command, no
    /// other transport. `None` for anything else, and the queue takes the
    /// recipient as usual. The default delivers nothing at once.
    fn deliver_at_once<'a>(
        &'a self,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, Option<Delivered>> {
        let _ = (envelope, recipient, content);
        Box::pin(std::future::ready(None))
    }

    /// Delivers `content` to several recipients of one destination and
    /// answers one [`Delivered`] per recipient, in order. The default
    /// hands each to [`Deliver::deliver`] in turn.
    fn deliver_batch<'a>(
        &'a self,
        id: &'a QueueId,
        envelope: &'a Envelope,
        recipients: &'a [Recipient],
        content: &'a [u8],
    ) -> BoxFuture<'a, Vec<Delivered>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(recipients.len());
            for recipient in recipients {
                let status = self.deliver(id, envelope, recipient, content).await;
                out.push(Delivered {
                    agent: self.agent(),
                    relay: self.agent().to_owned(),
                    status,
                    remote: None,
                    next_hop_notifies: false,
                });
            }
            out
        })
    }
}

/// An I/O error as Postfix's logs word it: the C library's text alone
/// (`Connection refused`, `Not a directory`), without Rust's ` (os error
/// 111)`. Status details and log lines that pflogsumm and operators' greps
/// read use it.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod io_reason_tests {
    use super::io_reason;

    #[test]
    fn the_os_error_number_is_left_out() {
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(io_reason(&refused), "Connection refused");
        let other = std::io::Error::other("no such thing (os error 5)");
        assert_eq!(io_reason(&other), "no such thing (os error 5)");
    }
}
