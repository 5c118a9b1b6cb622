//! Taking a message in: Postfix's cleanup, minus the header rewriting.

use postern_mail::{BoxFuture, Enqueue, EnqueueError, Envelope, QueueId};

use crate::attempt::Loaded;
use crate::format::QueuedMessage;
use crate::id::next_id;
use crate::queue::{Queue, blocking};
use crate::spool::QueueName;

impl Enqueue for Queue {
    fn new_id(&self) -> QueueId {
        next_id()
    }

    /// Postfix's `smtpd_check_queue`: no room when the queue's file
    /// system has less than `queue_minfree` free, or when the announced
    /// `size` is over half of what is free beyond it. A file system that
    /// cannot be asked has room (the write will tell).
    fn has_room(&self, size: u64) -> bool {
        let minfree = self.settings().queue_minfree;
        let need = minfree.saturating_add(size.saturating_mul(2));
        let Some(free) = self.spool.free_space(need) else {
            return true;
        };
        free > minfree && size <= (free - minfree) / 2
    }

    /// Writes `incoming/ID`, fsyncs it, links it into `active/` (or
    /// `hold/` when the envelope says so), fsyncs that directory, and only
    /// then resolves `Ok`. The file work runs on a blocking thread. The
    /// delivery loop gets the message as written with its queue id, so it
    /// need not read back the file it was just told about.
    ///
    /// With `immediate_local_delivery`, the recipients the agent delivers
    /// at once are stored first and left out of the file, which is not
    /// written at all when none is left (`at_once`).
    fn enqueue<'a>(
        &'a self,
        id: QueueId,
        mut envelope: Envelope,
        content: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), EnqueueError>> {
        Box::pin(async move {
            // Next: cleanup's header work (Message-ID, Date, From when
            // missing; header_checks) belongs here, before the write.
            let target = if envelope.hold {
                QueueName::Hold
            } else {
                QueueName::Active
            };
            let sender = envelope.sender.to_string();
            let nrcpt = envelope.recipients.len();
            let size = content.len();
            let at_once = self.at_once_agent(&envelope);
            if let Some(agent) = &at_once {
                tracing::info!(
                    target: "postern/qmgr",
                    "{id}: from=<{sender}>, size={size}, nrcpt={nrcpt} (immediate delivery)"
                );
                envelope.recipients = self
                    .deliver_at_once(agent.as_ref(), &id, &envelope, &content)
                    .await;
                if envelope.recipients.is_empty() {
                    tracing::info!(target: "postern/qmgr", "{id}: removed");
                    return Ok(());
                }
            }
            let left = envelope.recipients.len();
            let spool = self.spool.clone();
            let file_id = id.clone();
            let loaded = blocking(move || {
                let len = spool.write_new(&file_id, &envelope, &content, target)?;
                let message = QueuedMessage::fresh(file_id, envelope, content);
                Ok(Loaded { message, len })
            })
            .await?;
            if at_once.is_some() {
                tracing::info!(
                    target: "postern/qmgr",
                    "{id}: {left} of {nrcpt} recipients queued (queue {target})"
                );
            } else {
                tracing::info!(
                    target: "postern/qmgr",
                    "{id}: from=<{sender}>, size={size}, nrcpt={nrcpt} (queue {target})"
                );
            }
            if target == QueueName::Active {
                self.schedule().admit_handed(id, loaded);
                self.wake.notify_one();
            }
            Ok(())
        })
    }

    /// ETRN: a queue run now, deferred mail included.
    fn flush(&self) {
        Queue::flush(self);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::ReversePath;

    use super::*;
    use crate::status::RecipientStatus;
    use crate::testing::{envelope, names, sample_content};

    #[tokio::test]
    async fn enqueued_message_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let id = q.new_id();
        let env = envelope(&["bob@example.net", "carol@example.net"]);
        let content = sample_content();
        q.enqueue(id.clone(), env.clone(), content.clone())
            .await
            .unwrap();
        assert_eq!(names(&dir.path().join("active")), [id.to_string()]);
        assert!(names(&dir.path().join("incoming")).is_empty());
        let (queue, m) = q.read(&id).unwrap();
        assert_eq!(queue, QueueName::Active);
        assert_eq!(m.id, id);
        assert_eq!(m.envelope, env);
        assert_eq!(m.content, content);
        assert_eq!(m.statuses, vec![RecipientStatus::Pending; 2]);
    }

    #[test]
    fn room_is_free_space_beyond_queue_minfree() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        assert!(q.has_room(0) && q.has_room(1000));
        assert!(!q.has_room(u64::MAX / 2));
        let settings = crate::QueueSettings {
            queue_minfree: u64::MAX / 2,
            ..crate::QueueSettings::default()
        };
        let full = Queue::open_with(dir.path(), settings).unwrap();
        assert!(!full.has_room(0));
    }

    #[tokio::test]
    async fn held_message_goes_to_hold() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let id = q.new_id();
        let mut env = envelope(&["bob@example.net"]);
        env.hold = true;
        env.sender = ReversePath::Null;
        q.enqueue(id.clone(), env.clone(), b"x".to_vec())
            .await
            .unwrap();
        assert!(names(&dir.path().join("active")).is_empty());
        assert_eq!(names(&dir.path().join("hold")), [id.to_string()]);
        assert_eq!(q.read(&id).unwrap().1.envelope, env);
    }

    #[tokio::test]
    async fn an_id_is_never_written_twice() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let id = q.new_id();
        q.enqueue(id.clone(), envelope(&["a@x.org"]), b"first".to_vec())
            .await
            .unwrap();
        let again = q
            .enqueue(id.clone(), envelope(&["a@x.org"]), b"second".to_vec())
            .await;
        assert!(again.is_err());
        assert_eq!(q.read(&id).unwrap().1.content, b"first");
        assert!(names(&dir.path().join("incoming")).is_empty());
    }
}
