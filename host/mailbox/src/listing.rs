//! What is in a mailbox's `cur/` and `new/`, kept between syncs: a sync
//! lists both directories, and with a hundred messages that listing (the
//! `getdents64` calls and a string per name) was a fifth of what an IMAP
//! command cost. The listings are kept per directory and brought up to date
//! by inotify(7) instead of read again.
//!
//! Why that is exact: the kernel queues an inotify event inside the system
//! call that changes the directory, before the call returns, whoever makes
//! it (this process, Dovecot, mutt, a delivery agent). Every lookup first
//! reads the queue and applies what it holds, so a listing handed out
//! reflects every change completed before the lookup began, as a fresh
//! `readdir` would. The events are applied by name (`IN_CREATE`,
//! `IN_MOVED_TO` add; `IN_DELETE`, `IN_MOVED_FROM` remove), in order, on top
//! of a listing read after the watch was added, so a change racing with that
//! first read is applied either way. Dovecot instead compares directory
//! mtimes, which cannot see two changes within one clock tick and so makes
//! it rescan recently changed directories.
//!
//! When the queue overflowed (`IN_Q_OVERFLOW`), every listing is dropped. A
//! directory is also checked by device and inode at each lookup, so that a
//! folder renamed away and another made under its name is listed afresh.
//! Without inotify (no instance left, no watch left, not Linux) a lookup
//! lists the directory, as before. At most [`CAPACITY`] directories and
//! [`MAX_NAMES`] names are kept, the least recently used dropped first.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use crate::reader::base_name;

/// Directories kept at once (two per mailbox: `cur/` and `new/`); each costs
/// an inotify watch (the kernel's default limit per user is 8192 or more)
/// and its names.
pub const CAPACITY: usize = 1024;

/// Names kept in all (about 100 bytes each): huge mailboxes push the least
/// recently used listings out, so that memory stays bounded whatever the
/// mailboxes hold. A directory larger than this is listed at each lookup.
pub const MAX_NAMES: usize = 1_000_000;

/// A directory's message files: base name (without `:2,FLAGS`) to file
/// name; dot files and names that are not UTF-8 left out.
pub type Files = HashMap<String, String>;

/// The files in `dir` now: from the kept listing when there is one, else
/// read (and kept). The flag says whether the listing is a kept one, which
/// no rename racing with a `readdir` can have hidden a file from.
pub fn files(dir: &Path) -> io::Result<(Arc<Files>, bool)> {
    let Some(cache) = cache() else {
        return Ok((Arc::new(read(dir)?), false));
    };
    let Ok(mut cache) = cache.lock() else {
        return Ok((Arc::new(read(dir)?), false));
    };
    cache.lookup(dir)
}

/// Reads `dir` without the cache.
pub fn read(dir: &Path) -> io::Result<Files> {
    let mut out = HashMap::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string()
            && !name.starts_with('.')
        {
            out.insert(base_name(&name).to_owned(), name);
        }
    }
    Ok(out)
}

fn cache() -> Option<&'static Mutex<Cache>> {
    static CACHE: OnceLock<Option<Mutex<Cache>>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
            Some(Mutex::new(Cache {
                fd,
                dirs: HashMap::new(),
                by_watch: HashMap::new(),
                clock: 0,
            }))
        })
        .as_ref()
}

struct Kept {
    watch: i32,
    dev: u64,
    ino: u64,
    files: Arc<Files>,
    used: u64,
}

struct Cache {
    fd: OwnedFd,
    dirs: HashMap<PathBuf, Kept>,
    by_watch: HashMap<i32, PathBuf>,
    /// Lookups so far: the least recently used directory goes first.
    clock: u64,
}

