//! A Maildir and the delivery protocol into it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, RenameFlags};
use rustix::io::Errno;

use crate::unique::unique_name;

/// Directories and files are the user's alone, as Dovecot creates them.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// A Maildir on disk: `tmp/`, `new/` and `cur/` under one directory.
#[derive(Debug, Clone)]
pub struct Maildir {
    path: PathBuf,
}

impl Maildir {
    /// Opens the Maildir at `path`, creating it and its `tmp/`, `new/` and
    /// `cur/` (mode 0700, parents too) where missing, and fsyncs the parent
    /// of every directory it created. Existing directories are left as
    /// they are.
    pub fn create(path: impl Into<PathBuf>) -> io::Result<Maildir> {
        let path = path.into();
        // The directories this call creates, so that their entries can be
        // made durable: a message fsynced into a Maildir whose own entry
        // was lost in a crash would be lost with it.
        let mut created: Vec<PathBuf> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err())
            .map(Path::to_path_buf)
            .collect();
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(DIR_MODE);
        for sub in ["tmp", "new", "cur"] {
            let dir = path.join(sub);
            if fs::symlink_metadata(&dir).is_err() {
                created.push(dir.clone());
            }
            builder.create(dir)?;
        }
        for dir in &created {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Ok(Maildir { path })
    }

    /// The Maildir at `path`, as it is: nothing is checked or created
    /// (a delivery into a Maildir that is not there fails with
    /// `NotFound`).
    pub fn at(path: impl Into<PathBuf>) -> Maildir {
        Maildir { path: path.into() }
    }

    /// Delivers `parts` into the Maildir at `path` (see
    /// [`Maildir::deliver_parts`]), creating it as [`Maildir::create`] does
    /// only when the delivery finds it, or its `tmp/` or `new/`, missing.
    /// A Maildir that exists, the common case, costs no directory checks
    /// at all; one removed since is made again by the next delivery. What
    /// the first try left behind is already cleaned up when it fails.
    pub fn deliver_creating(path: impl Into<PathBuf>, parts: &[&[u8]]) -> io::Result<PathBuf> {
        let maildir = Maildir::at(path);
        match maildir.deliver_parts(parts) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Maildir::create(maildir.path)?.deliver_parts(parts)
            }
            done => done,
        }
    }

    /// The Maildir's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Delivers one message to `new/` and returns its path there. When this
    /// returns `Ok`, the file and its directory entry are on disk (fsynced);
    /// on any error nothing is left in `tmp/` or `new/`. `content` is
    /// written byte for byte.
    pub fn deliver(&self, content: &[u8]) -> io::Result<PathBuf> {
        self.deliver_parts(&[content])
    }

    /// Like [`Maildir::deliver`], with the message given in pieces (added
    /// header lines, then the message as queued) so no copy is made.
    pub fn deliver_parts(&self, parts: &[&[u8]]) -> io::Result<PathBuf> {
        let size: usize = parts.iter().map(|p| p.len()).sum();
        let name = unique_name(size as u64);
        let tmp = self.path.join("tmp").join(&name);
        let new = self.path.join("new").join(&name);
        match write_synced(&tmp, parts).and_then(|()| publish(&tmp, &new)) {
            Ok(Published::Moved) => {}
            Ok(Published::Linked) => {
                // The message is in new/: tmp/ is only a cleanup now (tmp/
                // is not fsynced: a file a crash brings back there is a
                // leftover that Maildir readers delete after 36 hours, as
                // Dovecot does).
                let _ = fs::remove_file(&tmp);
            }
            Err(e) => {
                // Nothing half-written stays behind; the error that matters
                // is the first one.
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
        // The fsync of new/ is shared with concurrent deliveries to this
        // Maildir (one disk wait per batch): with the file's own fsync it
        // is what lets the queue forget the message, so it stays.
        if let Err(e) = crate::fsync::dir_shared(&self.path.join("new")) {
            let _ = fs::remove_file(&new);
            return Err(e);
        }
        Ok(new)
    }
}

/// Creates `path` (it must not exist), writes `parts` and makes them
/// durable, sharing the journal commit with concurrent deliveries into the
/// same `tmp/` ([`crate::fsync::file_shared`]).
fn write_synced(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    write_parts(&mut file, parts)?;
    match path.parent() {
        Some(tmp) => crate::fsync::file_shared(&file, tmp),
        None => crate::fsync::file(&file),
    }
}

/// Writes `parts` one after another: in one `writev` (a regular file
/// takes it whole), the rest one by one if it did not.
fn write_parts(file: &mut File, parts: &[&[u8]]) -> io::Result<()> {
    let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut skip = match file.write_vectored(&slices) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
        Err(e) => return Err(e),
    };
    for part in parts {
        let rest = part.get(skip.min(part.len())..).unwrap_or_default();
        skip = skip.saturating_sub(part.len());
        file.write_all(rest)?;
    }
    Ok(())
}

