//! The UID list beside a Maildir, in Dovecot's `dovecot-uidlist` format
//! (version 3), so that Dovecot and Postern agree on every UID:
//!
//! ```text
//! 3 V1700000000 N4
//! 1 :1700000000.M1P2Q1.host,S=120
//! 3 W300 :1700000005.M9P2Q2.host,S=290
//! ```
//!
//! The header holds UIDVALIDITY (`V`) and the next UID (`N`); each line a
//! UID, optional fields, and the file's base name after ` :`. Version 1
//! files (`1 <validity> <next>`, `<uid> <name>`) are read too.
//!
//! Writers hold Dovecot's dotlock, `dovecot-uidlist.lock`, created with
//! `O_EXCL`: the new list is written into the lock file itself, fsynced and
//! renamed over the list, which both publishes it atomically and releases
//! the lock. A lock older than [`STALE`] is a crashed writer's and is
//! broken, as Dovecot does. A lock that one of our own processes left when
//! it died (a server killed in the middle of an APPEND) is broken at once
//! instead of after [`STALE`]: our writers hold an `flock` on the lock
//! file for as long as they hold it, which the kernel drops with the
//! process, so a lock with no `flock` that was made before this process
//! first locked anything has no living writer of ours.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The list's file name, Dovecot's.
pub const FILE: &str = "dovecot-uidlist";
/// The dotlock's.
pub const LOCK: &str = "dovecot-uidlist.lock";
/// A lock this old was left by a writer that died (Dovecot: 2 minutes).
pub const STALE: Duration = Duration::from_secs(120);
/// How long to wait for another writer before giving up.
const WAIT: Duration = Duration::from_secs(30);

/// The parsed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    /// UIDVALIDITY (RFC 3501 §2.3.1.1).
    pub validity: u32,
    /// The next UID to assign.
    pub next: u32,
    /// UID and base name, ascending by UID.
    pub entries: Vec<(u32, String)>,
}

impl UidList {
    /// A fresh list: a new UIDVALIDITY from the clock, so that a list
    /// rebuilt after a loss tells clients to forget their cached UIDs.
    pub fn fresh() -> UidList {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        UidList {
            validity: u32::try_from(now).unwrap_or(u32::MAX).max(1),
            next: 1,
            entries: Vec::new(),
        }
    }

    /// Parses a list; `None` if the text is not one (then it is rebuilt).
    pub fn parse(text: &str) -> Option<UidList> {
        let mut lines = text.lines();
        let header = lines.next()?;
        let mut fields = header.split(' ');
        let version = fields.next()?;
        let (mut validity, mut next) = (0u32, 0u32);
        match version {
            "1" => {
                validity = fields.next()?.parse().ok()?;
                next = fields.next()?.parse().ok()?;
            }
            "3" => {
                for f in fields {
                    if let Some(v) = f.strip_prefix('V') {
                        validity = v.parse().ok()?;
                    } else if let Some(n) = f.strip_prefix('N') {
                        next = n.parse().ok()?;
                    }
                }
            }
            _ => return None,
        }
        if validity == 0 || next == 0 {
            return None;
        }
        let mut entries = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (uid, rest) = line.split_once(' ')?;
            let uid: u32 = uid.parse().ok()?;
            let name = if version == "1" {
                rest
            } else {
                match rest.strip_prefix(':') {
                    Some(name) => name,
                    None => rest.split_once(" :")?.1,
                }
            };
            if uid == 0 || entries.last().is_some_and(|(u, _)| *u >= uid) {
                return None;
            }
            // Dovecot appends the lines of new messages without rewriting
            // the header, so `N` may lag behind the last line (dovecot-lda
            // after an APPEND leaves `N5` above a line `5`): the next UID
            // is past every listed one, as Dovecot reads it.
            next = next.max(uid.saturating_add(1));
            entries.push((uid, crate::reader::base_name(name).to_owned()));
        }
        Some(UidList {
            validity,
            next,
            entries,
        })
    }

    /// The text of the list.
    pub fn render(&self) -> String {
        let mut out = format!("3 V{} N{}\n", self.validity, self.next);
        for (uid, name) in &self.entries {
            out.push_str(&format!("{uid} :{name}\n"));
        }
        out
    }
}

/// Reads the list in `dir`: `Ok(None)` if there is none or it is damaged.
pub fn read(dir: &Path) -> io::Result<Option<UidList>> {
    match fs::read_to_string(dir.join(FILE)) {
        Ok(text) => Ok(UidList::parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(e),
    }
}

/// The held dotlock. Dropping it without [`Lock::commit`] releases it
/// and leaves the list as it was.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    file: Option<File>,
    dir: PathBuf,
}