impl Cache {
    fn lookup(&mut self, dir: &Path) -> io::Result<(Arc<Files>, bool)> {
        self.drain();
        self.clock += 1;
        let meta = fs::metadata(dir)?;
        if let Some(kept) = self.dirs.get_mut(dir) {
            if kept.dev == meta.dev() && kept.ino == meta.ino() {
                kept.used = self.clock;
                return Ok((Arc::clone(&kept.files), true));
            }
            // Another directory under this name now.
            self.forget(dir);
        }
        if self.dirs.len() >= CAPACITY {
            let oldest = self
                .dirs
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(p, _)| p.clone());
            if let Some(p) = oldest {
                self.forget(&p);
            }
        }
        let mask = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        // The watch first, then the listing: a change in between is both
        // in the listing and in the queue, and applying it twice is the
        // same as once.
        let Ok(watch) = inotify::add_watch(&self.fd, dir, mask) else {
            return Ok((Arc::new(read(dir)?), false));
        };
        if self.by_watch.get(&watch).is_some_and(|p| p != dir) {
            // The same directory under a second path (a symlink): one
            // watch cannot feed two listings; list it each time.
            return Ok((Arc::new(read(dir)?), false));
        }
        let files = match read(dir) {
            Ok(files) => files,
            Err(e) => {
                let _ = inotify::remove_watch(&self.fd, watch);
                return Err(e);
            }
        };
        let same = fs::metadata(dir)?;
        if same.dev() != meta.dev() || same.ino() != meta.ino() || files.len() > MAX_NAMES {
            let _ = inotify::remove_watch(&self.fd, watch);
            return Ok((Arc::new(files), false));
        }
        // Room for these names: the least recently used listings go.
        let mut kept: usize = self.dirs.values().map(|k| k.files.len()).sum();
        while kept + files.len() > MAX_NAMES {
            let Some(oldest) = self
                .dirs
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            kept -= self.dirs.get(&oldest).map_or(0, |k| k.files.len());
            self.forget(&oldest);
        }
        self.by_watch.insert(watch, dir.to_owned());
        self.dirs.insert(
            dir.to_owned(),
            Kept {
                watch,
                dev: meta.dev(),
                ino: meta.ino(),
                files: Arc::new(files),
                used: self.clock,
            },
        );
        self.drain();
        match self.dirs.get(dir) {
            Some(kept) => Ok((Arc::clone(&kept.files), true)),
            // Dropped by what the queue held (an overflow, the directory
            // removed): list it as it is.
            None => Ok((Arc::new(read(dir)?), false)),
        }
    }

    /// Applies every queued event.
    fn drain(&mut self) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut overflow = false;
        let mut changes: Vec<(i32, ReadFlags, Option<String>)> = Vec::new();
        {
            let mut reader = inotify::Reader::new(&self.fd, &mut buf);
            loop {
                match reader.next() {
                    Ok(event) => {
                        let name = event
                            .file_name()
                            .and_then(|n| OsStr::from_bytes(n.to_bytes()).to_str())
                            .map(str::to_owned);
                        if event.events().contains(ReadFlags::QUEUE_OVERFLOW) {
                            overflow = true;
                        }
                        changes.push((event.wd(), event.events(), name));
                    }
                    // EAGAIN: the queue is empty. Anything else: trust no
                    // listing.
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(_) => {
                        overflow = true;
                        break;
                    }
                }
            }
        }
        if overflow {
            let dirs: Vec<PathBuf> = self.dirs.keys().cloned().collect();
            for dir in dirs {
                self.forget(&dir);
            }
            return;
        }
        for (watch, what, name) in changes {
            self.apply(watch, what, name);
        }
    }

    fn apply(&mut self, watch: i32, what: ReadFlags, name: Option<String>) {
        let Some(dir) = self.by_watch.get(&watch).cloned() else {
            return;
        };
        if what.intersects(ReadFlags::IGNORED) {
            // The kernel dropped the watch (the directory is gone).
            self.by_watch.remove(&watch);
            if self.dirs.get(&dir).is_some_and(|k| k.watch == watch) {
                self.dirs.remove(&dir);
            }
            return;
        }
        if what.intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF) {
            self.forget(&dir);
            return;
        }
        let Some(kept) = self.dirs.get_mut(&dir) else {
            return;
        };
        let Some(name) = name.filter(|n| !n.starts_with('.')) else {
            return;
        };
        let files = Arc::make_mut(&mut kept.files);
        let base = base_name(&name);
        if what.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) {
            files.insert(base.to_owned(), name);
        } else if what.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM)
            && files.get(base).is_some_and(|n| *n == name)
        {
            files.remove(base);
        }
    }

    /// Stops keeping `dir`.
    fn forget(&mut self, dir: &Path) {
        if let Some(kept) = self.dirs.remove(dir) {
            self.by_watch.remove(&kept.watch);
            let _ = inotify::remove_watch(&self.fd, kept.watch);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(files: &Files) -> Vec<String> {
        let mut v: Vec<String> = files.values().cloned().collect();
        v.sort();
        v
    }

    /// Every kind of change by anyone is in the next lookup: a file
    /// created, renamed (a flag change), removed, a folder replaced by
    /// another of the same name; the listing always equals a fresh one.
    #[test]
    fn kept_listing_follows_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let cur = dir.path().join("cur");
        fs::create_dir(&cur).unwrap();
        fs::write(cur.join("1.M1P1.h,S=3:2,"), "a").unwrap();
        let first = files(&cur).unwrap().0;
        assert_eq!(names(&first), ["1.M1P1.h,S=3:2,"]);
        // Delivered, flags changed, expunged: as another process would.
        fs::write(cur.join("2.M1P1.h,S=3:2,"), "b").unwrap();
        fs::rename(cur.join("1.M1P1.h,S=3:2,"), cur.join("1.M1P1.h,S=3:2,S")).unwrap();
        let (second, kept) = files(&cur).unwrap();
        assert!(kept, "served from the kept listing");
        assert_eq!(names(&second), ["1.M1P1.h,S=3:2,S", "2.M1P1.h,S=3:2,"]);
        assert_eq!(names(&first), ["1.M1P1.h,S=3:2,"], "handed out, unchanged");
        fs::remove_file(cur.join("2.M1P1.h,S=3:2,")).unwrap();
        fs::write(cur.join(".hidden"), "").unwrap();
        assert_eq!(*files(&cur).unwrap().0, read(&cur).unwrap());
        assert_eq!(names(&files(&cur).unwrap().0), ["1.M1P1.h,S=3:2,S"]);
        // A folder renamed away and a new one made under its name.
        fs::rename(&cur, dir.path().join("old")).unwrap();
        fs::create_dir(&cur).unwrap();
        fs::write(cur.join("3.M1P1.h,S=3:2,"), "c").unwrap();
        assert_eq!(names(&files(&cur).unwrap().0), ["3.M1P1.h,S=3:2,"]);
        fs::remove_dir_all(&cur).unwrap();
        assert!(files(&cur).is_err());
    }

    /// Many threads changing and looking at once: once they stop, the
    /// kept listing is the directory's.
    #[test]
    fn concurrent_changes_end_in_the_directory_listing() {
        let dir = tempfile::tempdir().unwrap();
        let cur = dir.path().join("cur");
        fs::create_dir(&cur).unwrap();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let cur = &cur;
                scope.spawn(move || {
                    for i in 0..50 {
                        let name = format!("{t}.M{i}P1.h,S=1:2,");
                        fs::write(cur.join(&name), "x").unwrap();
                        let _ = files(cur).unwrap();
                        fs::rename(cur.join(&name), cur.join(format!("{name}S"))).unwrap();
                        if i % 3 == 0 {
                            fs::remove_file(cur.join(format!("{name}S"))).unwrap();
                        }
                        let _ = files(cur).unwrap();
                    }
                });
            }
        });
        assert_eq!(*files(&cur).unwrap().0, read(&cur).unwrap());
    }
}
