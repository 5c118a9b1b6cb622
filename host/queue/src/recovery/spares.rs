//! What start-up recovery does with `spare/` (spare.rs) and with a file
//! found under another message's name: after a machine crash, a message
//! written over a spare may be on disk under the spare's name, or under
//! the name of a message its file held before, since its move into
//! `active/` is not synced before the 250 (its data is). Such a file is
//! told by its `id` record, which names another message than the file,
//! and trusted only with its checksum (format.rs): it is then moved back
//! under its id, into `active/` (or `hold/`, as its envelope says), and
//! delivered.
//!
//! Everything else in `spare/` goes: a delivered message under its own
//! name (the spare proper), or a file that does not parse, which is a
//! spare being written over when the machine stopped and so never
//! acknowledged (an acknowledged one was synced whole before its 250).

use std::fs;
use std::path::{Path, PathBuf};

use crate::format::{Parsed, parse};
use crate::spool::{QueueName, Spool, move_new, sync_dir};

/// Goes through `spare/`: puts back what holds a message written over a
/// spare, and removes the rest. Never an error: a spare that cannot be
/// read or removed is only disk space, and one that cannot be put back is
/// logged and left for the next start.
pub(crate) fn recover_spares(spool: &Spool) {
    let dir = spool.spare_dir();
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(bytes) = fs::read(&path) else {
            continue;
        };
        match parse(&bytes) {
            Ok(parsed) if parsed.message.id.as_str() != name && parsed.summed => {
                if let Err(e) = put_back(spool, &path, &parsed) {
                    tracing::warn!(
                        target: "postern/qmgr",
                        "{}: cannot move the message {} it holds back into the queue: {e}; left for the next start",
                        path.display(), parsed.message.id
                    );
                }
                continue;
            }
            // Its own delivered message: the spare proper, removed
            // without a word as before.
            Ok(parsed) if parsed.message.id.as_str() == name => {}
            Ok(_) => {
                // Another message without a checksum: not ours to trust.
                match spool.quarantine(&path) {
                    Ok(dest) => tracing::warn!(
                        target: "postern/qmgr",
                        "{}: a message without a checksum under another name; moved to {}, not delivered",
                        path.display(), dest.display()
                    ),
                    Err(e) => tracing::warn!(
                        target: "postern/qmgr",
                        "{}: cannot move to corrupt: {e}", path.display()
                    ),
                }
                continue;
            }
            Err(e) => tracing::info!(
                target: "postern/qmgr",
                "{}: a spare being written over when the server stopped ({e}), never acknowledged; removed",
                path.display()
            ),
        }
        let _ = fs::remove_file(&path);
    }
}

/// Moves the file at `path`, which holds the message `parsed` under
/// another name, back under the message's id (into `hold/` if its
/// envelope says so, else `active/`) and makes the move durable; where it
/// went. A file already there keeps its place: this one then goes to
/// `corrupt/`, and `None` is returned.
pub(crate) fn put_back(
    spool: &Spool,
    path: &Path,
    parsed: &Parsed,
) -> std::io::Result<Option<(QueueName, PathBuf)>> {
    let message = &parsed.message;
    let q = if message.envelope.hold {
        QueueName::Hold
    } else {
        QueueName::Active
    };
    let dest = spool.path(q, &message.id);
    if let Err(e) = move_new(path, &dest) {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            let aside = spool.quarantine(path)?;
            tracing::warn!(
                target: "postern/qmgr",
                "{}: holds message {}, which is already in {}; moved to {}",
                path.display(), message.id, dest.display(), aside.display()
            );
            return Ok(None);
        }
        return Err(e);
    }
    sync_dir(&spool.dir(q))?;
    tracing::warn!(
        target: "postern/qmgr",
        "{}: found under {} (written over a spare, its move not on disk when the server stopped); moved back to {}",
        message.id, path.display(), dest.display()
    );
    Ok(Some((q, dest)))
}
