//! Start-up recovery: every state a crash can leave the queue directory
//! in, put right before delivery starts (Postfix's `postsuper -s` and
//! qmgr start-up, in one pass). What comes back of the spares, and a
//! message found under another name, is in `spares.rs`.

use std::fs;
use std::io::Read;
use std::path::Path;

use postern_mail::QueueId;

use crate::error::{ParseError, QueueError};
use crate::format::{END_MARKER, parse};
use crate::spool::{QueueName, Spool, sync_dir};

mod spares;

use spares::{put_back, recover_spares};

/// Recovers the queue directory (see [`crate::Queue::open_with`]). Only a
/// queue directory that cannot be listed is an error; a file that cannot
/// be read is logged and left for the next start.
pub(crate) fn recover(spool: &Spool) -> Result<(), QueueError> {
    clear_incoming(spool)?;
    // First, so that a message put back from there is checked below.
    recover_spares(spool);
    for q in [QueueName::Active, QueueName::Deferred, QueueName::Hold] {
        let entries = spool
            .entries(q)
            .map_err(|e| QueueError::io(spool.dir(q), e))?;
        for (path, meta) in entries {
            if !meta.is_file() {
                tracing::warn!(target: "postern/qmgr", "{}: not a regular file; left alone", path.display());
                continue;
            }
            if let Err(e) = check_file(spool, q, &path) {
                tracing::warn!(target: "postern/qmgr", "{}: cannot recover: {e}; left for the next start", path.display());
            }
        }
    }
    Ok(())
}

/// Deletes what `incoming/` holds: messages whose writing never finished,
/// so never acknowledged with a 250.
fn clear_incoming(spool: &Spool) -> Result<(), QueueError> {
    let dir = spool.dir(QueueName::Incoming);
    let entries = spool
        .entries(QueueName::Incoming)
        .map_err(|e| QueueError::io(&dir, e))?;
    let mut removed = false;
    for (path, meta) in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !meta.is_file() {
            tracing::warn!(target: "postern/qmgr", "{}: not a regular file; left alone", path.display());
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => {
                removed = true;
                tracing::warn!(target: "postern/qmgr", "{name}: removed from incoming (never acknowledged)");
            }
            Err(e) => {
                tracing::warn!(target: "postern/qmgr", "{}: cannot remove: {e}", path.display())
            }
        }
    }
    if removed {
        sync_dir(&dir).map_err(|e| QueueError::io(&dir, e))?;
    }
    Ok(())
}

/// Checks one queue file: quarantines it if it does not parse, cuts a torn
/// record off, removes it if nothing is left to do.
fn check_file(spool: &Spool, q: QueueName, path: &Path) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let Some(id) = QueueId::parse(&name) else {
        let dest = spool.quarantine(path)?;
        tracing::warn!(
            target: "postern/qmgr",
            "{}: not a queue file name; moved to {}", path.display(), dest.display()
        );
        return Ok(());
    };
    let mut file = spool.open_for_update(q, &id)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let parsed = match parse(&bytes) {
        // A message written over a spare, under the name its file had
        // before (recovery/spares.rs), trusted with its checksum: put back
        // under its id and checked there. Not in deferred/: a spare never
        // moves into it unsynced.
        Ok(parsed) if parsed.message.id != id && parsed.summed && q != QueueName::Deferred => {
            drop(file);
            return match put_back(spool, path, &parsed)? {
                Some((q, dest)) => check_file(spool, q, &dest),
                None => Ok(()),
            };
        }
        Ok(parsed) if parsed.message.id != id => Err(ParseError::IdMismatch {
            expected: id.to_string(),
            found: parsed.message.id,
        }),
        other => other,
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(e) if incomplete(&bytes) => {
            // Moved aside rather than removed: a file a failing disk cut
            // looks the same, and someone may want to read it.
            drop(file);
            let dest = spool.quarantine(path)?;
            tracing::warn!(
                target: "postern/qmgr",
                "{id}: incomplete queue file {} ({e}): written but never flushed, so never acknowledged; moved to {}, not delivered",
                path.display(), dest.display()
            );
            return Ok(());
        }
        Err(e) => {
            drop(file);
            let dest = spool.quarantine(path)?;
            tracing::warn!(
                target: "postern/qmgr",
                "{id}: corrupt queue file {}: {e}; moved to {}, not delivered", path.display(), dest.display()
            );
            return Ok(());
        }
    };
    if parsed.valid_len < bytes.len() {
        file.set_len(parsed.valid_len as u64)?;
        file.sync_all()?;
        tracing::warn!(
            target: "postern/qmgr",
            "{id}: cut a torn status record ({} bytes) off {}", bytes.len() - parsed.valid_len, path.display()
        );
    }
    if q != QueueName::Hold
        && parsed.message.is_done()
        && parsed.message.unnotified_failures().is_empty()
        && parsed.message.unnotified_successes().is_empty()
    {
        // Every recipient was done before the crash, and every notice
        // queued; only the removal was missing. A message that still owes
        // a bounce notice stays for the delivery loop, which sends it.
        drop(file);
        spool.remove(q, &id)?;
        tracing::info!(target: "postern/qmgr", "{id}: removed");
    }
    Ok(())
}

