//! A message's new file: written in `tmp/`, made complete on disk in the
//! cheapest way that keeps the Maildir rule, and moved into `new/` or
//! `cur/` without ever replacing a file there. Local delivery
//! ([`crate::Maildir`]) and IMAP APPEND (`save`) both write through it.
//!
//! The Maildir rule is that a message is complete on disk before its name
//! in `new/` or `cur/` can be: readers (IMAP, POP3, Dovecot, mutt) see a
//! name at once, and a crash must never show them half a message. The
//! classic way is an fsync of the file in `tmp/`, then the rename, then an
//! fsync of the directory. On ext4 with a journal each of those fsyncs
//! waits for a journal commit (an fsync of a directory commits whatever is
//! pending, other sessions' changes too), so a message waited for two
//! commits in a row.
//!
//! Where the file system commits metadata through a journal, in order
//! (ext4 with a journal, XFS: [`ordered_journal`]), the file is written
//! with `O_DIRECT` instead: the write returns once the device has the
//! data, with the blocks allocated (and ext4's unwritten extents
//! converted) in the journal transaction open at that moment. The rename
//! comes after it, so it lands in the same transaction or a later one;
//! transactions commit in order, each after a flush of the device cache,
//! so no commit can publish the name without the blocks, their data and
//! the file's size. The directory's fsync (shared by a batch of
//! deliveries, or the APPEND's UID list commit) is then the one commit
//! that makes it all durable: the file itself is never fsynced.
//!
//! A file system that takes `O_DIRECT` but would quietly write through the
//! page cache instead (ext4 with `data=journal`, inline data, verity, or
//! encryption without inline crypto) says so in `statx`'s
//! `STATX_DIOALIGN` (Linux 6.1+); such a file, and one that refuses
//! `O_DIRECT` (`EINVAL`), is written the classic way. So is every file
//! elsewhere (ext4 without a journal, tmpfs, btrfs, network file systems);
//! with `mail_fsync = never` nothing is fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use rustix::io::Errno;

use crate::fsync;

/// Message files are the user's alone, as Dovecot creates them.
const FILE_MODE: u32 = 0o600;

/// The alignment `O_DIRECT` wants of buffer, length and offset: the page
/// size, a multiple of every block size Linux file systems use.
const ALIGN: usize = 4096;

/// How the file was written, which decides what the commit must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Around the page cache on a file system with an ordered journal:
    /// the commit that makes its name durable makes it durable too.
    Direct,
    /// Through the page cache and fsynced (nothing at all in `mail_fsync
    /// = never`): its name needs an fsync of its directory.
    Synced,
}

/// Writes `parts`, one after another, into the new file `path` (mode
/// 0600, never replacing one), with `mtime` as its modification time
/// (IMAP's internal date) if given. On error the caller removes `path`.
pub(crate) fn write(
    path: &Path,
    parts: &[&[u8]],
    mtime: Option<SystemTime>,
) -> io::Result<(File, Written)> {
    let dir = path.parent().unwrap_or(path);
    if fsync::messages() && ordered_journal(dir) {
        match direct(path, parts, mtime) {
            Ok(file) => return Ok((file, Written::Direct)),
            // Refused by the file system: the page cache instead. A file
            // `direct` made is reused, emptied, so the name stays ours.
            Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    let file = buffered(path, parts, mtime)?;
    fsync::file(&file)?;
    Ok((file, Written::Synced))
}

/// Whether the file system holding `dir` commits metadata through a
/// journal, in order, each commit after a flush of the device cache:
/// XFS, and ext4 unless it was made without a journal (its
/// `/sys/fs/ext4/DEV/journal_task` says `<none>`). Anything else, or what
/// cannot be told, is not. Asked once per device.
pub(crate) fn ordered_journal(dir: &Path) -> bool {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static KNOWN: OnceLock<Mutex<HashMap<u64, bool>>> = OnceLock::new();
    #[cfg(test)]
    if let Some(forced) = test::FORCE_JOURNAL.with(std::cell::Cell::get) {
        return forced;
    }
    let Ok(dev) = fs::metadata(dir).map(|m| m.dev()) else {
        return false;
    };
    let known = KNOWN.get_or_init(Mutex::default);
    if let Some(&ordered) = known
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&dev)
    {
        return ordered;
    }
    const XFS: u64 = 0x5846_5342;
    const EXT4: u64 = 0xef53;
    #[allow(clippy::cast_sign_loss, reason = "a magic number, not a quantity")]
    let ordered = match rustix::fs::statfs(dir).map(|s| s.f_type as u64) {
        Ok(XFS) => true,
        Ok(EXT4) => {
            let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
            fs::read_link(format!("/sys/dev/block/{major}:{minor}"))
                .ok()
                .and_then(|link| Some(link.file_name()?.to_str()?.to_owned()))
                .and_then(|name| {
                    fs::read_to_string(format!("/sys/fs/ext4/{name}/journal_task")).ok()
                })
                .is_some_and(|task| !task.contains("none"))
        }
        _ => false,
    };
    known
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(dev, ordered);
    ordered
}

/// The page-cache write: a new file, or the one a refused direct write
/// left (emptied first).
fn buffered(path: &Path, parts: &[&[u8]], mtime: Option<SystemTime>) -> io::Result<File> {
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(0)?;
            file
        }
        Err(e) => return Err(e),
    };
    write_parts(&mut file, parts)?;
    if let Some(t) = mtime {
        file.set_modified(t)?;
    }
    Ok(file)
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