impl Lock {
    /// Takes the lock of the list in `dir`, waiting for another writer
    /// and breaking a stale lock.
    pub fn acquire(dir: &Path) -> io::Result<Lock> {
        let path = dir.join(LOCK);
        first_lock();
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    // Nobody else has the new file open yet: this cannot
                    // wait, and where flock is not supported the lock is
                    // left to STALE as before.
                    let _ = file.try_lock();
                    return Ok(Lock {
                        path,
                        file: Some(file),
                        dir: dir.to_owned(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let stale = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE);
            if stale || abandoned(&path) {
                // A writer died holding it: break it, as Dovecot does.
                let _ = fs::remove_file(&path);
                continue;
            }
            if started.elapsed() > WAIT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} is held by another process", path.display()),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Writes `list` as the new list and releases the lock.
    pub fn commit(self, list: &UidList) -> io::Result<()> {
        self.commit_after(list, || Ok(()))
    }

    /// Writes `bytes` into the lock file (fsynced when `durable`) and
    /// renames it to `name` beside the list, which releases the lock and
    /// leaves the list as it was.
    pub fn publish_as(mut self, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
        // Kept open (and flocked) until the rename: see [`abandoned`].
        let mut file = self.file.take();
        if let Some(file) = &mut file {
            file.write_all(bytes)?;
            if durable {
                file.sync_all()?;
            }
        }
        fs::rename(&self.path, self.dir.join(name))?;
        // Renamed away: nothing left to remove on drop.
        self.path = PathBuf::new();
        drop(file);
        Ok(())
    }

    /// [`Lock::commit`], running `before` between the fsync of the new
    /// list and its rename (APPEND fsyncs `cur/` there: on a journaling
    /// filesystem the list's fsync has already committed the new link, so
    /// that second sync costs next to nothing).
    pub fn commit_after(
        mut self,
        list: &UidList,
        before: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        // Kept open (and flocked) until the rename: see [`abandoned`].
        let mut file = self.file.take();
        if let Some(file) = &mut file {
            file.write_all(list.render().as_bytes())?;
            // The UIDs given are on disk before anyone is told them, in
            // every mode but `never` (Dovecot fdatasyncs its list too).
            crate::fsync::file(file)?;
        }
        before()?;
        fs::rename(&self.path, self.dir.join(FILE))?;
        // Renamed away: nothing left to remove on drop.
        self.path = PathBuf::new();
        drop(file);
        Ok(())
    }
}

/// When this process first took a lock: a lock file older than that with
/// no `flock` on it was not made by a writer of ours that is alive.
fn first_lock() -> SystemTime {
    static FIRST: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    *FIRST.get_or_init(SystemTime::now)
}

/// Whether the lock at `path` was left by a process of ours that died: no
/// `flock` on it, and made before this process first locked (so not by a
/// writer of this process between its `open` and its `flock`). Dovecot's
/// own locks carry no `flock`; one made before this process started and
/// still held is broken too, which a Dovecot sharing the mailbox at the
/// very moment Postern restarts could meet (its locks last milliseconds).
fn abandoned(path: &Path) -> bool {
    let started = first_lock();
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let before_us = meta.modified().is_ok_and(|t| t < started);
    // The flock is taken and dropped at once: it only asks. And the file
    // must still be the lock, not a list its writer renamed it to since.
    before_us
        && file.try_lock().is_ok()
        && fs::symlink_metadata(path).is_ok_and(|now| now.ino() == meta.ino())
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecot_versions() {
        let l = UidList::parse("3 V1275660208 N25 G3085f01b\n1 :a.M1P1.h,S=3\n24 W300 :b.h:2,S\n")
            .unwrap();
        assert_eq!((l.validity, l.next), (1275660208, 25));
        assert_eq!(
            l.entries,
            [(1, "a.M1P1.h,S=3".to_owned()), (24, "b.h".to_owned())]
        );
        let v1 = UidList::parse("1 7 3\n1 x.h\n2 y.h\n").unwrap();
        assert_eq!(v1.entries.len(), 2);
        assert!(UidList::parse("garbage").is_none());
        assert!(
            UidList::parse("3 V1 N2\n5 :x\n4 :y\n").is_none(),
            "unordered"
        );
        let again = UidList::parse(&l.render()).unwrap();
        assert_eq!(again, l);
    }

    #[test]
    fn lines_appended_past_the_header_next_uid_are_kept() {
        // What Dovecot 2.3 leaves after APPENDs, an EXPUNGE and dovecot-lda.
        let l = UidList::parse(
            "3 V1795986856 N5 Ge6ee\n1 :a.vm,S=66,W=71\n3 :c.vm,S=66\n5 :e.vm,S=41,W=45\n",
        )
        .unwrap();
        assert_eq!(l.next, 6);
        assert_eq!(l.entries.last(), Some(&(5, "e.vm,S=41,W=45".to_owned())));
    }

    #[test]
    fn lock_excludes_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::acquire(dir.path()).unwrap();
        assert!(dir.path().join(LOCK).exists());
        drop(lock);
        assert!(!dir.path().join(LOCK).exists());
        let lock = Lock::acquire(dir.path()).unwrap();
        let mut list = UidList::fresh();
        list.next = 2;
        list.entries.push((1, "m".to_owned()));
        lock.commit(&list).unwrap();
        assert_eq!(read(dir.path()).unwrap().unwrap(), list);
        assert!(!dir.path().join(LOCK).exists());
    }

    /// A lock a killed process left (no flock on it, made before this
    /// process first locked) is broken at once, not after [`STALE`]; a
    /// live one, flocked by its holder, is waited for.
    #[test]
    fn a_dead_writers_lock_is_broken_and_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(LOCK);
        fs::write(&left, "").unwrap();
        File::options()
            .write(true)
            .open(&left)
            .unwrap()
            .set_modified(first_lock() - Duration::from_secs(1))
            .unwrap();
        let started = std::time::Instant::now();
        let lock = Lock::acquire(dir.path()).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        // Held, and as old as the one above: another writer waits for it.
        File::options()
            .write(true)
            .open(&left)
            .unwrap()
            .set_modified(first_lock() - Duration::from_secs(1))
            .unwrap();
        assert!(!abandoned(&left));
        drop(lock);
        assert!(!left.exists());
    }
}
