//! The queue directory on disk: its subdirectories and the file moves
//! between them, each made durable before it counts.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_mail::{Envelope, QueueId};

use crate::commit::GroupSync;
use crate::error::QueueError;
use crate::format::{END_MARKER, header};
use crate::free_space::FreeSpace;
use crate::spare::{SPARE_DIR, Spares};

/// The queue directory is the daemon's alone (Postfix: 0700 postfix).
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// A queue, in Postfix's sense: one subdirectory of the queue directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum QueueName {
    /// Being written; never acknowledged. Emptied at start-up.
    Incoming,
    /// Ready for delivery, or being delivered.
    Active,
    /// Waiting for the next attempt after a deferral.
    Deferred,
    /// Held by policy (or the operator); not delivered until released.
    Hold,
    /// Failed to parse; kept for a human, never delivered.
    Corrupt,
}

impl QueueName {
    /// Every queue, in the order of a message's life.
    pub const ALL: [QueueName; 5] = [
        QueueName::Incoming,
        QueueName::Active,
        QueueName::Deferred,
        QueueName::Hold,
        QueueName::Corrupt,
    ];

    /// The subdirectory name, as Postfix spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Incoming => "incoming",
            QueueName::Active => "active",
            QueueName::Deferred => "deferred",
            QueueName::Hold => "hold",
            QueueName::Corrupt => "corrupt",
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Paths and durable file operations under one queue directory. Cheap to
/// clone into blocking tasks.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    /// Shared, so that a clone for a blocking task copies no path.
    root: Arc<Path>,
    /// The shared fsyncs of `active/` and `hold/`, where new messages
    /// land (`commit`): one per directory for every clone of the spool.
    commits: Arc<[GroupSync; 2]>,
    /// The last free-space figure, shared by every clone.
    free: Arc<FreeSpace>,
    /// Finished files kept in `spare/` to be written over (spare.rs).
    spares: Arc<Spares>,
}