/// The `O_DIRECT` write: `parts` copied one after another into an aligned
/// buffer padded with zeros to whole blocks, written at once, the file
/// then cut to its length. `EINVAL` where the file system would not
/// really write around the page cache.
fn direct(path: &Path, parts: &[&[u8]], mtime: Option<SystemTime>) -> io::Result<File> {
    // The flag's bits fit an i32 (`O_DIRECT` is 0o40000 or so).
    let flags = i32::try_from(rustix::fs::OFlags::DIRECT.bits()).unwrap_or(0);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(flags)
        .open(path)?;
    if !direct_io_honoured(&file) {
        return Err(Errno::INVAL.into());
    }
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let padded = len.div_ceil(ALIGN) * ALIGN;
    let mut buffer = vec![0u8; padded + ALIGN];
    let start = buffer.as_ptr().align_offset(ALIGN);
    let Some(block) = buffer.get_mut(start..start + padded) else {
        return Err(Errno::INVAL.into());
    };
    let mut at = 0;
    for part in parts {
        if let Some(dest) = block.get_mut(at..at + part.len()) {
            dest.copy_from_slice(part);
        }
        at += part.len();
    }
    file.write_all(block)?;
    if padded != len {
        file.set_len(len as u64)?;
    }
    if let Some(t) = mtime {
        file.set_modified(t)?;
    }
    Ok(file)
}

/// Whether a write to `file`, opened with `O_DIRECT`, really goes around
/// the page cache with [`ALIGN`]ed buffers: what `statx`'s
/// `STATX_DIOALIGN` says (0: not at all, as ext4 with `data=journal`;
/// more than a page: our writes would be refused). A kernel or file
/// system that does not say (before Linux 6.1) is taken at its word: it
/// took the flag.
fn direct_io_honoured(file: &File) -> bool {
    use rustix::fs::{AtFlags, StatxFlags, statx};
    let Ok(stat) = statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) else {
        return true;
    };
    if stat.stx_mask & StatxFlags::DIOALIGN.bits() == 0 {
        return true;
    }
    let fits = |align: u32| align != 0 && ALIGN.is_multiple_of(align as usize);
    fits(stat.stx_dio_mem_align) && fits(stat.stx_dio_offset_align)
}

/// Moves the written file from `tmp` to `target` without ever replacing
/// a file there: one `renameat2(RENAME_NOREPLACE)` where the file system
/// has it (one system call for what the Maildir spec's link and unlink
/// do), else a hard link as the spec says and an unlink, or, where the
/// file system has no hard links either, a rename after checking that
/// `target` is free. One directory entry made, none left in `tmp/`.
pub(crate) fn publish(tmp: &Path, target: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, tmp, CWD, target, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        // Not supported here (an old kernel, some file systems): link.
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
        Err(e) => return Err(e.into()),
    }
    match fs::hard_link(tmp, target) {
        Ok(()) => {
            // The message is in place: tmp/ is only a cleanup now (tmp/
            // is not fsynced: a file a crash brings back there is a
            // leftover that Maildir readers delete after 36 hours, as
            // Dovecot does).
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => {
            if fs::symlink_metadata(target).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", target.display()),
                ));
            }
            fs::rename(tmp, target)
        }
    }
}

#[cfg(test)]
pub(crate) mod test {
    use std::cell::Cell;

