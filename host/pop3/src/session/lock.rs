//! One POP3 session per mailbox at a time (RFC 1939 §8: the server
//! acquires an exclusive-access lock on the maildrop). The lock is held in
//! the daemon's memory, and as an flock(2) on [`LOCK_FILE`] in the Maildir,
//! which the sessions that run in a process of the mailbox's owner see as
//! well (a table in one process would not). Neither can outlive the
//! process that took it, as a stale lock file's mere presence could: the
//! kernel drops an flock with its holder.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The mailboxes with a POP3 session.
#[derive(Debug, Default)]
pub struct Locks {
    held: Mutex<HashSet<PathBuf>>,
}

/// A held lock; dropping it releases the mailbox.
#[derive(Debug)]
pub struct Guard {
    locks: Arc<Locks>,
    path: PathBuf,
    /// The flock on [`LOCK_FILE`], released on drop as well.
    file: Option<File>,
}

/// The file in a Maildir whose flock(2) is the POP3 session's lock
/// (Dovecot's `pop3_lock_session` uses a file beside the Maildir, too).
pub const LOCK_FILE: &str = "postern-pop3.lock";

/// Takes the flock of `maildir`'s [`LOCK_FILE`], made if missing: `None`
/// when another session, in any process, holds it. Blocking.
pub fn lock_file(maildir: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(maildir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

impl Locks {
    /// An empty set.
    pub fn new() -> Locks {
        Locks::default()
    }

    /// Locks `path` unless another session holds it.
    pub fn try_lock(self: &Arc<Locks>, path: &Path) -> Option<Guard> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(path.to_owned()).then(|| Guard {
            locks: Arc::clone(self),
            path: path.to_owned(),
            file: None,
        })
    }
}

impl Guard {
    /// Holds `file`'s flock (from [`lock_file`]) until this is dropped.
    pub fn hold(&mut self, file: File) {
        self.file = Some(file);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.path);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_until_dropped() {
        let locks = Arc::new(Locks::new());
        let a = locks.try_lock(Path::new("/m/alice")).unwrap();
        assert!(locks.try_lock(Path::new("/m/alice")).is_none());
        let _b = locks.try_lock(Path::new("/m/bob")).unwrap();
        drop(a);
        assert!(locks.try_lock(Path::new("/m/alice")).is_some());
    }

    #[test]
    fn the_file_lock_is_exclusive_across_opens_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_file(dir.path()).unwrap().unwrap();
        // Another open file description, as another process has.
        assert!(lock_file(dir.path()).unwrap().is_none());
        drop(first);
        assert!(lock_file(dir.path()).unwrap().is_some());
        assert!(lock_file(&dir.path().join("missing")).is_err());
    }
}
