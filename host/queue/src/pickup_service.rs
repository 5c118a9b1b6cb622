//! The daemon's side of local submission (Postfix's pickup): the
//! `public/pickup` socket that any local user may hand a message to (or
//! ask for the mailq listing or a queue run, as Postfix lets anyone),
//! and the scan of the maildrop for files dropped while no daemon ran
//! (`pickup_scan`). The design and the file format are in
//! [`crate::pickup`].

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use postern_mail::{Enqueue, EnqueueError, QueueId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, Semaphore, watch};

use crate::pickup::{
    Answer, POLL, Request, SCAN, Submission, create_maildrop, maildrop_dir, socket_path,
};
use crate::pickup_cleanup::{local_envelope, local_headers};
use crate::pickup_reserved::Reserved;
use crate::queue::Queue;

/// How many local submissions are read at once; a caller beyond that is
/// told to try again (its `sendmail` then uses the maildrop, or exits
/// 75). Each holds at most the size limit in memory.
const MAX_CLIENTS: usize = 16;

/// How long a caller has to write its message: `sendmail` has it in
/// memory before it connects, so only a stuck or hostile one needs this.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the answer may take to write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

impl Queue {
    /// Creates the maildrop, binds `public/pickup` (open to every local
    /// user, see [`crate::pickup`]), and runs the pickup until
    /// `shutdown`: every message handed over the socket and every file in
    /// the maildrop becomes a queued message. A message or file over
    /// `max_size` bytes is refused (a file goes to `corrupt/`); the limit
    /// is read for each message and each scan, so that the caller may
    /// change it while the pickup runs (`postern reload` of
    /// `message_size_limit`). Must run inside a tokio runtime.
    pub fn start_pickup(
        self: Arc<Self>,
        max_size: Arc<AtomicU64>,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<tokio::task::JoinHandle<()>> {
        let dir = maildrop_dir(self.dir());
        create_maildrop(&dir)?;
        let path = socket_path(self.dir());
        open_the_way(self.dir(), &path)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&path)?;
        // Connecting needs write permission on the socket: everyone's.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        let scan = Arc::new(Notify::new());
        let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
        let reserved = Arc::new(Reserved::default());
        Ok(tokio::spawn(async move {
            let mut rescan = true;
            loop {
                if std::mem::take(&mut rescan) {
                    // A full batch: there may be more.
                    rescan = self
                        .pick_up_all(&dir, max_size.load(Ordering::Relaxed))
                        .await;
                }
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let queue = Arc::clone(&self);
                            let scan = Arc::clone(&scan);
                            let permit = Arc::clone(&slots).try_acquire_owned().ok();
                            let reserved = Arc::clone(&reserved);
                            let max_size = max_size.load(Ordering::Relaxed);
                            tokio::spawn(async move {
                                let Some(_permit) = permit else {
                                    answer(stream, Answer::Deferred("too many local submissions at once".to_owned())).await;
                                    return;
                                };
                                queue.serve(stream, max_size, &scan, &reserved).await;
                            });
                        }
                        Err(e) => {
                            tracing::warn!(target: "postern/pickup", "{}: {e}", path.display());
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    _ = scan.notified() => rescan = true,
                    _ = std::future::ready(()), if rescan => {}
                    _ = tokio::time::sleep(POLL) => rescan = true,
                    _ = shutdown.changed() => break,
                }
            }
            let _ = std::fs::remove_file(&path);
        }))
    }

    /// One caller on the socket: its message, queued, and the answer.
    async fn serve(
        self: Arc<Self>,
        mut stream: UnixStream,
        max_size: u64,
        scan: &Notify,
        reserved: &Reserved,
    ) {
        // The kernel's word for who is calling, never the message's.
        let uid = match stream.peer_cred() {
            Ok(cred) => cred.uid(),
            Err(e) => {
                tracing::warn!(target: "postern/pickup", "cannot tell who is calling: {e}");
                return;
            }
        };
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(
            READ_TIMEOUT,
            (&mut stream)
                .take(max_size.saturating_add(1))
                .read_to_end(&mut bytes),
        )
        .await;
        let reply = match read {
            Err(_) => Answer::Deferred("timed out reading the message".to_owned()),
            Ok(Err(e)) => Answer::Deferred(format!("cannot read the message: {e}")),
            Ok(Ok(_)) if bytes == SCAN => {
                scan.notify_one();
                return;
            }
            Ok(Ok(_)) if bytes == Request::Flush.word() => {
                tracing::info!(target: "postern/qmgr", "flush requested by uid={uid}; flushing the queue");
                self.flush();
                Answer::Queued("flushing".to_owned())
            }
            Ok(Ok(_)) if bytes == Request::QueueId.word() => {
                let id = self.new_id();
                reserved.add(id.clone(), uid);
                Answer::Queued(id.to_string())
            }
            Ok(Ok(_)) if bytes == Request::Mailq.word() => {
                // Reading every queue file: off the async threads.
                let queue = Arc::clone(&self);
                let listing = match tokio::task::spawn_blocking(move || queue.list()).await {
                    Ok(Ok(entries)) => crate::mailq::render_list(&entries),
                    Ok(Err(e)) => format!("postern: queue listing failed: {e}\n"),
                    Err(e) => format!("postern: queue listing failed: {e}\n"),
                };
                let _ = tokio::time::timeout(READ_TIMEOUT, async {
                    stream.write_all(listing.as_bytes()).await?;
                    stream.shutdown().await
                })
                .await;
                return;
            }
            Ok(Ok(_)) if bytes.len() as u64 > max_size => Answer::Rejected(format!(
                "the message is larger than the limit of {max_size} bytes"
            )),
            Ok(Ok(_)) => match Submission::decode(&bytes) {
                Err(e) => Answer::Rejected(e),
                Ok(_) if !self.has_room(bytes.len() as u64) => {
                    Answer::Deferred("insufficient system storage".to_owned())
                }
                Ok(s) => {
                    let id = s.queue_id.as_deref().and_then(|i| reserved.take(i, uid));
                    match self.take_submission(s, uid, None, id).await {
                        Ok(id) => Answer::Queued(id.to_string()),
                        Err(e) => Answer::Deferred(e.to_string()),
                    }
                }
            },
        };
        if !matches!(reply, Answer::Queued(_)) {
            tracing::warn!(target: "postern/pickup", "uid={uid}: not queued: {}", reply.line().trim_end());
        }
        answer(stream, reply).await;
    }

    /// Queues a local submission from `uid` (who is calling or owns the
    /// file, whatever the submission says), under `id` (one reserved for
    /// this caller) or a fresh one.
    pub(crate) async fn take_submission(
        &self,
        mut submission: Submission,
        uid: u32,
        arrival: Option<SystemTime>,
        id: Option<QueueId>,
    ) -> Result<QueueId, EnqueueError> {
        submission.uid = uid;
        let id = id.unwrap_or_else(|| self.new_id());
        let mut envelope = local_envelope(&submission, arrival);
        envelope
            .content_filter
            .clone_from(&self.settings().content_filter);
        let content = local_headers(&submission, &self.settings().myhostname.to_string(), &id);
        tracing::info!(target: "postern/pickup", "{id}: uid={uid} from=<{}>", envelope.sender);
        self.enqueue(id.clone(), envelope, content).await?;
        Ok(id)
    }
}
/// Writes `reply` and closes, within [`WRITE_TIMEOUT`].
async fn answer(mut stream: UnixStream, reply: Answer) {
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(reply.line().as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Lets every local user reach the socket and nothing else: the queue
/// directory (when this process owns it) and `public/` searchable by
/// all (`--x`), not listable; every other queue directory stays 0700.
fn open_the_way(queue_directory: &Path, socket: &Path) -> io::Result<()> {
    let euid = rustix::process::geteuid().as_raw();
    let meta = std::fs::metadata(queue_directory)?;
    if meta.uid() == euid {
        let mode = meta.permissions().mode() & 0o7777;
        std::fs::set_permissions(
            queue_directory,
            std::fs::Permissions::from_mode(mode | 0o011),
        )?;
    }
    if let Some(public) = socket.parent() {
        std::fs::create_dir_all(public)?;
        std::fs::set_permissions(public, std::fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::{Address, Recipient, ReversePath};

    use super::*;
    use crate::pickup::{ask, drop_file, notify, submit};

    fn submission(content: &[u8]) -> Submission {
        Submission {
            uid: 0,
            sender: ReversePath::Address(Address::parse("alice@mx.example.org").unwrap()),
            full_name: None,
            recipients: vec![Recipient::new(Address::parse("bob@example.org").unwrap())],
            content: content.to_vec(),
            notify: None,
            ret: None,
            envid: None,
            queue_id: None,
            helo: None,
        }
    }

    #[tokio::test]
    async fn dropped_files_are_queued_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let s = submission(b"Subject: hi\r\n\r\nbody\r\n");
        // Dropped before the daemon runs: picked up at start.
        let path = drop_file(dir.path(), &s).unwrap();
        assert!(!notify(dir.path()).unwrap());
        let maildrop = maildrop_dir(dir.path());
        let mode = std::fs::metadata(&maildrop).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o1733);
        let file_mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(file_mode & 0o777, 0o600);
        std::fs::write(maildrop.join("junk"), b"junk").unwrap();
        // Cut short, a link, a FIFO: each moved aside, none followed or
        // waited on.
        let cut = drop_file(dir.path(), &s).unwrap();
        let bytes = std::fs::read(&cut).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", maildrop.join("link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            maildrop.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let q = Arc::new(Queue::open(dir.path()).unwrap());
        let (stop, shutdown) = watch::channel(false);
        let task = Arc::clone(&q)
            .start_pickup(Arc::new(AtomicU64::new(1_000_000)), shutdown)
            .unwrap();
        let second = drop_file(dir.path(), &s).unwrap();
        let d = dir.path().to_owned();
        assert!(
            tokio::task::spawn_blocking(move || notify(&d))
                .await
                .unwrap()
                .unwrap()
        );
        for _ in 0..200 {
            if !path.exists() && !second.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!path.exists() && !second.exists());
        assert_eq!(q.list().unwrap().len(), 2);
        let corrupt = std::fs::read_dir(dir.path().join("corrupt"))
            .unwrap()
            .count();
        assert_eq!(corrupt, 4);
        assert_eq!(std::fs::read_dir(&maildrop).unwrap().count(), 0);
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_socket_queues_and_answers() {
        let dir = tempfile::tempdir().unwrap();
        let q = Arc::new(Queue::open(dir.path()).unwrap());
        let (stop, shutdown) = watch::channel(false);
        let limit = Arc::new(AtomicU64::new(1000));
        let task = Arc::clone(&q)
            .start_pickup(Arc::clone(&limit), shutdown)
            .unwrap();
        let socket = socket_path(dir.path());
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666);
        let d = dir.path().to_owned();
        let answers = tokio::task::spawn_blocking(move || {
            let ok = submit(&d, &submission(b"Subject: hi\r\n\r\nbody\r\n")).unwrap();
            let big = submit(&d, &submission(&[b'x'; 300_000])).unwrap();
            // A reload raised the limit: the same message goes in.
            limit.store(1_000_000, Ordering::Relaxed);
            let raised = submit(&d, &submission(&[b'x'; 300_000])).unwrap();
            // Garbage gets an answer too, and nothing is queued for it.
            let mut raw = UnixStreamStd::connect(socket_path(&d)).unwrap();
            raw.write_all(b"POSTERN-MAILDROP 1\nevil: 1\n\nx").unwrap();
            raw.shutdown(std::net::Shutdown::Write).unwrap();
            let mut garbage = String::new();
            raw.read_to_string(&mut garbage).unwrap();
            let listing = ask(&d, Request::Mailq).unwrap();
            let flush = ask(&d, Request::Flush).unwrap();
            // A reserved id is the one queued under; an id not reserved
            // is not.
            let reserved = crate::pickup::reserve_id(&d).unwrap().unwrap();
            let mut bs = submission(b"Subject: bs\r\n\r\nx\r\n");
            bs.queue_id = Some(reserved.clone());
            assert_eq!(submit(&d, &bs).unwrap(), Answer::Queued(reserved.clone()));
            let again = submit(&d, &bs).unwrap();
            assert!(
                !matches!(&again, Answer::Queued(id) if *id == reserved),
                "{again:?}"
            );
            (ok, big, garbage, listing, flush, raised)
        })
        .await
        .unwrap();
        let Answer::Queued(id) = &answers.0 else {
            panic!("{answers:?}")
        };
        assert!(matches!(answers.1, Answer::Rejected(_)), "{answers:?}");
        assert!(answers.2.starts_with("reject "), "{answers:?}");
        assert!(matches!(answers.5, Answer::Queued(_)), "{answers:?}");
        let mut queued = q.list().unwrap();
        assert_eq!(queued.len(), 4);
        queued.truncate(1);
        assert_eq!(queued[0].id.to_string(), *id);
        let listing = String::from_utf8(answers.3).unwrap();
        assert!(listing.contains(id.as_str()), "{listing}");
        assert!(listing.contains("bob@example.org"), "{listing}");
        assert!(answers.4.starts_with(b"ok "));
        stop.send(true).unwrap();
        task.await.unwrap();
        assert!(!socket.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_beyond_the_cap_are_told_to_wait() {
        let dir = tempfile::tempdir().unwrap();
        let q = Arc::new(Queue::open(dir.path()).unwrap());
        let (stop, shutdown) = watch::channel(false);
        let task = Arc::clone(&q)
            .start_pickup(Arc::new(AtomicU64::new(1000)), shutdown)
            .unwrap();
        let d = dir.path().to_owned();
        let (busy, after) = tokio::task::spawn_blocking(move || {
            // Callers that connect and say nothing hold every slot...
            let idle: Vec<UnixStreamStd> = (0..MAX_CLIENTS)
                .map(|_| UnixStreamStd::connect(socket_path(&d)).unwrap())
                .collect();
            std::thread::sleep(Duration::from_millis(200));
            let busy = submit(&d, &submission(b"Subject: a\r\n\r\nx\r\n")).unwrap();
            // ... until they go.
            drop(idle);
            std::thread::sleep(Duration::from_millis(200));
            let after = submit(&d, &submission(b"Subject: b\r\n\r\nx\r\n")).unwrap();
            (busy, after)
        })
        .await
        .unwrap();
        assert!(
            matches!(&busy, Answer::Deferred(t) if t.contains("too many")),
            "{busy:?}"
        );
        assert!(matches!(after, Answer::Queued(_)), "{after:?}");
        assert_eq!(q.list().unwrap().len(), 1);
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream as UnixStreamStd;
}
