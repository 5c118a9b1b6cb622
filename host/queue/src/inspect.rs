//! Looking into the queue without changing it: what `postern queue list`
//! (mailq) and `postern queue show ID` (postcat -q) print.
//!
//! These run beside the daemon, which may finish a message while it is
//! read: its file then leaves the queue's directory, and since the file
//! of a finished message may become a spare (`crate::spare`) that the
//! next message is written over, what was read may be part of another
//! message. A read therefore counts only if the file still bears the
//! name it was opened by once it has been read ([`OpenedByName`]); else
//! the message is gone, as if the name had not been there.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
        let read = OpenedByName::open(&path).and_then(|opened| match opened {
            Some(opened) => opened.read(),
            None => Ok(None),
        });
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e) => return Err(QueueError::io(path, e)),
        };
        parse_named(id, &bytes)
            .map(|parsed| Some(parsed.message))
            .map_err(|source| QueueError::Corrupt { path, source })
    }
}

/// A queue file opened by its name, whose bytes count only if the name
/// still leads to it once they have been read.
///
/// A queue file never comes back to a name it left (queue ids are not
/// reused), so a file that still has its name after the read was in the
/// queue for the whole read, and its bytes are its message's (appended
/// status records aside, which the format tolerates half-written).
#[derive(Debug)]
struct OpenedByName {
    file: File,
    path: PathBuf,
}

impl OpenedByName {
    /// The file at `path`; `None` if there is none.
    fn open(path: &Path) -> io::Result<Option<OpenedByName>> {
        match File::open(path) {
            Ok(file) => Ok(Some(OpenedByName {
                file,
                path: path.to_owned(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All its bytes; `None` if it left its name meanwhile (the message
    /// was finished, moved to another queue, or deleted).
    fn read(mut self) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes)?;
        let read = self.file.metadata()?;
        match fs::symlink_metadata(&self.path) {
            Ok(now) if (now.dev(), now.ino()) == (read.dev(), read.ino()) => Ok(Some(bytes)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::QueueName;
    use crate::testing::envelope;

    /// `postern queue show` reading a message the daemon finishes
    /// meanwhile, whose file the next message is written over: the read
    /// finds the message gone, never the other message's bytes (which
    /// once gave a parse error) nor a mix of the two.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_file_written_over_while_read_reads_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path()).unwrap();
        let spool = &queue.spool;
        let old = crate::id::next_id();
        let len = spool
            .write_new(
                &old,
                &envelope(&["a@example.net"]),
                b"old\r\n",
                QueueName::Active,
            )
            .unwrap();
        let path = spool.path(QueueName::Active, &old);

        // Nothing happens between the open and the read: the message.
        let opened = OpenedByName::open(&path).unwrap().unwrap();
        assert!(opened.read().unwrap().is_some());
        assert_eq!(queue.read(&old).unwrap().1.content, b"old\r\n");

        // Opened, then finished and its file written over by the next
        // message, then read.
        let opened = OpenedByName::open(&path).unwrap().unwrap();
        spool
            .remove_finished(QueueName::Active, &old, Some(len))
            .unwrap();
        let new = crate::id::next_id();
        spool
            .write_new(
                &new,
                &envelope(&["b@example.net"]),
                b"new\r\n",
                QueueName::Active,
            )
            .unwrap();
        assert_eq!(
            fs::metadata(spool.path(QueueName::Active, &new))
                .unwrap()
                .ino(),
            opened.file.metadata().unwrap().ino(),
            "the next message went into the finished file"
        );
        assert!(
            opened.read().unwrap().is_none(),
            "the next message's bytes were read as the finished one's"
        );
        assert!(matches!(queue.read(&old), Err(QueueError::NotFound(_))));
        assert_eq!(queue.read(&new).unwrap().1.content, b"new\r\n");
        let listed: Vec<_> = queue.list().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(listed, [new]);
    }
}
