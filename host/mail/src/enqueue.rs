//! Where the SMTP server hands an accepted message over to the queue
//! (Postfix's smtpd → cleanup boundary).

use crate::envelope::{Envelope, QueueId};
pub use crate::policy::BoxFuture;

/// Why a message could not be queued. The SMTP server answers every
/// variant with a 451 4.3.0 (try again), an `Io` error of a full disk
/// (ENOSPC, EDQUOT) with 452 4.3.1, and logs the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError {
    /// The queue file could not be written, synced or renamed.
    #[error("queue file write error: {0}")]
    Io(#[from] std::io::Error),
    /// The queue refuses new mail (shutting down, disk too full).
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// The durable queue as the SMTP server sees it.
pub trait Enqueue: Send + Sync {
    /// A fresh queue id, unique in this queue directory. The SMTP server
    /// takes one at the first accepted MAIL FROM, as Postfix's cleanup does,
    /// so that every log line of the transaction carries it.
    fn new_id(&self) -> QueueId;

    /// Writes the message durably under `id`. When the returned future
    /// resolves to `Ok`, the message and its directory entry are on disk
    /// (fsynced): only then may the server answer `250`. `content` is the
    /// message as received (CRLF line ends, dot-unstuffed), with the
    /// server's own trace headers already prepended.
    fn enqueue<'a>(
        &'a self,
        id: QueueId,
        envelope: Envelope,
        content: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), EnqueueError>>;

    /// Asks for a queue run now (SMTP ETRN, RFC 1985): deferred mail is
    /// tried again without waiting for its backoff. A queue that cannot
    /// do that ignores the request.
    fn flush(&self) {}

    /// Whether the queue has room for a message of `size` bytes (0 when
    /// the client announced none), asked at MAIL FROM as Postfix's smtpd
    /// asks: free space above `queue_minfree`, and the message at most
    /// half of what is left. `false` is answered 452 4.3.1. A queue that
    /// cannot tell has room.
    fn has_room(&self, size: u64) -> bool {
        let _ = size;
        true
    }
}