/// Whether `bytes` is what a crash can leave of a queue file whose write
/// was never flushed: its beginning, cut anywhere before the end marker,
/// or with its tail read back as zeros. Such a file was never
/// acknowledged: the 250 waits for the flush that covers the whole file
/// (commit.rs), and a power cut before that flush may keep the directory
/// entry and lose the data after it. ext4 (`data=ordered`) shows lost data
/// as a shorter file or, for blocks allocated but not yet converted, as
/// zeros; never as another file's bytes. A process crash alone loses
/// nothing: the page cache keeps the whole file, which is then delivered
/// (a duplicate at worst, as the client saw no 250 and sends again).
fn incomplete(bytes: &[u8]) -> bool {
    /// The start of the first line of every queue file (format.rs).
    const MAGIC: &[u8] = b"POSTERN-QUEUE ";
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let kept = &bytes[..end];
    if kept.len() < MAGIC.len() {
        return MAGIC.starts_with(kept);
    }
    match parse(kept) {
        Err(ParseError::HeaderTruncated | ParseError::ContentTruncated { .. }) => true,
        Err(ParseError::EndMarker(at)) => kept
            .get(at..)
            .is_some_and(|rest| rest.len() < END_MARKER.len() && END_MARKER.starts_with(rest)),
        Err(ParseError::NotAQueueFile) => kept.starts_with(MAGIC) && !kept.contains(&b'\n'),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::{EnhancedCode, Enqueue};

    use super::*;
    use crate::format::status_record;
    use crate::status::RecipientStatus;
    use crate::testing::{envelope, names, sample_content};
    use crate::{Queue, QueueSettings};

    /// A queued message's file bytes, and its id.
    async fn queued(dir: &Path, rcpts: &[&str]) -> (QueueId, Vec<u8>) {
        let q = Queue::open(dir).unwrap();
        let id = q.new_id();
        q.enqueue(id.clone(), envelope(rcpts), sample_content())
            .await
            .unwrap();
        let bytes = fs::read(dir.join("active").join(id.as_str())).unwrap();
        (id, bytes)
    }

    #[tokio::test]
    async fn truncated_files_go_to_corrupt() {
        let src = tempfile::tempdir().unwrap();
        let (id, bytes) = queued(src.path(), &["bob@example.net"]).await;
        for cut in 0..bytes.len() {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("active")).unwrap();
            fs::write(dir.path().join("active").join(id.as_str()), &bytes[..cut]).unwrap();
            Queue::open_with(dir.path(), QueueSettings::default()).unwrap();
            assert!(names(&dir.path().join("active")).is_empty(), "cut {cut}");
            assert_eq!(
                names(&dir.path().join("corrupt")),
                [id.to_string()],
                "cut {cut}"
            );
        }
    }

    #[tokio::test]
    async fn a_file_cut_or_zeroed_before_its_end_is_incomplete_a_damaged_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (_, bytes) = queued(dir.path(), &["bob@example.net"]).await;
        for cut in 0..bytes.len() {
            assert!(incomplete(&bytes[..cut]), "cut {cut}");
            let mut zeroed = bytes[..cut].to_vec();
            zeroed.resize(bytes.len(), 0);
            assert!(incomplete(&zeroed), "zeros from {cut}");
        }
        assert!(!incomplete(&bytes));
        let mut other = bytes.clone();
        other[0] = b'X';
        assert!(!incomplete(&other));
        let mut marker = bytes.clone();
        let n = marker.len();
        marker[n - 3] = b'#';
        assert!(!incomplete(&marker));
    }

    #[tokio::test]
    async fn garbage_and_stray_names_go_to_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        Queue::open(dir.path()).unwrap();
        fs::write(
            dir.path().join("deferred/ABCDEF123456"),
            b"\xff\xfe garbage",
        )
        .unwrap();
        fs::write(dir.path().join("active/notes.txt~"), b"x").unwrap();
        fs::write(dir.path().join("corrupt/ABCDEF123456"), b"older").unwrap();
        Queue::open(dir.path()).unwrap();
        assert!(names(&dir.path().join("deferred")).is_empty());
        assert!(names(&dir.path().join("active")).is_empty());
        assert_eq!(
            names(&dir.path().join("corrupt")),
            ["ABCDEF123456", "ABCDEF123456.1", "notes.txt~"]
        );
    }

    /// A message under another name in `active/`: what a crash can
    /// leave of one written over a spare (spare.rs). With its checksum it
    /// is put back under its id; without one (a file of an older
    /// version, or anything else) it is not trusted.
    #[tokio::test]
    async fn a_file_under_another_name_is_put_back_if_summed_else_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (id, bytes) = queued(dir.path(), &["bob@example.net"]).await;
        let active = dir.path().join("active");
        fs::rename(active.join(id.as_str()), active.join("ABCDEF123456")).unwrap();
        Queue::open(dir.path()).unwrap();
        assert_eq!(names(&active), [id.to_string()]);
        assert_eq!(fs::read(active.join(id.as_str())).unwrap(), bytes);
        assert!(names(&dir.path().join("corrupt")).is_empty());

        let unsummed = without_sum(&bytes);
        fs::remove_file(active.join(id.as_str())).unwrap();
        fs::write(active.join("ABCDEF123456"), &unsummed).unwrap();
        Queue::open(dir.path()).unwrap();
        assert!(names(&active).is_empty());
        assert_eq!(names(&dir.path().join("corrupt")), ["ABCDEF123456"]);
    }

    /// A queue file as a version without the `sum` record wrote it.
    fn without_sum(bytes: &[u8]) -> Vec<u8> {
        let line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let sum = line + bytes[line..].iter().position(|&b| b == b'\n').unwrap() + 1;
        assert!(bytes[line..].starts_with(b"sum "));
        [&bytes[..line], &bytes[sum..]].concat()
    }

    #[tokio::test]
    async fn incoming_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (id, bytes) = queued(dir.path(), &["bob@example.net"]).await;
        fs::write(dir.path().join("incoming/ABCDEF123456"), &bytes[..10]).unwrap();
        fs::write(dir.path().join("incoming").join(id.as_str()), &bytes).unwrap();
        Queue::open(dir.path()).unwrap();
        assert!(names(&dir.path().join("incoming")).is_empty());
        // The acknowledged copy in active/ stays.
        assert_eq!(names(&dir.path().join("active")), [id.to_string()]);
    }

    /// What `spare/` can hold after a machine crash (spare.rs): a
    /// delivered message under its own name (removed), a message written
    /// over a spare whose move into `active/` or `hold/` never reached the
    /// disk (put back there and delivered), one written over it only in
    /// part (never acknowledged: removed).
    #[tokio::test]
    async fn spares_are_removed_and_messages_written_over_them_put_back() {
        let src = tempfile::tempdir().unwrap();
        let (old, old_bytes) = queued(src.path(), &["bob@example.net"]).await;
        let (new, new_bytes) = queued(src.path(), &["carol@example.net"]).await;
        let q = Queue::open(src.path()).unwrap();
        let held_id = q.new_id();
        let mut held_env = envelope(&["dave@example.net"]);
        held_env.hold = true;
        q.enqueue(held_id.clone(), held_env, sample_content())
            .await
            .unwrap();
        let held = fs::read(src.path().join("hold").join(held_id.as_str())).unwrap();

        let dir = tempfile::tempdir().unwrap();
        Queue::open(dir.path()).unwrap();
        let spare = dir.path().join("spare");
        // The spare proper.
        fs::write(spare.join(old.as_str()), &old_bytes).unwrap();
        // Written over, synced, not moved: under the old message's name.
        fs::write(spare.join("ABCDEF000001"), &new_bytes).unwrap();
        fs::write(spare.join("ABCDEF000002"), &held).unwrap();
        // Written over in part: the new message's first bytes on the old
        // one's (the end marker where the new length says).
        let mut torn = new_bytes.clone();
        torn[200..260].copy_from_slice(&old_bytes[200..260]);
        assert_ne!(torn, new_bytes);
        fs::write(spare.join("ABCDEF000003"), &torn).unwrap();

        Queue::open(dir.path()).unwrap();
        assert!(names(&spare).is_empty());
        assert_eq!(names(&dir.path().join("active")), [new.to_string()]);
        assert_eq!(
            fs::read(dir.path().join("active").join(new.as_str())).unwrap(),
            new_bytes
        );
        assert_eq!(names(&dir.path().join("hold")), [held_id.to_string()]);
        assert!(names(&dir.path().join("corrupt")).is_empty());
    }

    /// A message found under another name whose id is already queued
    /// keeps nothing from being delivered twice: the stray copy goes to
    /// `corrupt/`.
    #[tokio::test]
    async fn a_stray_copy_of_a_queued_message_goes_to_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (id, bytes) = queued(dir.path(), &["bob@example.net"]).await;
        fs::write(dir.path().join("spare/ABCDEF000001"), &bytes).unwrap();
        Queue::open(dir.path()).unwrap();
        assert_eq!(names(&dir.path().join("active")), [id.to_string()]);
        assert_eq!(names(&dir.path().join("corrupt")), ["ABCDEF000001"]);
    }

    #[tokio::test]
    async fn finished_message_is_removed_and_torn_record_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (done, _) = queued(dir.path(), &["a@x.org"]).await;
        let (half, bytes) = queued(dir.path(), &["a@x.org", "b@x.org"]).await;
        let sent = RecipientStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: "delivered to maildir".to_owned(),
        };
        let path = dir.path().join("active").join(done.as_str());
        let mut f = fs::read(&path).unwrap();
        f.extend(status_record(0, &sent));
        fs::write(&path, f).unwrap();
        let path = dir.path().join("active").join(half.as_str());
        let mut f = bytes.clone();
        f.extend(status_record(0, &sent));
        let sound = f.len();
        f.extend_from_slice(b"D 1 se");
        fs::write(&path, f).unwrap();

        Queue::open(dir.path()).unwrap();
        assert_eq!(names(&dir.path().join("active")), [half.to_string()]);
        assert_eq!(fs::read(&path).unwrap().len(), sound);
    }
}
