//! The queue file, version 1: self-describing, appendable, and checked.
//!
//! ```text
//! POSTERN-QUEUE 1                     magic and version
//! sum 1c291ca3                        CRC-32 of what follows, up to and
//!                                     including the end marker
//! id 0005F3A1B2C3D4E000A1F2           envelope records, one per line,
//! arrival 1700000000.123456789        values escaped (see status::escape)
//! sender alice@example.org            (empty value: the null sender <>)
//! client 192.0.2.7:41234              (absent when unknown)
//! client_name mx.example.org
//! helo mx.example.org                 (absent when the client sent none)
//! protocol ESMTP
//! hold 0
//! ret HDRS                            DSN RET (absent when not given)
//! envid QQ314159                      DSN ENVID, decoded (absent: none)
//! smtputf8 1                          SMTPUTF8 / BODY=8BITMIME given
//! 8bitmime 1                          (absent when not)
//! filter smtp:[127.0.0.1]:10025       content filter: every recipient
//!                                     goes there (absent: none)
//! rcpt bob@example.net Bob@example.net   address, then as given in RCPT TO
//! rcpt c@example.net c@example.net SUCCESS,FAILURE rfc822;C@example.net
//!                                     then NOTIFY (or `-`) and ORCPT when given
//! size 1445                           content length in bytes
//!                                     blank line
//! <1445 bytes of content>
//! \nPOSTERN-END\n                     end marker: truncation shows
//! D 0 sent 2.0.0 delivered%20to%20maildir   status records, appended
//! D 1 bounced 5.1.1 host%20mx... mx.example.net 550%205.1.1%20...
//!                                     then, when a server answered, its
//!                                     name and reply (for Remote-MTA)
//! T 1700000300                        a deferral: next attempt (unix time)
//! N 0005F3A1B2C3D4E0FF0A1F 2,3         a bounce notice (its queue id) was
//!                                     queued for recipients 2 and 3
//! W 0005F3A1B2C3D4E0FF0A20            the delay warning (its queue id) was
//!                                     queued: never a second one
//! ```
//!
//! The content length sits before the content and the end marker after it,
//! so a file cut at any byte fails to parse; the checksum, in the file's
//! first bytes beside its id, makes a file whose later pages are not the
//! ones written (stale blocks, zeros, another message's end: what a power
//! cut can leave of a spare written over in place, spare.rs) fail too. Status records are appended
//! one `write` and fsync at a time after each delivery; a torn last record
//! (a crash in the middle of appending it) is ignored, which only means
//! that recipient is tried again. Parsing trusts no length beyond the file
//! and never panics.
//!
//! The DSN, SMTPUTF8, filter and sum records came later: a file without them is a file
//! written before them (or for mail without those parameters), so old
//! queue files stay readable, and a message without them is written
//! exactly as before.

use std::time::SystemTime;

use postern_mail::{Envelope, QueueId, Recipient, RemoteReply};

use crate::status::RecipientStatus;

mod parse;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod write;

pub(crate) use parse::{Parsed, parse, parse_named};
#[cfg(test)]
pub(crate) use write::status_record;
pub(crate) use write::{
    deferral_record, header, notice_record, remote_status_record, warning_record,
};

/// The first line of every version 1 queue file.
const MAGIC: &str = "POSTERN-QUEUE";
const VERSION: &str = "1";

/// Reads a whole queue file as the daemon does (the `id` record not
/// checked against a file name): the message, its recipients' states and
/// what its status records say. For tools and the fuzz target; the
/// daemon reads through the spool.
pub fn read_file(bytes: &[u8]) -> Result<QueuedMessage, crate::ParseError> {
    parse(bytes).map(|parsed| parsed.message)
}

/// The bytes of a new queue file for message `id`: its envelope records
/// with their checksum, `content`, and the end marker, as the daemon
/// writes one before its 250 (no status record yet).
pub fn new_file(id: &QueueId, envelope: &Envelope, content: &[u8]) -> Vec<u8> {
    let mut file = header(id, envelope, content);
    file.extend_from_slice(content);
    file.extend_from_slice(END_MARKER);
    file
}

