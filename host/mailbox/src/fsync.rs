//! When the store fsyncs: Dovecot's `mail_fsync` setting, with its names
//! and its default.
//!
//! - `optimized` (the default): a message is on disk, file and directory
//!   entry, before it is acknowledged, and so is every UID given out
//!   (`dovecot-uidlist` is fsynced whenever it assigns UIDs). Flag renames,
//!   expunges, the \Recent claim and the MODSEQs of `postern-state` are not
//!   fsynced: a crash may lose the last flag changes, never a message, and
//!   never makes a UID name a second message. MODSEQs stay monotonic across
//!   such a crash because `postern-state` records the boot it was written
//!   in: a state written in an earlier boot may be older than what clients
//!   were told, so its MODSEQ base is raised past anything it could have
//!   handed out (see [`crate::state`]).
//! - `always`: the MODSEQ state is fsynced at every change too.
//! - `never`: nothing is fsynced, not even messages (tests, throw-away
//!   mail); as Dovecot's `never`, for filesystems that are not expected to
//!   survive a crash anyway.
//!
//! The mode is one setting for the whole process, set once at start-up by
//! the daemon ([`set_mode`]), as Dovecot reads it once per process.
//!
//! Deliveries into one Maildir at the same time share the fsync of its
//! `new/` (`dir_shared`): one delivery at a time fsyncs the directory for
//! every delivery that linked its file in before that fsync began, and the
//! others wait for it (group commit, as the queue does for `active/`).
//!
//! Their files' own syncs are shared too (`file_shared`): each delivery
//! starts its file's writeback, one delivery at a time fsyncs `tmp/` for
//! all that did (on a journaling file system that commits the running
//! transaction, which holds every such file's blocks), and each then
//! `fdatasync`s its own file, which finds nothing left to commit there and
//! is what makes it durable on any file system. Dovecot's maildir-save
//! also makes a message durable with `fdatasync`.
//!
//! Unlike the queue, which moves its file into `active/` first and then
//! flushes file and directory together (one journal commit per batch,
//! `host/queue/src/commit.rs`), a delivery keeps the Maildir order: the
//! file is fsynced before its name appears in `new/`. A Maildir is read by
//! others (IMAP, POP3, Dovecot, mutt), and a power cut between the name
//! and the data would show them a cut message; the queue can move such a
//! file aside at start-up because nothing but Postern reads the queue.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use postern_mail::GroupCommit;

/// Dovecot's `mail_fsync` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Messages and UIDs durable; flags and MODSEQs not fsynced.
    #[default]
    Optimized,
    /// Every change fsynced.
    Always,
    /// Nothing fsynced.
    Never,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "optimized" => Ok(Mode::Optimized),
            "always" => Ok(Mode::Always),
            "never" => Ok(Mode::Never),
            other => Err(format!(
                "mail_fsync: {other:?} is not one of optimized, always, never"
            )),
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Sets the process's mode (the daemon, at start-up and reload).
pub fn set_mode(mode: Mode) {
    let n = match mode {
        Mode::Optimized => 0,
        Mode::Always => 1,
        Mode::Never => 2,
    };
    MODE.store(n, Ordering::Relaxed);
}

/// The process's mode.
pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Always,
        2 => Mode::Never,
        _ => Mode::Optimized,
    }
}

/// Whether messages and UID assignments are fsynced.
pub(crate) fn messages() -> bool {
    mode() != Mode::Never
}

/// Whether flag and MODSEQ state is fsynced. Without a boot id to detect
/// a crash by, `optimized` falls back to fsyncing it.
pub(crate) fn state() -> bool {
    match mode() {
        Mode::Always => true,
        Mode::Never => false,
        Mode::Optimized => boot_id().is_none(),
    }
}

/// Fsyncs `file` unless the mode is `never`.
pub(crate) fn file(file: &File) -> io::Result<()> {
    if messages() { file.sync_all() } else { Ok(()) }
}

