//! Spare queue files: the file of a finished message kept in `spare/`
//! under the queue directory and written over by the next new message,
//! instead of one file unlinked and another created.
//!
//! Why: on ext4 (and the other file systems that allocate at writeback)
//! most of what a queue file costs the kernel is its life cycle, not its
//! bytes: an inode allocated and freed, blocks allocated at writeback and
//! freed at the unlink, each a change to the journal. A file that is
//! written over in place keeps its inode and its blocks, so a new message
//! of the same size changes nothing in the file system's metadata but the
//! two names (bench/README.md, "Spare queue files", has the figures).
//! Postfix has no such thing; databases do the same with their log files
//! (PostgreSQL's recycled WAL segments).
//!
//! # Why a spare is safe
//!
//! A spare holds a message that was delivered. It lives in its own
//! directory, `spare/`, which no queue scan reads: it is never delivered
//! again from there, and `incoming/` keeps meaning "being written" for
//! whoever counts its files (a monitoring script, a test).
//! [`crate::spool::Spool`] writes a new message over it in full, cuts it
//! to the new length and `fdatasync`s it: from then on the file's data
//! and length are on disk, and the 250 may go. The file is then moved
//! into `active/` under the new queue id, and that move is *not* synced:
//! a new file waits for a shared fsync of `active/` before its 250
//! (crate::commit), a spare does not, which is one disk wait in a row
//! less (bench/README.md, "A spare's entry left unsynced").
//!
//! Why that is enough: the spare's inode is on disk under some name,
//! its first one made durable by the fsync of `active/` that acknowledged
//! its first message, every later one by a rename, which a crash applies
//! whole or not at all, in order (what journaling file systems do, and
//! what the queue's other moves already rest on: `Spool::move_to`). So
//! after a crash the synced message is
//! on disk under one of the names its file went through: its own id in
//! `active/` (or `hold/`), the spare's name in `spare/`, or the name of a
//! message the file held before, in `active/`. Each file says which
//! message it holds (its `id` record, covered by its checksum), and
//! start-up recovery moves a file whose id is not its name back under its
//! id before delivery starts (crate::recovery's spares.rs). What a crash
//! can leave in `spare/` otherwise, and why none of it is delivered:
//!
//! - the spare's own delivered message (its id is its name): removed;
//! - a mix of the old and the new message (a power cut before the
//!   `fdatasync` returned, so never acknowledged): its checksum fails;
//!   removed;
//! - the new message whole, its sync done or not: put back and
//!   delivered (without the 250 a duplicate at worst, as for a new file).
//!
//! A spare written over before the move of its last message out of
//! `active/` reached the disk may come back as the new message under the
//! old name in `active/`: the same rule puts it back under its id.
//!
//! Moving a finished file here is an unsynced rename, as the unlink it
//! replaces was: a crash may put it back in `active/` under its old name,
//! where recovery finds it finished and removes it, or delivers its last
//! recipients a second time (a duplicate, never a loss, as before), or,
//! if it was written over since, finds the new message in it and puts it
//! back under its id (above). A mix of the two there is never
//! acknowledged either, and goes to `corrupt/` by its checksum.
//!
//! Another process reading a queue file by its name (`postern queue list`
//! and `show`) may have opened it just before it became a spare and was
//! written over: `crate::inspect` counts what it read only if the file
//! still has that name afterwards, and otherwise finds the message gone.
//!
//! What is bounded: at most [`MAX_SPARES`] spares, each of at most
//! [`MAX_SPARE_LEN`] bytes, so spares hold a few megabytes of disk at
//! most; a larger or surplus file is unlinked as before.

use std::sync::{Mutex, PoisonError};

/// How many spares are kept: about the number of SMTP sessions writing at
/// once under load (20 in the benchmarks), with room.
pub(crate) const MAX_SPARES: usize = 64;

/// The largest file kept as a spare. Larger messages are rare, and their
/// cost is their bytes, not their inode.
pub(crate) const MAX_SPARE_LEN: u64 = 64 * 1024;

/// The directory of the spares, beside the queues.
pub(crate) const SPARE_DIR: &str = "spare";

/// The spares of one queue directory, by file name in `spare/` (the id
/// of the message each held last). Only the daemon keeps any: another process (an operator's `postern queue`)
/// starts with none and never adds one.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    names: Mutex<Vec<String>>,
}

impl Spares {
    /// A spare to write over, if there is one; it is the caller's until it
    /// is renamed away or [`Spares::put`] back.
    pub(crate) fn take(&self) -> Option<String> {
        self.lock().pop()
    }