impl Spool {
    /// Creates the queue directory and its queues (mode 0700) as needed.
    pub fn create(root: &Path) -> Result<Spool, QueueError> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(DIR_MODE);
        let dirs = QueueName::ALL.map(QueueName::as_str);
        for name in dirs.into_iter().chain([SPARE_DIR]) {
            let dir = root.join(name);
            builder.create(&dir).map_err(|e| QueueError::io(&dir, e))?;
        }
        sync_dir(root).map_err(|e| QueueError::io(root, e))?;
        Ok(Spool::at(root))
    }

    fn at(root: &Path) -> Spool {
        let commits =
            [QueueName::Active, QueueName::Hold].map(|q| GroupSync::new(root.join(q.as_str())));
        Spool {
            root: Arc::from(root),
            commits: Arc::new(commits),
            free: Arc::default(),
            spares: Arc::default(),
        }
    }

    /// An existing queue directory, as it is: nothing created, nothing
    /// recovered (for operator commands beside a running daemon).
    pub fn existing(root: &Path) -> Result<Spool, QueueError> {
        if !root.join(QueueName::Active.as_str()).is_dir() {
            return Err(QueueError::NoQueue(root.to_owned()));
        }
        Ok(Spool::at(root))
    }

    /// The queue directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of queue `q`.
    pub fn dir(&self, q: QueueName) -> PathBuf {
        self.root.join(q.as_str())
    }

    /// The directory of the spares (spare.rs).
    pub fn spare_dir(&self) -> PathBuf {
        self.root.join(SPARE_DIR)
    }

    /// The file of message `id` in queue `q`.
    pub fn path(&self, q: QueueName, id: &QueueId) -> PathBuf {
        // One allocation of the final size, not one per component.
        let (root, q, id) = (self.root.as_os_str(), q.as_str(), id.as_str());
        let mut path = PathBuf::with_capacity(root.len() + q.len() + id.len() + 2);
        path.push(root);
        path.push(q);
        path.push(id);
        path
    }

    /// Writes a new message durably into `target` (active or hold), the
    /// way Postfix's cleanup does: the whole file into `incoming/`, moved
    /// into `target/` (which never replaces a file), then the file and
    /// `target/` flushed (one flush shared with the concurrent callers,
    /// `commit`, which says why that is enough). The file is a spare
    /// written over when there is one, synced and then moved without a
    /// flush of `target/` (spare.rs says why that is enough), else a new
    /// one. Only when this returns `Ok` may the message be acknowledged;
    /// on error nothing of it is left. The file's length on success.
    pub fn write_new(
        &self,
        id: &QueueId,
        envelope: &Envelope,
        content: &[u8],
        target: QueueName,
    ) -> io::Result<u64> {
        let dest = self.path(target, id);
        let header = header(id, envelope, content);
        let parts: [&[u8]; 3] = [&header, content, END_MARKER];
        let len = parts.iter().map(|p| p.len() as u64).sum();
        let commit = match target {
            QueueName::Hold => Some(&self.commits[1]),
            QueueName::Active => Some(&self.commits[0]),
            _ => None,
        };
        // Only where recovery puts a message found under another name
        // back (recovery/spares.rs): active/ and hold/.
        if matches!(target, QueueName::Active | QueueName::Hold)
            && let Some(spare) = self.spares.take()
            && let Some(written) = self.write_over(&spare, &parts, len, (target, id))
        {
            return written.map(|()| len);
        }
        let incoming = self.path(QueueName::Incoming, id);
        let written = write_file(&incoming, &parts)
            .and_then(|file| move_new(&incoming, &dest).map(|()| file));
        if written.is_err() {
            // incoming/ is only scratch from here on; a leftover is
            // removed at the next start-up anyway.
            let _ = fs::remove_file(&incoming);
        }
        let file = written?;
        // The file and its entry are made durable together (`commit`).
        let synced = match commit {
            Some(commit) => commit.commit(&file),
            None => file.sync_all().and_then(|()| sync_dir(&self.dir(target))),
        };
        if let Err(e) = synced {
            let _ = fs::remove_file(&dest);
            return Err(e);
        }
        // incoming/ is not synced after the unlink: a file the crash
        // brings back there is scratch, deleted at start-up, and the
        // fsync would cost every message a disk wait before its 250
        // (bench/README.md counts them).
        Ok(len)
    }

    /// [`Spool::write_new`] over the spare `name` (spare.rs): written and
    /// synced in `spare/`, then moved into queue `target` as message `id`,
    /// with no fsync of `target/`: once its data is synced the message is
    /// found after a crash wherever the move left it, under a name that is
    /// not its id, and start-up recovery puts it back under its id
    /// (spare.rs says why that is enough). `None` when the spare cannot be
    /// written over: it is dropped, and the message goes into a new file,
    /// which reports whatever is wrong with the disk.
    fn write_over(
        &self,
        name: &str,
        parts: &[&[u8]],
        len: u64,
        (target, id): (QueueName, &QueueId),
    ) -> Option<io::Result<()>> {
        let spare = self.spare_dir().join(name);
        if write_spare(&spare, parts, len).is_err() {
            let _ = fs::remove_file(&spare);
            return None;
        }
        let moved = move_new(&spare, &self.path(target, id));
        if moved.is_err() {
            let _ = fs::remove_file(&spare);
        }
        Some(moved)
    }

    /// The bytes free for unprivileged use on the queue's file system
    /// (Postfix's `fsspace`), `None` when it cannot be asked. Asked of the
    /// kernel for every MAIL, as Postfix's smtpd does, except while a
    /// figure under [`FREE_SPACE_REUSE`](crate::free_space::FREE_SPACE_REUSE)
    /// old showed more than
    /// [`FREE_SPACE_MARGIN`](crate::free_space::FREE_SPACE_MARGIN) beyond
    /// `need`: the disk cannot fill that much that fast, and a write that fails anyway still gets `452` after
    /// DATA. So a roomy queue costs one statfs(2) a second, and a nearly
    /// full one is watched on every MAIL.
    pub fn free_space(&self, need: u64) -> Option<u64> {
        self.free.get(&self.root, need)
    }

    /// Moves message `id` from queue `from` to `to` and makes the move
    /// durable. A rename is atomic: after a crash the file is in one of
    /// the two, never both, never neither.
    pub fn move_to(&self, id: &QueueId, from: QueueName, to: QueueName) -> io::Result<()> {
        fs::rename(self.path(from, id), self.path(to, id))?;
        sync_dir(&self.dir(to))?;
        sync_dir(&self.dir(from))
    }

    /// Removes message `id` from queue `q` for good.
    pub fn remove(&self, q: QueueName, id: &QueueId) -> io::Result<()> {
        fs::remove_file(self.path(q, id))?;
        sync_dir(&self.dir(q))
    }

    /// Removes the file of a message that is finished (every recipient
    /// done, every notice queued) without fsyncing its directory, as
    /// Postfix's qmgr does. Durability argument: a crash may undo the
    /// unlink; start-up recovery then finds the file finished and removes
    /// it again, or, if the last status record was not on disk either,
    /// delivers those recipients a second time. A duplicate at worst,
    /// never a loss, and one disk wait less per message.
    ///
    /// A file of about `spare` bytes, closed for good (nothing can write
    /// to it any more), is kept as a spare when there is room (spare.rs):
    /// renamed into `spare/` instead, as unsynced.
    pub fn remove_finished(
        &self,
        q: QueueName,
        id: &QueueId,
        spare: Option<u64>,
    ) -> io::Result<()> {
        let path = self.path(q, id);
        if !spare.is_some_and(|len| self.spares.room_for(len)) {
            return fs::remove_file(path);
        }
        let spare = self.spare_dir().join(id.as_str());
        fs::rename(&path, &spare)?;
        if self.spares.put(id.to_string()).is_err() {
            let _ = fs::remove_file(&spare);
        }
        Ok(())
    }

    /// Moves the file at `path` into `corrupt/`, under its own name or,
    /// if that is taken, with a `.N` suffix; never replaces a file there.
    /// Returns where it went.
    pub fn quarantine(&self, path: &Path) -> io::Result<PathBuf> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unnamed".to_owned());
        let dir = self.dir(QueueName::Corrupt);
        let mut n = 0u32;
        loop {
            let dest = match n {
                0 => dir.join(&name),
                n => dir.join(format!("{name}.{n}")),
            };
            match fs::hard_link(path, &dest) {
                Ok(()) => {
                    fs::remove_file(path)?;
                    sync_dir(&dir)?;
                    if let Some(parent) = path.parent() {
                        sync_dir(parent)?;
                    }
                    return Ok(dest);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The names of the regular files in queue `q`, unsorted.
    pub fn entries(&self, q: QueueName) -> io::Result<Vec<(PathBuf, fs::Metadata)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.dir(q))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            out.push((entry.path(), meta));
        }
        Ok(out)
    }

    /// Opens message `id` in queue `q` for reading and appending records.
    pub fn open_for_update(&self, q: QueueName, id: &QueueId) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.path(q, id))
    }
}

