//! The message file of an APPEND: written around the page cache where an
//! ordered journal makes that safe (the parent module's text), or through
//! it and fsynced, then moved into `cur/` without ever replacing a file.
//! Apart from [`Mailbox::append`] because it is the file-system half of a
//! save: it knows nothing of UIDs and is tested on a bare directory.
//!
//! [`Mailbox::append`]: crate::store::Mailbox::append

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use crate::dio;
use crate::fsync;

/// How the file was written, which decides what the commit must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Around the page cache (statx vouching for it) on a file system
    /// with an ordered journal: the list's commit makes it and its name
    /// durable.
    Direct,
    /// Through the page cache and fsynced: its name in `cur/` needs an
    /// fsync of `cur/` (nothing at all in `mail_fsync = never`).
    Synced,
}

/// Writes `content` into the new file `path` (mode 0600, never replacing
/// one), with `mtime` as its modification time (IMAP's internal date) if
/// given. On error the caller removes `path`.
pub(crate) fn write(
    path: &Path,
    content: &[u8],
    mtime: Option<SystemTime>,
) -> io::Result<(File, Written)> {
    let dir = path.parent().unwrap_or(path);
    let direct_dir = if fsync::messages() && ordered_journal(dir) {
        dio::Dir::of(dir).ok()
    } else {
        None
    };
    // A directory statx said no for is not tried again (`dio`).
    if let Some(d) = direct_dir
        && dio::known(d) != Some(None)
    {
        match direct(path, content, mtime, |file| dio::for_file(d, file)) {
            Ok(Some(file)) => return Ok((file, Written::Direct)),
            // statx did not vouch for a direct write (the file system
            // would buffer it, or its alignment is not met), or the file
            // system refused it (`EINVAL`): the page cache instead. A
            // file `direct` made is reused, emptied, so the name stays ours.
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    let file = buffered(path, content, mtime)?;
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
fn buffered(path: &Path, content: &[u8], mtime: Option<SystemTime>) -> io::Result<File> {
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
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
    file.write_all(content)?;
    if let Some(t) = mtime {
        file.set_modified(t)?;
    }
    Ok(file)
}

/// The `O_DIRECT` write: `content` padded with zeros to whole blocks of
/// the alignment `align` tells for the new file (`None`: no direct write,
/// the empty file is left to [`buffered`]) in a buffer aligned the same,
/// written at once, the file then cut to its length.
fn direct(
    path: &Path,
    content: &[u8],
    mtime: Option<SystemTime>,
    align: impl FnOnce(&File) -> Option<usize>,
) -> io::Result<Option<File>> {
    // The flag's bits fit an i32 (`O_DIRECT` is 0o40000 or so).
    let flags = i32::try_from(rustix::fs::OFlags::DIRECT.bits()).unwrap_or(0);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(flags)
        .open(path)?;
    let Some(align) = align(&file) else {
        return Ok(None);
    };
    let padded = content.len().div_ceil(align) * align;
    let mut buffer = vec![0u8; padded + align];
    let start = buffer.as_ptr().align_offset(align);
    let Some(block) = buffer.get_mut(start..start + padded) else {
        return Err(io::Error::from_raw_os_error(
            rustix::io::Errno::INVAL.raw_os_error(),
        ));
    };
    block[..content.len()].copy_from_slice(content);
    file.write_all(block)?;
    if padded != content.len() {
        file.set_len(content.len() as u64)?;
    }
    if let Some(t) = mtime {
        file.set_modified(t)?;
    }
    Ok(Some(file))
}

/// Moves the written file from `tmp` to its name in `cur/` without ever
/// replacing a file there (`RENAME_NOREPLACE`; a hard link and an unlink
/// where the file system lacks it): one directory entry made, none left
/// behind in `tmp/`.
pub(crate) fn publish(tmp: &Path, target: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, tmp, CWD, target, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            fs::hard_link(tmp, target)?;
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::dio::ALIGN;

    #[test]
    fn writes_exact_bytes_and_date_at_every_length() {
        let dir = tempfile::tempdir().unwrap();
        let date = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for (i, len) in [1, 4095, 4096, 4097, 100_000].into_iter().enumerate() {
            let content: Vec<u8> = (0..len).map(|n| b'a' + (n % 26) as u8).collect();
            let path = dir.path().join(format!("m{i}"));
            let (file, how) = write(&path, &content, Some(date)).unwrap();
            drop(file);
            assert_eq!(fs::read(&path).unwrap(), content, "{len}");
            let meta = fs::metadata(&path).unwrap();
            assert_eq!(meta.modified().unwrap(), date);
            assert!(matches!(how, Written::Direct | Written::Synced));
            // The O_DIRECT write itself, whatever this file system is, at
            // the page size and at a larger alignment.
            for align in [ALIGN, 4 * ALIGN] {
                let direct_path = dir.path().join(format!("d{i}-{align}"));
                let file = direct(&direct_path, &content, Some(date), |_| Some(align));
                drop(file.unwrap().unwrap());
                assert_eq!(fs::read(&direct_path).unwrap(), content, "{len}");
                let meta = fs::metadata(&direct_path).unwrap();
                assert_eq!(meta.modified().unwrap(), date);
            }
        }
    }

    /// Where statx does not vouch for a direct write, the file `direct`
    /// made is left empty and the save goes through the page cache with
    /// an fsync, into that same file.
    #[test]
    fn a_file_statx_does_not_vouch_for_is_written_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let refused = direct(&path, b"hello\r\n", None, |_| None).unwrap();
        assert!(refused.is_none());
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        drop(buffered(&path, b"hello\r\n", None).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"hello\r\n");
    }

    /// On this machine, `write` takes the direct path exactly when the
    /// file system has an ordered journal and statx vouches for it.
    #[test]
    fn write_is_direct_only_where_statx_vouches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let (file, how) = write(&path, b"x\r\n", None).unwrap();
        let reported = dio::probe(&file);
        let vouched = dio::alignment(reported).is_some();
        // Shown for runs with TMPDIR on other file systems.
        eprintln!("statx: {reported:?}, written: {how:?}");
        let expected = if fsync::messages() && ordered_journal(dir.path()) && vouched {
            Written::Direct
        } else {
            Written::Synced
        };
        assert_eq!(how, expected);
    }

    #[test]
    fn publish_never_replaces_and_leaves_nothing_in_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "new").unwrap();
        fs::write(&b, "old").unwrap();
        assert!(publish(&a, &b).is_err());
        assert_eq!(fs::read(&b).unwrap(), b"old");
        fs::remove_file(&b).unwrap();
        publish(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"new");
    }
}
