//! Looking into the queue without changing it: what `postern queue list`
//! (mailq) and `postern queue show ID` (postcat -q) print.

use std::fs;
use std::io;
use std::time::SystemTime;

use postern_mail::{QueueId, Recipient, ReversePath};

use crate::error::QueueError;
use crate::format::{QueuedMessage, parse_named};
use crate::queue::Queue;
use crate::spool::QueueName;
use crate::status::RecipientStatus;

/// One message as the queue listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The queue id.
    pub id: QueueId,
    /// Which queue holds it: active, deferred or hold.
    pub queue: QueueName,
    /// The envelope sender.
    pub sender: ReversePath,
    /// Every recipient with its state (the last deferral reason included).
    pub recipients: Vec<(Recipient, RecipientStatus)>,
    /// The content size in bytes.
    pub size: u64,
    /// When the message arrived.
    pub arrival: SystemTime,
    /// When the next attempt is due, once the message was deferred.
    pub next_attempt: Option<SystemTime>,
}

impl Queue {
    /// Every message in `active/`, `deferred/` and `hold/`, oldest first.
    /// Files that vanish while listing (delivered meanwhile) or do not
    /// parse (they go to `corrupt/` at the next start) are left out.
    /// Blocking: it reads every queue file.
    pub fn list(&self) -> Result<Vec<QueueEntry>, QueueError> {
        let mut out = Vec::new();
        for q in [QueueName::Active, QueueName::Deferred, QueueName::Hold] {
            let entries = self
                .spool
                .entries(q)
                .map_err(|e| QueueError::io(self.spool.dir(q), e))?;
            for (path, meta) in entries {
                let Some(id) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(QueueId::parse)
                else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let Ok(Some(message)) = self.read_in(q, &id) else {
                    continue;
                };
                out.push(QueueEntry {
                    queue: q,
                    sender: message.envelope.sender.clone(),
                    size: message.content.len() as u64,
                    arrival: message.envelope.arrival,
                    next_attempt: message.next_attempt,
                    recipients: message
                        .envelope
                        .recipients
                        .into_iter()
                        .zip(message.statuses)
                        .collect(),
                    id,
                });
            }
        }
        out.sort_by(|a, b| (a.arrival, &a.id).cmp(&(b.arrival, &b.id)));
        Ok(out)
    }

    /// Message `id` with its content and recipient states, and the queue
    /// that holds it. Blocking.
    pub fn read(&self, id: &QueueId) -> Result<(QueueName, QueuedMessage), QueueError> {
        for q in [QueueName::Active, QueueName::Deferred, QueueName::Hold] {
            if let Some(message) = self.read_in(q, id)? {
                return Ok((q, message));
            }
        }
        Err(QueueError::NotFound(id.clone()))
    }

    /// Message `id` from queue `q`; `None` if not there.
    fn read_in(&self, q: QueueName, id: &QueueId) -> Result<Option<QueuedMessage>, QueueError> {
        let path = self.spool.path(q, id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(QueueError::io(path, e)),
        };
        parse_named(id, &bytes)
            .map(|parsed| Some(parsed.message))
            .map_err(|source| QueueError::Corrupt { path, source })
    }
}