/// Creates `path` (it must not exist) and writes `parts`; not synced
/// (`commit` does it once the file is in place).
fn write_file(path: &Path, parts: &[&[u8]]) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    write_parts(&mut file, parts)?;
    Ok(file)
}

/// Writes `parts`, `len` bytes in all, over the spare at `path` from its
/// start, cuts what is left of its last message off, and syncs it: from
/// here on it holds the new message alone, and may take a queue id
/// (spare.rs says why the sync comes before the move). The length is
/// only set when it changes, so that a message of the spare's size
/// changes no metadata the sync would have to commit.
fn write_spare(path: &Path, parts: &[&[u8]], len: u64) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    write_parts(&mut file, parts)?;
    if file.metadata()?.len() != len {
        file.set_len(len)?;
    }
    file.sync_data()
}

/// Writes `parts` at the file's position: in one writev(2) (header,
/// content and end record are one system call, not three), repeated
/// only for what a short write left.
fn write_parts(file: &mut File, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Moves the new file `from` (in `incoming/`) to `to`, never replacing a
/// file there: one rename(2) with `RENAME_NOREPLACE` (Linux 3.15, ext4,
/// xfs, btrfs, tmpfs), or where the file system refuses that flag, a link
/// and an unlink, as Postfix's cleanup would on any POSIX system. Either
/// way a crash leaves the file in `incoming/` (scratch, never
/// acknowledged), in `to`, or briefly in both, never in neither.
pub(crate) fn move_new(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            fs::hard_link(from, to)?;
            let _ = fs::remove_file(from);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Fsyncs a directory, so that entries made or removed in it survive a
/// crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_file(&a, &[b"one ", b"", b"two"]).unwrap();
        fs::write(&b, b"old").unwrap();
        let e = move_new(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"old");
        fs::remove_file(&b).unwrap();
        move_new(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"one two");
    }
}