    thread_local! {
        /// What [`super::ordered_journal`] answers on this thread, when
        /// set: the tests' file systems (tmpfs, ext4 without a journal)
        /// would otherwise never take the `O_DIRECT` path.
        pub(crate) static FORCE_JOURNAL: Cell<Option<bool>> = const { Cell::new(None) };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const SIZES: [usize; 5] = [1, 4095, 4096, 4097, 100_000];

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|n| b'a' + (n % 26) as u8).collect()
    }

    #[test]
    fn writes_exact_bytes_and_date_at_every_length() {
        let dir = tempfile::tempdir().unwrap();
        let date = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for (i, len) in SIZES.into_iter().enumerate() {
            let content = content(len);
            let path = dir.path().join(format!("m{i}"));
            let (file, how) = write(&path, &[&content], Some(date)).unwrap();
            drop(file);
            assert_eq!(fs::read(&path).unwrap(), content, "{len}");
            let meta = fs::metadata(&path).unwrap();
            assert_eq!(meta.modified().unwrap(), date);
            assert!(matches!(how, Written::Direct | Written::Synced));
            // The O_DIRECT write itself, whatever this file system is.
            let direct_path = dir.path().join(format!("d{i}"));
            drop(direct(&direct_path, &[&content], Some(date)).unwrap());
            assert_eq!(fs::read(&direct_path).unwrap(), content, "{len}");
            let meta = fs::metadata(&direct_path).unwrap();
            assert_eq!(meta.modified().unwrap(), date);
        }
    }

    /// Parts cut anywhere, across the block boundaries too, come out
    /// whole and in order, written either way.
    #[test]
    fn parts_are_concatenated_across_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        for (i, len) in SIZES.into_iter().enumerate() {
            let content = content(len);
            let cuts = [0, 1, len / 2, len.saturating_sub(1), len];
            for (j, cut) in cuts.into_iter().enumerate() {
                let (head, tail) = content.split_at(cut);
                let parts: [&[u8]; 4] = [b"", head, b"", tail];
                let d = dir.path().join(format!("d{i}-{j}"));
                drop(direct(&d, &parts, None).unwrap());
                assert_eq!(fs::read(&d).unwrap(), content, "{len} cut at {cut}");
                let b = dir.path().join(format!("b{i}-{j}"));
                drop(buffered(&b, &parts, None).unwrap());
                assert_eq!(fs::read(&b).unwrap(), content, "{len} cut at {cut}");
            }
        }
    }

    #[test]
    fn never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        fs::write(&path, "old").unwrap();
        assert_eq!(
            direct(&path, &[b"new"], None).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        test::FORCE_JOURNAL.with(|f| f.set(Some(true)));
        let err = write(&path, &[b"new"], None).unwrap_err();
        test::FORCE_JOURNAL.with(|f| f.set(None));
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    /// tmpfs has no journal: the classic order (page cache, fsync).
    #[test]
    fn no_journal_takes_the_fsync_path() {
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            return; // no tmpfs here (not Linux as we know it)
        };
        assert!(!ordered_journal(dir.path()));
        let path = dir.path().join("m");
        let (_, how) = write(&path, &[b"A: 1\r\n", b"body"], None).unwrap();
        assert_eq!(how, Written::Synced);
        assert_eq!(fs::read(&path).unwrap(), b"A: 1\r\nbody");
    }

    /// Where `TMPDIR` is on ext4 with a journal or XFS (as with
    /// `TMPDIR=/mnt/ext4 cargo test`), the real detection takes the
    /// `O_DIRECT` path; elsewhere there is nothing to see.
    #[test]
    fn an_ordered_journal_takes_the_direct_path() {
        let dir = tempfile::tempdir().unwrap();
        if !ordered_journal(dir.path()) {
            return;
        }
        let path = dir.path().join("m");
        let (_, how) = write(&path, &[b"A: 1\r\n", b"body"], None).unwrap();
        assert_eq!(how, Written::Direct);
        assert_eq!(fs::read(&path).unwrap(), b"A: 1\r\nbody");
    }

    #[test]
    fn publish_never_replaces_and_leaves_nothing_in_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "new").unwrap();
        fs::write(&b, "old").unwrap();
        let err = publish(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"old");
        assert_eq!(fs::read(&a).unwrap(), b"new");
        fs::remove_file(&b).unwrap();
        publish(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"new");
    }
}