/// How [`publish`] moved the file.
enum Published {
    /// Renamed: `tmp` is gone.
    Moved,
    /// Linked: `tmp` is still there.
    Linked,
}

/// Moves `tmp` to `new` without ever replacing an existing file: one
/// `renameat2(RENAME_NOREPLACE)` where the filesystem has it (one system
/// call for what the Maildir spec's link and unlink do), else a hard link
/// as the spec says, or, where the filesystem has no hard links either, a
/// rename after checking that `new` is free.
fn publish(tmp: &Path, new: &Path) -> io::Result<Published> {
    match rustix::fs::renameat_with(CWD, tmp, CWD, new, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(Published::Moved),
        // Not supported here (an old kernel, some filesystems): link.
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
        Err(e) => return Err(e.into()),
    }
    match fs::hard_link(tmp, new) {
        Ok(()) => Ok(Published::Linked),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => {
            if fs::symlink_metadata(new).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", new.display()),
                ));
            }
            fs::rename(tmp, new).map(|()| Published::Moved)
        }
    }
}

/// Fsyncs a directory so that the entries made in it survive a crash
/// (unless `mail_fsync = never`).
fn sync_dir(dir: &Path) -> io::Result<()> {
    crate::fsync::dir(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;
    use crate::unique::size_of_name;

    fn entries(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    #[test]
    fn create_makes_private_dirs_and_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/Maildir");
        Maildir::create(&path).unwrap();
        Maildir::create(&path).unwrap();
        for sub in ["tmp", "new", "cur"] {
            let mode = fs::metadata(path.join(sub)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{sub}");
        }
    }

    #[test]
    fn delivers_byte_identical_content_with_size() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path().join("Maildir")).unwrap();
        let content: Vec<u8> = b"Subject: hi\r\n\r\n.\r\n..\r\n"
            .iter()
            .copied()
            .chain(0u8..=255)
            .collect();
        let path = md.deliver(&content).unwrap();
        assert_eq!(path.parent().unwrap(), md.path().join("new"));
        assert_eq!(fs::read(&path).unwrap(), content);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(size_of_name(name), Some(content.len() as u64));
        assert!(entries(&md.path().join("tmp")).is_empty());
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn parts_are_concatenated() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        let path = md.deliver_parts(&[b"A: 1\r\n", b"", b"body"]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"A: 1\r\nbody");
        assert!(path.to_str().unwrap().ends_with(",S=10"));
    }

    #[test]
    fn unique_names_under_concurrency() {
        let root = tempfile::tempdir().unwrap();
        let md = Arc::new(Maildir::create(root.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let md = Arc::clone(&md);
                std::thread::spawn(move || {
                    (0..100)
                        .map(|i| md.deliver(format!("{t}/{i}").as_bytes()).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let paths: Vec<PathBuf> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let unique: HashSet<&PathBuf> = paths.iter().collect();
        assert_eq!(unique.len(), 800);
        assert_eq!(entries(&md.path().join("new")).len(), 800);
        let mut bodies: Vec<String> = paths
            .iter()
            .map(|p| String::from_utf8(fs::read(p).unwrap()).unwrap())
            .collect();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 800);
    }

    #[test]
    fn deliver_creating_makes_a_missing_maildir_again() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("home/Maildir");
        let first = Maildir::deliver_creating(&path, &[b"A: 1\r\n", b"one"]).unwrap();
        assert_eq!(fs::read(&first).unwrap(), b"A: 1\r\none");
        for sub in ["tmp", "new", "cur"] {
            assert!(path.join(sub).is_dir(), "{sub}");
        }
        // Removed behind our back (an operator, a user's client): the
        // next delivery makes it again rather than fail.
        fs::remove_dir_all(&path).unwrap();
        let second = Maildir::deliver_creating(&path, &[b"two"]).unwrap();
        assert_eq!(fs::read(&second).unwrap(), b"two");
        fs::remove_dir_all(path.join("new")).unwrap();
        let third = Maildir::deliver_creating(&path, &[b"three"]).unwrap();
        assert_eq!(fs::read(&third).unwrap(), b"three");
        assert!(entries(&path.join("tmp")).is_empty());
        // Other errors are not retried: a file where the Maildir should be.
        let file = root.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(Maildir::deliver_creating(file.join("Maildir"), &[b"x"]).is_err());
    }

    #[test]
    fn publish_never_replaces() {
        let root = tempfile::tempdir().unwrap();
        let (tmp, new) = (root.path().join("a"), root.path().join("b"));
        fs::write(&tmp, b"new").unwrap();
        fs::write(&new, b"old").unwrap();
        let err = publish(&tmp, &new).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&new).unwrap(), b"old");
        fs::remove_file(&new).unwrap();
        publish(&tmp, &new).unwrap();
        assert_eq!(fs::read(&new).unwrap(), b"new");
    }

    #[test]
    fn failure_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        fs::remove_dir(md.path().join("new")).unwrap();
        assert!(md.deliver(b"lost?").is_err());
        assert!(entries(&md.path().join("tmp")).is_empty());
    }
}
