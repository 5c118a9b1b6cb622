//! Group commit: concurrent SMTP sessions share one flush of the queue
//! before their 250s, one journal commit per batch rather than two in a
//! row per message.
//!
//! A message is acknowledged only when its queue file and the file's
//! directory entry are on disk (DESIGN.md §7). [`GroupSync::commit`] is
//! called once the file is written in full and moved (renamed or linked)
//! into `active/` (or `hold/`), and returns when both are durable:
//!
//! 1. a hint that starts the file's writeback now (`posix_fadvise`
//!    `DONTNEED`), so that its blocks are allocated before step 2;
//! 2. an fsync of the directory, shared: one caller at a time runs it for
//!    every caller that moved its file in before it began, the others
//!    wait for its result (leader and followers, as databases commit their
//!    logs; [`postern_mail::group_commit`] says why a follower may go on);
//! 3. the caller's own `fdatasync` of its file.
//!
//! A caller that finds no flush in flight and nobody waiting (one session
//! alone) runs step 3 first, then step 2: its fdatasync commits the move
//! with the data, and the directory fsync then finds nothing left to
//! commit. Either order makes the same two syncs, so the argument below
//! holds for both.
//!
//! # Why this is enough (the durability argument)
//!
//! What POSIX promises: `fdatasync(2)` returns once the file's data, and
//! the metadata needed to read it back (its size), are on the storage
//! device; it says nothing of the name under which the file is found.
//! Linux's fsync(2) adds that the directory entry needs an fsync of the
//! directory, and that one makes every entry made in the directory before
//! the call durable. Steps 2 and 3 are exactly those two, each begun after
//! what it must cover (the move before step 2, the last write before step
//! 3), and a 250 waits for both to succeed: on any file system that keeps
//! the fsync contract the acknowledged message is on disk, file and name.
//! POSIX does not promise that the two fsyncs are ordered between
//! themselves, and they need not be: the message counts only once both
//! returned. The hint of step 1 is no part of the argument: ignored, the
//! fdatasync of step 3 writes what step 1 would have started. Errors reach
//! the caller they concern: the directory fsync's error is every member's
//! ([`postern_mail::group_commit`]), and a failed writeback of the file,
//! whoever started it, is reported by the caller's own fdatasync (Linux
//! records it against every descriptor open at the time, since 4.13).
//!
//! What is weaker than before: the file is moved into `active/` before
//! it is durable, so a power cut before step 3 may leave an entry whose
//! data is short or missing, or has a block of zeros inside (writeback
//! keeps no order among the file's blocks). That message was never
//! acknowledged, and start-up recovery moves such a file to `corrupt/`
//! instead of delivering it (recovery.rs; a hole is told by the file's
//! checksum, format.rs). A crash of the process alone loses nothing
//! of the page cache: the whole file is then delivered, a duplicate at
//! worst, as the client saw no 250 and sends again.
//!
//! # Why this is fast on Linux
//!
//! On ext4 (and the other journaling file systems) an fsync waits for a
//! journal commit, and commits run one at a time. Before, a 250 waited for
//! two in a row: the file's fsync, then (after the move) the directory's.
//! Now the writeback of step 1 puts the file's block allocation into the
//! running transaction beside its directory entry; the directory fsync of
//! step 2 commits that transaction (ext4 commits the whole running
//! transaction for a directory fsync), which covers the inode, its blocks,
//! its size and its entry, for every member of the batch; and the
//! fdatasync of step 3 then finds its transaction committed and only
//! flushes the device's cache (concurrent flushes are merged by the block
//! layer). One commit per batch instead of about 1.6 (bench/README.md).
//!
//! Tried and not kept (bench/README.md has the figures): one syncfs(2)
//! per batch, each member only writing its file (as many journal commits
//! per message as this, since Linux's `sync_filesystem` commits twice,
//! before and after waiting for the data; but a 250 would then wait for
//! whatever else is dirty on the file system, however much, and before
//! Linux 5.8 syncfs reported no writeback error at all); writing the file
//! with `O_DIRECT` so that no writeback is left (a synchronous device
//! write per session, and a read of the last block to cut its padding
//! off: slower than the hint); `sync_file_range(2)` to start and wait for
//! the writeback (the same commits as the hint, but no safe binding: the
//! workspace forbids `unsafe`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use postern_mail::GroupCommit;

use crate::spool::sync_dir;

/// One directory's shared flush. Blocking: call it on a blocking thread.
#[derive(Debug)]
pub(crate) struct GroupSync {
    dir: PathBuf,
    group: GroupCommit,
}

