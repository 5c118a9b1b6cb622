//! Where the queue hands one recipient of a message to a delivery agent
//! (Postfix's qmgr → local/virtual/smtp boundary).

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
}
