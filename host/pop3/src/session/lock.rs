//! One POP3 session per mailbox at a time (RFC 1939 §8: the server
//! acquires an exclusive-access lock on the maildrop). The lock is held in
//! the daemon's memory: every POP3 session of this server sees it, and it
//! cannot outlive the process that took it, as a stale lock file could.

use std::collections::HashSet;
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
        })
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
}
