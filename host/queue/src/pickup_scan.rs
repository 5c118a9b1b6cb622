//! The maildrop scan (the other half of Postfix's pickup): files that
//! `postern sendmail` left in `QUEUE_DIRECTORY/maildrop` while no daemon
//! answered become queued messages, each as its owner's. Every file was
//! written by a local user who may be hostile, so each is opened without
//! following a link or blocking on a FIFO, checked on the open file
//! (a regular file, one link, within the size limit, a complete maildrop
//! file), and otherwise moved to `corrupt/` with a log line naming it.
//! The design and the file format are in [`crate::pickup`].

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::pickup::Submission;
use crate::queue::Queue;
use crate::spool::{QueueName, sync_dir};

/// How many maildrop files one scan takes; a maildrop holding more is
/// scanned again at once, so memory stays bounded whatever users drop.
const SCAN_BATCH: usize = 1000;

/// A `.NAME` file older than this was left by a writer that died.
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);

impl Queue {
    /// Queues the finished files in the maildrop, oldest name first, at
    /// most [`SCAN_BATCH`] of them; removes temporary files left by
    /// writers that died. `true` when the batch was full and went (so
    /// that more may wait, and a full disk does not make a busy loop).
    pub(crate) async fn pick_up_all(&self, dir: &Path, max_size: u64) -> bool {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(target: "postern/pickup", "{}: {e}", dir.display());
                return false;
            }
        };
        let mut names: Vec<PathBuf> = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                let stale = entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TEMP);
                if stale {
                    tracing::warn!(target: "postern/pickup", "{}: an unfinished file a day old; removed", shown(&entry.path()));
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            }
            names.push(entry.path());
            if names.len() >= SCAN_BATCH {
                break;
            }
        }
        let full = names.len() >= SCAN_BATCH;
        names.sort();
        let mut gone = 0;
        for path in names {
            gone += usize::from(self.pick_up(&path, max_size).await);
        }
        full && gone > 0
    }

    /// One maildrop file into the queue; removed only once queued. A file
    /// that is not a regular file of one link, too large, or not a
    /// complete maildrop file goes to `corrupt/`, logged by name. `false`
    /// when it stays for a later scan (it could not be queued now).
    async fn pick_up(&self, path: &Path, max_size: u64) -> bool {
        let opened = open_drop_file(path, max_size);
        let (submission, owner, modified) = match opened {
            Ok(Some(found)) => found,
            // Gone: another scan took it.
            Ok(None) => return true,
            Err(e) => {
                // Prefixed: a user's name cannot replace a corrupt queue
                // file (those are named by queue id).
                let mut name = std::ffi::OsString::from("maildrop-");
                name.push(path.file_name().unwrap_or_default());
                let target = self.spool.dir(QueueName::Corrupt).join(name);
                tracing::warn!(target: "postern/pickup", "{}: {e}; moved to {}", shown(path), shown(&target));
                if std::fs::rename(path, &target).is_err() {
                    let _ = std::fs::remove_file(path);
                }
                return true;
            }
        };
        // Who wrote the file, not who it claims: the owner is the only
        // uid to trust, and a queue id it names was reserved by nobody.
        match self
            .take_submission(submission, owner, modified, None)
            .await
        {
            Ok(id) => {
                tracing::info!(target: "postern/pickup", "{id}: maildrop file {}", shown(Path::new(path.file_name().unwrap_or_default())));
                let _ = std::fs::remove_file(path);
                if let Some(dir) = path.parent() {
                    let _ = sync_dir(dir);
                }
                true
            }
            Err(e) => {
                tracing::warn!(target: "postern/pickup", "cannot queue {}: {e}; will retry", shown(path));
                false
            }
        }
    }
}

/// A maildrop path for a log line. Users choose the names: a control
/// character (a newline would forge a log line) is shown as `?`.
fn shown(path: &Path) -> String {
    path.display()
        .to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Reads a maildrop file as its owner wrote it: `Ok(None)` when it is
/// gone, `Err(why)` when it is not to be queued. Opened without following
/// a link (a user's symlink to a file only the daemon may read) or
/// blocking (a FIFO), then checked on the open file, so that it cannot be
/// swapped between the check and the read.
fn open_drop_file(
    path: &Path,
    max_size: u64,
) -> Result<Option<(Submission, u32, Option<SystemTime>)>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    if meta.nlink() > 1 {
        // A hard link to some other file: not a submission, and not to
        // be read with the daemon's rights.
        return Err("has more than one hard link".to_owned());
    }
    if meta.len() > max_size {
        return Err(format!(
            "{} bytes, over the limit of {max_size}",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    file.take(max_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut submission = Submission::decode(&bytes)?;
    submission.queue_id = None;
    Ok(Some((submission, meta.uid(), meta.modified().ok())))
}

/// `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`: a link is not followed, a FIFO
/// does not block the open, a terminal is not taken over.
fn libc_flags() -> i32 {
    use rustix::fs::OFlags;
    (OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32
}