/// The key of the checksum record, the second line of the file.
const SUM: &str = "sum";

/// What follows the content.
pub(crate) const END_MARKER: &[u8] = b"\nPOSTERN-END\n";

/// One message as its queue file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The queue id (also the file name).
    pub id: QueueId,
    /// Sender, recipients and how the message arrived.
    pub envelope: Envelope,
    /// The message, byte for byte as queued.
    pub content: Vec<u8>,
    /// One state per recipient of `envelope.recipients`, same order.
    pub statuses: Vec<RecipientStatus>,
    /// How many delivery attempts ended with a deferral.
    pub deferrals: u32,
    /// When the last deferral scheduled the next attempt.
    pub next_attempt: Option<SystemTime>,
    /// One flag per recipient: whether a bounce notice for it was queued
    /// (an `N` record). A failed recipient without one still owes its
    /// notice, even after a crash.
    pub notified: Vec<bool>,
    /// One entry per recipient: what the remote server said in the
    /// attempt that set its status, when one answered.
    pub remote: Vec<Option<RemoteReply>>,
    /// Whether the `delay_warning_time` notice was queued (a `W` record):
    /// one per message, restarts included.
    pub warned: bool,
}

impl QueuedMessage {
    /// The message as its file reads back right after it was written:
    /// every recipient pending, no record yet. [`parse()`] builds on it, so
    /// a message handed from the enqueue to the scheduler in memory is the
    /// one the scheduler would have read.
    pub(crate) fn fresh(id: QueueId, envelope: Envelope, content: Vec<u8>) -> QueuedMessage {
        let count = envelope.recipients.len();
        QueuedMessage {
            id,
            envelope,
            content,
            statuses: vec![RecipientStatus::Pending; count],
            deferrals: 0,
            next_attempt: None,
            notified: vec![false; count],
            remote: vec![None; count],
            warned: false,
        }
    }

    /// Whether every recipient has a final state: the file can go.
    pub fn is_done(&self) -> bool {
        self.statuses.iter().all(RecipientStatus::is_final)
    }

    /// The recipients still to deliver, with their index.
    pub fn pending(&self) -> impl Iterator<Item = (usize, &Recipient)> {
        self.envelope
            .recipients
            .iter()
            .enumerate()
            .filter(|(i, _)| self.statuses.get(*i).is_some_and(|s| !s.is_final()))
    }

    /// The recipients that failed for good (bounced or expired) and whose
    /// bounce notice is not queued yet, by index. A recipient whose DSN
    /// `NOTIFY` leaves out `FAILURE` (`NEVER`, say) is never owed one.
    pub fn unnotified_failures(&self) -> Vec<usize> {
        self.unnotified(|s, r| {
            matches!(
                s,
                RecipientStatus::Bounced { .. } | RecipientStatus::Expired { .. }
            ) && r.notify_failure()
        })
    }

    /// The recipients delivered with `NOTIFY=SUCCESS` whose success notice
    /// (RFC 3461 §5.2.2) is not queued yet, by index.
    pub fn unnotified_successes(&self) -> Vec<usize> {
        self.unnotified(|s, r| matches!(s, RecipientStatus::Sent { .. }) && r.notify_success())
    }

    /// The recipients a delay warning tells about (RFC 3461 §4.1): still
    /// deferred, and with no `NOTIFY` or one that names `DELAY` (Postfix
    /// counts a recipient without `NOTIFY` in).
    pub fn delayed(&self) -> Vec<usize> {
        self.statuses
            .iter()
            .zip(&self.envelope.recipients)
            .enumerate()
            .filter(|(_, (s, r))| {
                matches!(s, RecipientStatus::Deferred { .. }) && r.notify.is_none_or(|n| n.delay)
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn unnotified(&self, owed: impl Fn(&RecipientStatus, &Recipient) -> bool) -> Vec<usize> {
        self.statuses
            .iter()
            .zip(&self.envelope.recipients)
            .enumerate()
            .filter(|(i, (s, r))| owed(s, r) && !self.notified.get(*i).copied().unwrap_or(false))
            .map(|(i, _)| i)
            .collect()
    }
}
