//! Reading a file as root only when nobody but root could have put it
//! where the configuration says: the check behind
//! [`crate::files::read_named`] and the trust in the config file itself.
//! A daemon that owns a directory on the way (the data directory) could
//! otherwise swap a configured file for a link to `/etc/shadow`; this is
//! OpenSSH's `StrictModes` walk, with links followed by hand.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// How many symbolic links a path may go through (the kernel's own
/// bound, `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Why a file is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsafe {
    /// It does not exist.
    Missing,
    /// It may not be read this way: why (not worth retrying).
    Refused(String),
    /// Reading it failed: why (worth retrying).
    Failed(String),
}

/// Reads `path` as root, at most `max` bytes, only when nobody but root
/// could have put it there: the file and every directory and symbolic
/// link on the way (followed by hand) are owned by root, each directory
/// is not writable by group or others (or is sticky, as /tmp: then no one
/// else can swap root's entries), and the file has one link. A daemon
/// that owns a directory on the way (the data directory) could otherwise
/// swap the configured file for a link to `/etc/shadow`.
pub fn read_secure(path: &Path, max: usize) -> Result<(Metadata, Vec<u8>), Unsafe> {
    let (resolved, meta) = resolve(path)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&resolved)
        .map_err(|e| Unsafe::Failed(format!("{}: {e}", path.display())))?;
    read_bounded(file, &meta, path, max).map(|c| (meta, c))
}

/// Reads the opened `file`, which must be the `seen` one (a swap between
/// the check and the open is refused), at most `max` bytes. Also the
/// daemon's own read of a `.forward` (host/delivery forward.rs).
pub fn read_bounded(
    file: File,
    seen: &Metadata,
    path: &Path,
    max: usize,
) -> Result<Vec<u8>, Unsafe> {
    let shown = path.display();
    let meta = file
        .metadata()
        .map_err(|e| Unsafe::Failed(format!("{shown}: {e}")))?;
    if (meta.dev(), meta.ino()) != (seen.dev(), seen.ino()) {
        return Err(Unsafe::Failed(format!(
            "{shown}: changed while it was read"
        )));
    }
    let mut contents = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit)
        .read_to_end(&mut contents)
        .map_err(|e| Unsafe::Failed(format!("{shown}: {e}")))?;
    if contents.len() > max {
        return Err(Unsafe::Refused(format!("{shown}: larger than {max} bytes")));
    }
    Ok(contents)
}

/// Follows `path` component by component with `lstat`, checking what
/// [`read_secure`] says: the resolved path (no link left) and its
/// metadata, or why not.
pub(crate) fn resolve(path: &Path) -> Result<(PathBuf, Metadata), Unsafe> {
    let shown = path.display();
    let refused = |why: String| Unsafe::Refused(format!("{shown}: {why}"));
    if !path.is_absolute() {
        return Err(refused("not an absolute path".to_owned()));
    }
    let mut todo: Vec<OsString> = Vec::new();
    push(&mut todo, path);
    let mut at = PathBuf::from("/");
    let top = std::fs::symlink_metadata(&at).map_err(|e| Unsafe::Failed(e.to_string()))?;
    safe_dir(&at, &top).map_err(refused)?;
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unsafe::Missing),
            Err(e) => return Err(Unsafe::Failed(format!("{shown}: {}: {e}", next.display()))),
        };
        if meta.uid() != 0 {
            return Err(refused(format!(
                "{} is owned by uid {}, not by root",
                next.display(),
                meta.uid()
            )));
        }
        let kind = meta.file_type();
        if kind.is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(refused("too many symbolic links".to_owned()));
            }
            let target =
                std::fs::read_link(&next).map_err(|e| Unsafe::Failed(format!("{shown}: {e}")))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            push(&mut todo, &target);
        } else if kind.is_dir() {
            safe_dir(&next, &meta).map_err(refused)?;
            at = next;
        } else if !todo.is_empty() {
            return Err(refused(format!("{} is not a directory", next.display())));
        } else if !kind.is_file() {
            return Err(refused("not a regular file".to_owned()));
        } else if meta.nlink() != 1 {
            return Err(refused("a file with more than one link".to_owned()));
        } else {
            return Ok((next, meta));
        }
    }
    Err(refused("a directory, not a file".to_owned()))
}

/// Pushes `path`'s names on `todo` so that the first is popped first.
fn push(todo: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    todo.extend(names.into_iter().rev());
}

/// A directory only root may change: root's, and not writable by group
/// or others unless sticky (the entries checked next are root's, and in
/// a sticky directory only their owner may rename or remove them).
fn safe_dir(dir: &Path, meta: &Metadata) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!("{} is not owned by root", dir.display()));
    }
    if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(format!("{} is writable by group or others", dir.display()));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn reads_are_bounded() {
        if !rustix::process::geteuid().is_root() {
            // Nothing is safe but root's files: the test needs root.
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        std::fs::write(&path, "abc").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secure(&path, 3).unwrap().1, b"abc");
        assert!(
            matches!(read_secure(&path, 2), Err(Unsafe::Refused(w)) if w.contains("larger than 2"))
        );
    }
}