/// Fsyncs the directory `dir` (its entries) unless the mode is `never`.
pub(crate) fn dir(dir: &Path) -> io::Result<()> {
    if messages() {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

/// Like [`dir`], but the fsync is shared with the concurrent callers for
/// the same directory: it returns once an fsync of `dir` that began after
/// this call was made has ended, so every entry the caller made in `dir`
/// before calling is on disk; that fsync's error if it failed. Blocking.
pub(crate) fn dir_shared(dir: &Path) -> io::Result<()> {
    if !messages() {
        return Ok(());
    }
    with_group(dir, |group| group.run(|_| File::open(dir)?.sync_all()))
}

/// Makes `file`, written in full in the directory `dir`, durable (its
/// data and size) unless the mode is `never`, sharing the journal commit
/// with concurrent callers for the same directory: starts the file's
/// writeback, joins a shared fsync of `dir` begun after that, then
/// `fdatasync`s the file. The directory fsync is only the vehicle of the
/// shared commit (its entries need not be durable); the `fdatasync` is
/// what the durability rests on, on any file system. A caller alone
/// (nothing in flight for `dir`) only `fdatasync`s. Blocking.
pub(crate) fn file_shared(file: &File, dir: &Path) -> io::Result<()> {
    if !messages() {
        return Ok(());
    }
    with_group(dir, |group| {
        if group.is_idle() {
            return file.sync_data();
        }
        // `POSIX_FADV_DONTNEED` starts writing the dirty pages back at once
        // (their blocks are allocated in the running transaction, which the
        // directory fsync then commits); only a hint, its error changes
        // nothing: the fdatasync below writes whatever it did not.
        let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
        group.run(|_| File::open(dir)?.sync_all())?;
        file.sync_data()
    })
}

/// Runs `f` with the [`GroupCommit`] of `dir`, shared by every caller for
/// `dir` at the same time.
fn with_group(dir: &Path, f: impl FnOnce(&GroupCommit) -> io::Result<()>) -> io::Result<()> {
    static SHARED: OnceLock<Mutex<HashMap<PathBuf, Arc<GroupCommit>>>> = OnceLock::new();
    let map = SHARED.get_or_init(Mutex::default);
    let shared = Arc::clone(lock(map).entry(dir.to_owned()).or_default());
    let result = f(&shared);
    let mut map = lock(map);
    // Forgotten when nobody else uses it: one entry per directory being
    // delivered to right now, not per directory ever delivered to.
    if Arc::strong_count(&shared) == 2 {
        map.remove(dir);
    }
    result
}

/// Locks, whatever a panicking holder left: every update under these
/// locks is a single step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This boot of the machine (Linux's `boot_id`, a UUID that changes at
/// every boot), `None` where there is none. What was written without an
/// fsync survives a crash of the process (the page cache keeps it) but
/// maybe not one of the machine, which is always a new boot.
pub fn boot_id() -> Option<&'static str> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
    })
    .as_deref()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_dovecot_names() {
        assert_eq!("optimized".parse::<Mode>().unwrap(), Mode::Optimized);
        assert_eq!("always".parse::<Mode>().unwrap(), Mode::Always);
        assert_eq!("never".parse::<Mode>().unwrap(), Mode::Never);
        assert!("sometimes".parse::<Mode>().is_err());
        assert_eq!(Mode::default(), Mode::Optimized);
    }

    #[test]
    fn concurrent_deliveries_share_the_fsync_of_new() {
        use std::sync::atomic::AtomicUsize;
        let shared = Arc::new(GroupCommit::default());
        let fsyncs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (shared, fsyncs) = (Arc::clone(&shared), Arc::clone(&fsyncs));
                std::thread::spawn(move || {
                    for i in 0..40 {
                        let r = shared.run(|_| {
                            fsyncs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            // Every third batch fails: its members all see it.
                            match (t + i) % 3 {
                                0 => Err(io::Error::other("no space")),
                                _ => Ok(()),
                            }
                        });
                        if let Err(e) = r {
                            assert_eq!(e.to_string(), "no space");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(fsyncs.load(Ordering::SeqCst) < 320);
        assert!(shared.is_idle());
    }

    #[test]
    fn a_shared_fsync_of_a_real_directory() {
        let dir = std::env::temp_dir();
        dir_shared(&dir).unwrap();
        assert!(dir_shared(&dir.join("postern-no-such-dir")).is_err());
    }

    #[test]
    fn concurrent_file_syncs_of_real_files() {
        use std::io::Write;
        let root = tempfile::tempdir().unwrap();
        let dir = Arc::new(root.path().to_path_buf());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let dir = Arc::clone(&dir);
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let path = dir.join(format!("{t}.{i}"));
                        let mut file = File::create_new(&path).unwrap();
                        file.write_all(format!("{t}/{i}").as_bytes()).unwrap();
                        file_shared(&file, &dir).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for t in 0..8 {
            for i in 0..20 {
                let body = std::fs::read_to_string(dir.join(format!("{t}.{i}"))).unwrap();
                assert_eq!(body, format!("{t}/{i}"));
            }
        }
        // Alone afterwards: a plain fdatasync.
        let idle = File::create_new(dir.join("alone")).unwrap();
        file_shared(&idle, &dir).unwrap();
    }

    #[test]
    fn this_machine_has_a_boot_id() {
        // Linux: the state relies on it to see a crash.
        let id = boot_id().unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }
}
