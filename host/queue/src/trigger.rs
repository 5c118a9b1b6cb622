//! Waking the running daemon from another process (Postfix's `public/qmgr`
//! fifo): a Unix datagram socket at `QUEUE_DIRECTORY/public/qmgr`. The
//! daemon binds it; `postern flush`, `queue release` and `queue requeue`
//! send one datagram, and the delivery loop rescans the queue directory
//! and tries every deferred message now ([`Queue::flush`]). Without a
//! running daemon the datagram has nowhere to go, and the next start
//! picks the files up anyway.
//!
//! The socket lives in the 0700 queue directory's `public/` (0700 too):
//! only the queue's owner can reach it. A datagram's content is not
//! interpreted beyond its first word, so nothing a sender writes can do
//! more than a flush.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixDatagram;
use tokio::sync::watch;

use crate::queue::Queue;

/// The socket under `queue_directory`.
pub fn socket_path(queue_directory: &Path) -> PathBuf {
    queue_directory.join("public/qmgr")
}

impl Queue {
    /// Binds the trigger socket (replacing a stale one from a previous
    /// run) and flushes the queue for every datagram until `shutdown`.
    /// Must run inside a tokio runtime.
    pub fn listen_triggers(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<tokio::task::JoinHandle<()>> {
        let path = socket_path(self.dir());
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let socket = UnixDatagram::bind(&path)?;
        Ok(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                tokio::select! {
                    got = socket.recv(&mut buf) => match got {
                        Ok(n) => {
                            let word = String::from_utf8_lossy(&buf[..n]);
                            tracing::info!(target: "postern/qmgr", "trigger: {}; flushing the queue", word.trim());
                            self.flush();
                        }
                        Err(e) => {
                            tracing::warn!(target: "postern/qmgr", "{}: {e}", path.display());
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    },
                    _ = shutdown.changed() => break,
                }
            }
            let _ = std::fs::remove_file(&path);
        }))
    }
}

/// Sends `word` (`flush`, `release`, `requeue`) to the daemon of
/// `queue_directory`. `Ok(false)` when no daemon listens.
pub fn send(queue_directory: &Path, word: &str) -> io::Result<bool> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    match socket.send_to(word.as_bytes(), socket_path(queue_directory)) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_datagram_flushes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!send(dir.path(), "flush").unwrap());
        let q = Arc::new(Queue::open(dir.path()).unwrap());
        let (stop, shutdown) = watch::channel(false);
        let task = Arc::clone(&q).listen_triggers(shutdown).unwrap();
        assert!(send(dir.path(), "flush").unwrap());
        let mut flushed = false;
        for _ in 0..200 {
            if q.flush_requested.load(Ordering::SeqCst) {
                flushed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(flushed);
        stop.send(true).unwrap();
        task.await.unwrap();
        assert!(!socket_path(dir.path()).exists());
    }
}
