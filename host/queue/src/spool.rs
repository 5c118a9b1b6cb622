//! The queue directory on disk: its subdirectories and the file moves
//! between them, each made durable before it counts.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_mail::{Envelope, QueueId};

use crate::commit::GroupSync;
use crate::error::QueueError;
use crate::format::{END_MARKER, header};

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
    root: PathBuf,
    /// The shared fsyncs of `active/` and `hold/`, where new messages
    /// land (`commit`): one per directory for every clone of the spool.
    commits: Arc<[GroupSync; 2]>,
}

impl Spool {
    /// Creates the queue directory and its queues (mode 0700) as needed.
    pub fn create(root: &Path) -> Result<Spool, QueueError> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(DIR_MODE);
        for q in QueueName::ALL {
            let dir = root.join(q.as_str());
            builder.create(&dir).map_err(|e| QueueError::io(&dir, e))?;
        }
        sync_dir(root).map_err(|e| QueueError::io(root, e))?;
        Ok(Spool::at(root))
    }

    fn at(root: &Path) -> Spool {
        let commits =
            [QueueName::Active, QueueName::Hold].map(|q| GroupSync::new(root.join(q.as_str())));
        Spool {
            root: root.to_owned(),
            commits: Arc::new(commits),
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

    /// The file of message `id` in queue `q`.
    pub fn path(&self, q: QueueName, id: &QueueId) -> PathBuf {
        self.dir(q).join(id.as_str())
    }

    /// Writes a new message durably into `target` (active or hold), the
    /// way Postfix's cleanup does: the whole file into `incoming/`, fsync,
    /// link into `target/` (which never replaces a file), fsync `target/`
    /// (an fsync shared with the concurrent callers, `commit`). Only when
    /// this returns `Ok` may the message be acknowledged; on error nothing
    /// of it is left.
    pub fn write_new(
        &self,
        id: &QueueId,
        envelope: &Envelope,
        content: &[u8],
        target: QueueName,
    ) -> io::Result<()> {
        let incoming = self.path(QueueName::Incoming, id);
        let dest = self.path(target, id);
        let written = write_file(
            &incoming,
            &[&header(id, envelope, content.len()), content, END_MARKER],
        )
        .and_then(|()| fs::hard_link(&incoming, &dest));
        // Whatever happened, incoming/ is only scratch from here on; a
        // leftover is removed at the next start-up anyway.
        let _ = fs::remove_file(&incoming);
        written?;
        let synced = match target {
            QueueName::Hold => self.commits[1].sync(),
            QueueName::Active => self.commits[0].sync(),
            other => sync_dir(&self.dir(other)),
        };
        if let Err(e) = synced {
            let _ = fs::remove_file(&dest);
            return Err(e);
        }
        // incoming/ is not synced after the unlink: a file the crash
        // brings back there is scratch, deleted at start-up, and the
        // fsync would cost every message a disk wait before its 250
        // (bench/README.md counts them).
        Ok(())
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
    pub fn remove_finished(&self, q: QueueName, id: &QueueId) -> io::Result<()> {
        fs::remove_file(self.path(q, id))
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

/// Creates `path` (it must not exist), writes `parts`, fsyncs it.
fn write_file(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()
}

/// Fsyncs a directory, so that entries made or removed in it survive a
/// crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