impl GroupSync {
    /// The shared flush of directory `dir`.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> GroupSync {
        GroupSync {
            dir: dir.into(),
            group: GroupCommit::default(),
        }
    }

    /// Makes `file`, written in full and moved into this directory before
    /// the call, durable with its entry (steps 1 to 3 above). Its error if
    /// either sync failed: the message must then not be acknowledged.
    pub(crate) fn commit(&self, file: &File) -> io::Result<()> {
        self.commit_with(file, sync_dir)
    }

    /// [`GroupSync::commit`] with the directory fsync given (tests watch
    /// and fail it).
    fn commit_with(
        &self,
        file: &File,
        fsync_dir: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let fsync_dir = |members: usize| counted(members, fsync_dir(&self.dir));
        if self.group.is_idle() {
            // Alone: the file's fdatasync commits the move along with the
            // data, and the directory fsync then finds the journal clean
            // (one commit, where the order below may take two when the
            // writeback ends after the directory's commit began).
            file.sync_data()?;
            return self.group.run(fsync_dir);
        }
        start_writeback(file);
        self.group.run(fsync_dir)?;
        file.sync_data()
    }
}

/// Counts one shared flush of `members` callers, whatever its `result`.
fn counted(members: usize, result: io::Result<()>) -> io::Result<()> {
    metrics::counter!("postern_queue_group_syncs_total").increment(1);
    metrics::counter!("postern_queue_group_sync_members_total").increment(members as u64);
    result
}

/// Starts the writeback of `file`'s dirty pages without waiting for it:
/// `POSIX_FADV_DONTNEED` writes dirty pages back (Linux starts the I/O at
/// once) and then drops the clean ones; the pages it has just sent to the
/// disk are still under writeback, so they stay cached for the delivery
/// that reads the file next. Only a hint: its error changes nothing.
fn start_writeback(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Writes `name` in `dir` in full, as the spool does before `commit`.
    fn written(dir: &Path, name: &str) -> File {
        let mut file = File::create_new(dir.join(name)).unwrap();
        file.write_all(name.repeat(100).as_bytes()).unwrap();
        file
    }

    #[test]
    fn a_lone_caller_commits_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let group = GroupSync::new(dir.path());
        group.commit(&written(dir.path(), "a")).unwrap();
        group.commit(&written(dir.path(), "b")).unwrap();
        let missing = GroupSync::new(dir.path().join("missing"));
        assert!(missing.commit(&written(dir.path(), "c")).is_err());
    }

    /// What a flush saw: when it began and ended on the test's clock, and
    /// the directory's entries when it began.
    struct Flush {
        start: usize,
        end: usize,
        entries: HashSet<String>,
    }

    #[test]
    fn every_entry_is_in_place_before_a_flush_that_ends_before_its_caller_goes_on() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let group = Arc::new(GroupSync::new(dir.path()));
        // One clock for writes, flushes and returns.
        let clock = Arc::new(AtomicUsize::new(0));
        let flushes = Arc::new(Mutex::new(Vec::<Flush>::new()));
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let (dir, group, clock, flushes) = (
                    Arc::clone(&dir),
                    Arc::clone(&group),
                    Arc::clone(&clock),
                    Arc::clone(&flushes),
                );
                std::thread::spawn(move || {
                    for i in 0..30 {
                        let name = format!("{t}-{i}");
                        let file = written(dir.path(), &name);
                        let linked = clock.fetch_add(1, Ordering::SeqCst);
                        group
                            .commit_with(&file, |d| {
                                let start = clock.fetch_add(1, Ordering::SeqCst);
                                let entries = std::fs::read_dir(d)
                                    .unwrap()
                                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                                    .collect();
                                File::open(d)?.sync_all()?;
                                std::thread::sleep(Duration::from_millis(1));
                                let end = clock.fetch_add(1, Ordering::SeqCst);
                                flushes.lock().unwrap().push(Flush {
                                    start,
                                    end,
                                    entries,
                                });
                                Ok(())
                            })
                            .unwrap();
                        let returned = clock.fetch_add(1, Ordering::SeqCst);
                        let covered = flushes.lock().unwrap().iter().any(|f| {
                            f.start > linked && f.end < returned && f.entries.contains(&name)
                        });
                        assert!(covered, "{name}: no flush between {linked} and {returned}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = flushes.lock().unwrap().len();
        assert!(n < 480, "{n} flushes for 480 commits: nothing shared");
        assert!(group.group.is_idle());
    }

    #[test]
    fn an_error_reaches_every_member_of_its_batch() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let group = Arc::new(GroupSync::new(dir.path()));
        let failed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (dir, group, failed) =
                    (Arc::clone(&dir), Arc::clone(&group), Arc::clone(&failed));
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let file = written(dir.path(), &format!("{t}-{i}"));
                        let r = group.commit_with(&file, |_| {
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
