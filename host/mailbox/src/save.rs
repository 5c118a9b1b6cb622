//! IMAP APPEND: [`Mailbox::append`] saves a message with one new file and
//! one journal commit, the commit of its UID, which makes the file, its
//! name in `cur/` and the UID durable together.
//!
//! The Maildir rule is that a message is complete on disk before its name
//! in `cur/` can be: a crash must never show half a message. The classic
//! way is an fsync of the file in `tmp/` before the rename, then the
//! rename, the list's fsync and an fsync of `cur/`. On ext4 with a
//! journal every one of those fsyncs waits for a journal commit (an fsync
//! of a directory commits whatever is pending, other sessions' changes
//! too), so an APPEND waited for two or three commits in a row.
//!
//! Where the file system commits metadata through a journal, in order
//! (ext4 with a journal, XFS: [`ordered_journal`]), the file is written
//! with `O_DIRECT` instead: the write returns once the device has the
//! data, with the blocks allocated (and ext4's unwritten extents
//! converted) in the journal transaction open at that moment. The rename
//! comes after it, so it lands in the same transaction or a later one;
//! transactions commit in order, each after a flush of the device cache,
//! so no commit can publish the name without the blocks and their data.
//! The list's fsync is then the one commit that makes the file, its name
//! in `cur/` and its UID durable together: nothing else is fsynced.
//!
//! That holds only if the write really went around the page cache: a file
//! system may accept `O_DIRECT` and buffer the write (ext4 does, for data
//! journaling, encryption, verity). `statx`'s `STATX_DIOALIGN` (Linux
//! 6.1+) says whether it will and with what alignment, asked once per
//! directory ([`crate::dio`]); without that answer the classic order is
//! kept.
//!
//! Elsewhere (ext4 without a journal, tmpfs, btrfs, network file systems,
//! where `O_DIRECT` is refused or statx does not vouch for it) the classic
//! order is kept; with `mail_fsync = never` nothing is fsynced.
//!
//! [`ordered_journal`]: file::ordered_journal

use std::fs;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::flags::Flags;
use crate::fsync;
use crate::store::Mailbox;
use crate::uidlist::Lock;
use crate::unique::unique_name;

mod file;

use file::{Written, publish, write};

impl Mailbox {
    /// Stores a message (IMAP APPEND) with `flags` and internal date
    /// `date` (seconds; now if `None`) and returns the mailbox's
    /// UIDVALIDITY and the message's UID, once the message, its name in
    /// `cur/` and its UID are all on disk.
    ///
    /// One new file, renamed (never linked, so nothing is left to unlink)
    /// from `tmp/` into `cur/` under the list's lock; on a file system
    /// with an ordered journal, one journal commit, the list's fsync,
    /// makes all three durable (this module's text); elsewhere the file
    /// is fsynced before the rename and `cur/` after the list.
    ///
    /// A crash at any step leaves the message in `tmp/` (never listed), or
    /// complete in `cur/` without a UID (the next sync gives it the next
    /// one: no hole below UIDNEXT), or listed. A failure after the rename
    /// takes the file out of `cur/` again, so a client told NO does not
    /// find the message anyway.
    pub fn append(
        &self,
        content: &[u8],
        flags: &Flags,
        date: Option<i64>,
    ) -> io::Result<(u32, u32)> {
        let base = unique_name(content.len() as u64);
        let info = self.info_for(flags)?;
        let tmp = self.path.join("tmp").join(&base);
        let target = self.path.join("cur").join(format!("{base}:{info}"));
        let written = (|| {
            let (file, how) = write(&tmp, content, date.map(time_of))?;
            let lock = Lock::acquire(&self.path)?;
            publish(&tmp, &target)?;
            Ok((file, how, lock))
        })();
        let (how, lock) = match written {
            Ok((_file, how, lock)) => (how, lock),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let cur = self.path.join("cur");
        let saved = self.assign_saved(lock, &base, || match how {
            // The list's commit covers the name (and the file) too.
            Written::Direct => Ok(()),
            Written::Synced => fsync::dir(&cur),
        });
        if saved.is_err() {
            // No UID was given (the list was not replaced): nothing names
            // the file, and the client is told NO.
            let _ = fs::remove_file(&target);
        }
        saved
    }

    /// Gives the message just saved as `base` the next UID without
    /// listing `cur/`; `name_durable` (what makes its name in `cur/`
    /// durable beyond the list's own fsync) runs after that fsync and
    /// before the list is published: other new files get their UIDs at
    /// the next sync, and the MODSEQ and \Recent of this one are settled
    /// there too (it is above the state's last UID, so it is recent). A
    /// missing or damaged list takes the full path, which rebuilds it
    /// (and commits it).
    fn assign_saved(
        &self,
        lock: Lock,
        base: &str,
        name_durable: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<(u32, u32)> {
        #[cfg(test)]
        fail_point::hit("published")?;
        let Some(mut list) = crate::uidlist::read(&self.path)? else {
            drop(lock);
            name_durable()?;
            let snapshot = self.peek()?;
            let uid = snapshot
                .messages
                .iter()
                .find(|m| m.base == base)
                .map(|m| m.uid)
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "message vanished after saving")
                })?;
            return Ok((snapshot.validity, uid));
        };
        let uid = list.next;
        list.entries.push((uid, base.to_owned()));
        list.next = uid.saturating_add(1);
        lock.commit_after(&list, || {
            #[cfg(test)]
            fail_point::hit("list fsynced")?;
            name_durable()
        })?;
        Ok((list.validity, uid))
    }
}

