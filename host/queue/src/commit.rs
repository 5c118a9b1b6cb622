//! Group commit: concurrent SMTP sessions share one fsync of a queue
//! directory before their 250s.
//!
//! A message is acknowledged only when its queue file and the file's
//! directory entry are on disk (DESIGN.md §7). The file is each session's
//! own and is fsynced by that session, on its own blocking thread, so that
//! concurrent fsyncs of files go to the disk together (ext4 folds them into
//! one journal commit). The directory is the same for every session:
//! rather than one fsync of `active/` per message, one session at a time
//! fsyncs it for every session that linked its file in before that fsync
//! began, and the others wait for it (leader and followers, as databases
//! commit their logs). At 20 concurrent sessions that is one directory
//! fsync per batch of messages instead of one per message, the difference
//! between Postfix's rate and a multiple of it (docs/BENCHMARKS.md).
//!
//! Why a waiter may answer 250 after an fsync it did not start: see
//! [`postern_mail::group_commit`].
//!
//! Tried and not kept (bench/README.md has the figures): one syncfs(2)
//! per batch instead of the file fsyncs (about 10% more messages a second,
//! but the file must then be linked into `active/` before it is on disk,
//! so a power cut can leave an empty, never acknowledged file there, and
//! it flushes whatever else is dirty on the filesystem); linking before
//! the file's fsync (no measurable gain: the other sessions' links dirty
//! `active/` again before its fsync anyway).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use postern_mail::GroupCommit;

/// One directory's shared fsync. Blocking: call it on a blocking thread.
#[derive(Debug)]
pub(crate) struct GroupSync {
    dir: PathBuf,
    group: GroupCommit,
}

impl GroupSync {
    /// The shared fsync of directory `dir`.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> GroupSync {
        GroupSync {
            dir: dir.into(),
            group: GroupCommit::default(),
        }
    }

    /// Returns once an fsync of the directory that began after this call
    /// was made has ended: every entry the caller made in the directory
    /// before calling is then on disk. Its error if it failed.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.sync_with(|dir| File::open(dir)?.sync_all())
    }

    /// [`GroupSync::sync`] with the fsync given (tests count and fail it).
    fn sync_with(&self, fsync: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
        self.group.run(|members| {
            let result = fsync(&self.dir);
            metrics::counter!("postern_queue_group_syncs_total").increment(1);
            metrics::counter!("postern_queue_group_sync_members_total").increment(members as u64);
            result
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_lone_caller_syncs_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let group = GroupSync::new(dir.path());
        group.sync().unwrap();
        group.sync().unwrap();
        assert!(GroupSync::new(dir.path().join("missing")).sync().is_err());
    }

    #[test]
    fn every_caller_is_covered_by_an_fsync_that_began_after_it() {
        let group = Arc::new(GroupSync::new("/nonexistent"));
        // One clock for calls and fsyncs; each fsync logged as (start, end).
        let clock = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, clock, log) =
                    (Arc::clone(&group), Arc::clone(&clock), Arc::clone(&log));
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let called = clock.fetch_add(1, Ordering::SeqCst);
                        group
                            .sync_with(|_| {
                                let start = clock.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(2));
                                let end = clock.fetch_add(1, Ordering::SeqCst);
                                log.lock().unwrap().push((start, end));
                                Ok(())
                            })
                            .unwrap();
                        let returned = clock.fetch_add(1, Ordering::SeqCst);
                        let covered = log
                            .lock()
                            .unwrap()
                            .iter()
                            .any(|&(s, e)| s > called && e < returned);
                        assert!(covered, "call at {called} returned at {returned} uncovered");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = log.lock().unwrap().len();
        assert!(n < 800, "{n} fsyncs for 800 calls: nothing shared");
        assert!(group.group.is_idle());
    }

    #[test]
    fn an_error_reaches_every_member_of_its_batch() {
        let group = Arc::new(GroupSync::new("/nonexistent"));
        let failed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (group, failed) = (Arc::clone(&group), Arc::clone(&failed));
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let r = group.sync_with(|_| {
                            std::thread::sleep(Duration::from_millis(1));
                            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
                        });
                        let e = r.unwrap_err();
                        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                        assert!(e.to_string().contains("disk full"));
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(failed.load(Ordering::SeqCst), 160);
        assert!(group.group.is_idle());
    }
}
