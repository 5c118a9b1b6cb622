//! The operator's hands on the queue (Postfix's postsuper): hold, release,
//! requeue and delete, by renaming or removing files exactly as the daemon
//! does. Each works from another process while the daemon runs: a rename
//! is atomic, so the daemon and the operator each see the file in one
//! queue; when the daemon finds a file gone or moved it leaves it be.
//! The daemon notices released and requeued messages at its next scan, or
//! at once when told over the trigger socket (see [`crate::trigger`]).

use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use postern_mail::QueueId;
use tokio::sync::Notify;

use crate::error::QueueError;
use crate::queue::{Queue, Schedule};
use crate::settings::QueueSettings;
use crate::spool::{QueueName, Spool};

/// The queues a message waiting for delivery can be in.
const LIVE: [QueueName; 3] = [QueueName::Active, QueueName::Deferred, QueueName::Hold];

impl Queue {
    /// Opens an existing queue directory for `postern queue` commands:
    /// nothing is created and nothing recovered (the daemon may be writing
    /// into `incoming/` right now). Do not [`Queue::run`] it.
    pub fn attach(dir: impl AsRef<Path>) -> Result<Queue, QueueError> {
        Ok(Queue {
            spool: Spool::existing(dir.as_ref())?,
            settings: arc_swap::ArcSwap::from_pointee(QueueSettings::default()),
            wake: Notify::new(),
            flush_requested: AtomicBool::new(false),
            schedule: Mutex::new(Schedule::default()),
            at_once: crate::at_once::AtOnce::default(),
        })
    }

    /// Puts message `id` on hold (`postsuper -h`): from `active/` or
    /// `deferred/` to `hold/`. Returns the queue it was in. A delivery in
    /// progress finishes its current recipient and records it in the
    /// held file; nothing more is tried until release.
    pub fn hold(&self, id: &QueueId) -> Result<QueueName, QueueError> {
        self.move_any(
            id,
            &[QueueName::Active, QueueName::Deferred],
            QueueName::Hold,
        )
    }

    /// Releases held message `id` (`postsuper -H`) into `active/`.
    pub fn release(&self, id: &QueueId) -> Result<(), QueueError> {
        self.move_any(id, &[QueueName::Hold], QueueName::Active)
            .map(drop)
    }

    /// Makes deferred message `id` due now (`postsuper -r`): from
    /// `deferred/` to `active/`. A message already in `active/` is left
    /// there; a held one must be released instead.
    pub fn requeue(&self, id: &QueueId) -> Result<QueueName, QueueError> {
        if self.spool.path(QueueName::Active, id).exists() {
            return Ok(QueueName::Active);
        }
        self.move_any(id, &[QueueName::Deferred], QueueName::Active)
    }