/// The internal date `secs` (seconds since the epoch, maybe negative) as
/// a file time.
fn time_of(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
}

/// Failures injected between the steps of an APPEND, for the tests: a
/// crash (a panic: no cleanup runs, as when the process is killed; only
/// the lock's own drop does) or an error.
#[cfg(test)]
pub(crate) mod fail_point {
    use std::cell::Cell;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Fail {
        Crash,
        Error,
    }

    thread_local! {
        static AT: Cell<Option<(&'static str, Fail)>> = const { Cell::new(None) };
    }

    pub(crate) fn set(at: Option<(&'static str, Fail)>) {
        AT.with(|a| a.set(at));
    }

    pub(crate) fn hit(here: &str) -> std::io::Result<()> {
        match AT.with(Cell::get) {
            Some((at, Fail::Crash)) if at == here => panic!("crash injected at {here}"),
            Some((at, Fail::Error)) if at == here => {
                Err(std::io::Error::other(format!("failure injected at {here}")))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// The `imap::mbsync_round_trip` flake: an empty folder without a UID
    /// list drew a new UIDVALIDITY (the clock's seconds) at every sync, so
    /// an APPEND a second after the SELECT changed it under the session.
    /// The first sync writes the list; the folder keeps its UIDVALIDITY.
    #[test]
    fn an_empty_folder_keeps_its_uidvalidity_from_select_to_append() {
        let dir = tempfile::tempdir().unwrap();
        let mb = Mailbox::open(dir.path()).unwrap();
        let selected = mb.sync().unwrap();
        assert!(selected.messages.is_empty());
        assert!(dir.path().join(crate::uidlist::FILE).exists());
        // Past the clock's next second, where a fresh list would differ.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(mb.peek().unwrap().validity, selected.validity);
        assert_eq!(mb.sync().unwrap().validity, selected.validity);
        let (validity, uid) = mb.append(b"hi\r\n", &Flags::new(), None).unwrap();
        assert_eq!((validity, uid), (selected.validity, 1));
        assert_eq!(mb.sync().unwrap().validity, selected.validity);
    }

    /// Errors and crashes between the steps of an APPEND: a client told
    /// NO finds nothing; a crash leaves the message whole in `cur/` (the
    /// next sync gives it the next UID) and never a partial one, a file in
    /// `tmp/`, a lock, or a UID given twice; UIDNEXT stays above them all.
    #[test]
    fn a_crash_or_failure_mid_append_leaves_no_partial_message_or_reused_uid() {
        use fail_point::Fail;
        let dir = tempfile::tempdir().unwrap();
        let mb = Mailbox::open(dir.path()).unwrap();
        let (validity, first) = mb.append(b"one\r\n", &Flags::new(), None).unwrap();
        assert_eq!(first, 1);
        for at in ["published", "list fsynced"] {
            fail_point::set(Some((at, Fail::Error)));
            let err = mb.append(b"refused\r\n", &Flags::new(), None).unwrap_err();
            assert!(err.to_string().contains(at), "{err}");
        }
        fail_point::set(None);
        assert_eq!(files(&dir.path().join("cur")).len(), 1);
        let big: Vec<u8> = (0..10_000).map(|n| b'a' + (n % 26) as u8).collect();
        for at in ["published", "list fsynced"] {
            fail_point::set(Some((at, Fail::Crash)));
            let crashed =
                std::panic::catch_unwind(|| mb.append(&big, &Flags::new(), Some(1_000_000_000)));
            assert!(crashed.is_err(), "{at}");
        }
        fail_point::set(None);
        assert!(files(&dir.path().join("tmp")).is_empty());
        assert!(!dir.path().join(crate::uidlist::LOCK).exists());
        // After the "restart": both crashed saves are whole and get the
        // next UIDs; the refused ones left no hole, no UID is reused.
        let s = mb.sync().unwrap();
        assert_eq!(s.validity, validity);
        let uids: Vec<u32> = s.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, [1, 2, 3]);
        assert_eq!(s.next, 4);
        for m in &s.messages[1..] {
            assert_eq!(mb.read(m).unwrap().unwrap(), big);
            assert_eq!(mb.internal_date(m).unwrap(), 1_000_000_000);
        }
        let (again, uid) = mb.append(b"after\r\n", &Flags::new(), None).unwrap();
        assert_eq!((again, uid), (validity, 4));
        assert_eq!(mb.sync().unwrap().next, 5);
    }
}