    /// Whether a finished file of `len` bytes is to be kept as a
    /// spare: not when it is too large or there are enough spares.
    pub(crate) fn room_for(&self, len: u64) -> bool {
        len <= MAX_SPARE_LEN && self.lock().len() < MAX_SPARES
    }

    /// Adds a spare, once its file is in place. Beyond [`MAX_SPARES`]
    /// (a race of finishers) it is refused and the caller unlinks it.
    pub(crate) fn put(&self, name: String) -> Result<(), String> {
        let mut names = self.lock();
        if names.len() >= MAX_SPARES {
            return Err(name);
        }
        names.push(name);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A Vec of names stays whole whatever panicked while it was held.
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;
    use crate::spool::{QueueName, Spool};

    #[test]
    fn spares_are_bounded_in_number_and_size() {
        let spares = Spares::default();
        assert!(!spares.room_for(MAX_SPARE_LEN + 1));
        assert!(spares.room_for(MAX_SPARE_LEN));
        for n in 0..MAX_SPARES {
            spares.put(format!("{n}")).unwrap();
        }
        assert!(!spares.room_for(10));
        assert_eq!(spares.put("late".to_owned()), Err("late".to_owned()));
        assert_eq!(spares.take().as_deref(), Some("63"));
        assert!(spares.room_for(10));
    }

    /// A finished file is written over by the next message (same inode),
    /// cut to its length, and parses as that message alone; a spare that
    /// vanished or cannot be written, or a file kept open elsewhere,
    /// leaves a new file.
    #[test]
    fn a_finished_file_is_written_over_by_the_next_message() {
        use std::os::unix::fs::MetadataExt;

        use crate::format::parse;
        use crate::testing::{envelope, names};

        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::create(dir.path()).unwrap();
        let write = |rcpts: &[&str], content: &[u8]| {
            let id = crate::id::next_id();
            let len = spool
                .write_new(&id, &envelope(rcpts), content, QueueName::Active)
                .unwrap();
            let path = spool.path(QueueName::Active, &id);
            let meta = fs::metadata(&path).unwrap();
            assert_eq!(meta.len(), len);
            let parsed = parse(&fs::read(&path).unwrap()).unwrap();
            assert_eq!(parsed.message.id, id);
            assert_eq!(parsed.message.envelope.recipients.len(), rcpts.len());
            assert_eq!(parsed.message.content, content);
            (id, meta.ino())
        };
        let long = vec![b'x'; 9000];
        let (a, a_ino) = write(&["a@example.net", "b@example.net"], &long);
        spool
            .remove_finished(QueueName::Active, &a, Some(9000))
            .unwrap();
        assert_eq!(names(&spool.dir(QueueName::Active)), Vec::<String>::new());
        assert_eq!(names(&spool.spare_dir()), [a.to_string()]);
        assert!(names(&spool.dir(QueueName::Incoming)).is_empty());
        // Shorter than the spare: the old message's tail is cut off.
        let (b, b_ino) = write(&["c@example.net"], b"Subject: short\r\n\r\nhi\r\n");
        assert_eq!(b_ino, a_ino);
        assert!(names(&spool.spare_dir()).is_empty());
        spool
            .remove_finished(QueueName::Active, &b, Some(30))
            .unwrap();
        // Longer than the spare: it grows.
        let (c, c_ino) = write(&["d@example.net"], &long);
        assert_eq!(c_ino, a_ino);
        // Kept open elsewhere (`None`): unlinked, never a spare.
        spool.remove_finished(QueueName::Active, &c, None).unwrap();
        assert!(names(&spool.spare_dir()).is_empty());
        // (A new file may get the freed inode's number: not compared.)
        let (d, _) = write(&["e@example.net"], b"x");
        // A spare gone from spare/ (an operator cleaning up): the
        // message goes into a new file.
        spool
            .remove_finished(QueueName::Active, &d, Some(1))
            .unwrap();
        fs::remove_file(spool.spare_dir().join(d.as_str())).unwrap();
        let (e, _) = write(&["f@example.net"], b"y");
        // A spare that cannot be written over (here a directory has taken
        // its name): dropped, and the message goes into a new file too.
        spool
            .remove_finished(QueueName::Active, &e, Some(1))
            .unwrap();
        let spare = spool.spare_dir().join(e.as_str());
        fs::remove_file(&spare).unwrap();
        fs::create_dir(&spare).unwrap();
        write(&["f@example.net"], b"y");
        assert!(spare.is_dir());
        fs::remove_dir(&spare).unwrap();
        // Too large to keep.
        let (f, _) = write(&["g@example.net"], b"z");
        let big = MAX_SPARE_LEN + 1;
        spool
            .remove_finished(QueueName::Active, &f, Some(big))
            .unwrap();
        assert!(names(&spool.spare_dir()).is_empty());
    }
}