    /// Deletes message `id` for good (`postsuper -d`), from whichever
    /// queue holds it. No bounce notice is sent. Returns where it was.
    pub fn delete(&self, id: &QueueId) -> Result<QueueName, QueueError> {
        // Twice round: the daemon may move the file between two queues
        // while this looks for it.
        for _ in 0..2 {
            for q in LIVE {
                match self.spool.remove(q, id) {
                    Ok(()) => {
                        tracing::info!(target: "postern/postsuper", "{id}: removed");
                        return Ok(q);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(QueueError::io(self.spool.path(q, id), e)),
                }
            }
        }
        Err(QueueError::NotFound(id.clone()))
    }

    /// Deletes every message (`postsuper -d ALL`); returns how many.
    pub fn delete_all(&self) -> Result<usize, QueueError> {
        self.each(&LIVE, |id| self.delete(id).map(drop))
    }

    /// Puts every message in `active/` and `deferred/` on hold
    /// (`postsuper -h ALL`); returns how many.
    pub fn hold_all(&self) -> Result<usize, QueueError> {
        self.each(&[QueueName::Active, QueueName::Deferred], |id| {
            self.hold(id).map(drop)
        })
    }

    /// Releases every held message (`postsuper -H ALL`); returns how many.
    pub fn release_all(&self) -> Result<usize, QueueError> {
        self.each(&[QueueName::Hold], |id| self.release(id))
    }

    /// Makes every deferred message due now (`postsuper -r ALL`); returns
    /// how many.
    pub fn requeue_all(&self) -> Result<usize, QueueError> {
        self.each(&[QueueName::Deferred], |id| self.requeue(id).map(drop))
    }

    /// Applies `op` to every message in `queues`; returns for how many it
    /// did. A message the daemon moves or finishes meanwhile is skipped.
    fn each(
        &self,
        queues: &[QueueName],
        op: impl Fn(&QueueId) -> Result<(), QueueError>,
    ) -> Result<usize, QueueError> {
        let mut n = 0;
        for &q in queues {
            let entries = self
                .spool
                .entries(q)
                .map_err(|e| QueueError::io(self.spool.dir(q), e))?;
            for (path, _) in entries {
                let Some(id) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(QueueId::parse)
                else {
                    continue;
                };
                if op(&id).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Renames `id` from the first of `from` that has it into `to`.
    fn move_any(
        &self,
        id: &QueueId,
        from: &[QueueName],
        to: QueueName,
    ) -> Result<QueueName, QueueError> {
        for _ in 0..2 {
            for &q in from {
                match self.spool.move_to(id, q, to) {
                    Ok(()) => {
                        tracing::info!(target: "postern/postsuper", "{id}: moved from {q} to {to}");
                        return Ok(q);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(QueueError::io(self.spool.path(q, id), e)),
                }
            }
        }
        match LIVE.iter().any(|&q| self.spool.path(q, id).exists()) {
            true => Err(QueueError::NotIn {
                id: id.clone(),
                queue: from.first().copied().unwrap_or(to),
            }),
            false => Err(QueueError::NotFound(id.clone())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::Enqueue;

    use super::*;
    use crate::testing::{envelope, names};

    #[tokio::test]
    async fn hold_release_requeue_delete() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let id = q.new_id();
        q.enqueue(id.clone(), envelope(&["a@x.org"]), b"x".to_vec())
            .await
            .unwrap();
        let admin = Queue::attach(dir.path()).unwrap();
        assert_eq!(admin.hold(&id).unwrap(), QueueName::Active);
        assert_eq!(names(&dir.path().join("hold")), [id.to_string()]);
        assert!(matches!(admin.requeue(&id), Err(QueueError::NotIn { .. })));
        admin.release(&id).unwrap();
        assert_eq!(names(&dir.path().join("active")), [id.to_string()]);
        assert!(matches!(admin.release(&id), Err(QueueError::NotIn { .. })));
        std::fs::rename(
            dir.path().join("active").join(id.as_str()),
            dir.path().join("deferred").join(id.as_str()),
        )
        .unwrap();
        assert_eq!(admin.requeue(&id).unwrap(), QueueName::Deferred);
        assert_eq!(admin.delete(&id).unwrap(), QueueName::Active);
        assert!(matches!(admin.delete(&id), Err(QueueError::NotFound(_))));
        for _ in 0..3 {
            q.enqueue(q.new_id(), envelope(&["a@x.org"]), b"x".to_vec())
                .await
                .unwrap();
        }
        // ALL (postsuper -h/-H/-r/-d ALL).
        assert_eq!(admin.hold_all().unwrap(), 3);
        assert_eq!(names(&dir.path().join("hold")).len(), 3);
        assert_eq!(admin.hold_all().unwrap(), 0);
        assert_eq!(admin.requeue_all().unwrap(), 0);
        assert_eq!(admin.release_all().unwrap(), 3);
        assert_eq!(names(&dir.path().join("active")).len(), 3);
        for name in names(&dir.path().join("active")).iter().take(2) {
            std::fs::rename(
                dir.path().join("active").join(name),
                dir.path().join("deferred").join(name),
            )
            .unwrap();
        }
        assert_eq!(admin.requeue_all().unwrap(), 2);
        assert!(names(&dir.path().join("deferred")).is_empty());
        assert_eq!(admin.delete_all().unwrap(), 3);
        assert!(q.list().unwrap().is_empty());
    }

    #[test]
    fn attach_needs_a_queue() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Queue::attach(dir.path().join("none")),
            Err(QueueError::NoQueue(_))
        ));
    }
}
