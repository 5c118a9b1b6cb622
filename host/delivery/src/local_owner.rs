//! Writing a mailbox as its owner, never as root (Postfix's local(8)
//! switches to the recipient's uid and gid before it touches the
//! mailbox).
//!
//! A daemon running as root that delivers into the home of a system
//! account, or of a users-file entry with a uid, writes on a thread that
//! has dropped to the owner's uid and gid for good
//! ([`postern_auth::owner`], shared with POP3 and IMAP), so every file
//! the write makes is the owner's. A missing home of a users-file entry
//! is made for its owner first. A daemon that is not root writes as
//! itself.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Runs `write` as `ids` (uid, gid) when this process is root and `ids`
/// are given and not root's; else runs it here as it is. Blocking. The
/// one implementation, shared with POP3 and IMAP, is
/// [`postern_auth::owner::as_owner`].
pub(crate) use postern_auth::owner::as_owner;

/// Makes `home` for `ids` (uid, gid) when this process is root and it is
/// missing: its parents as the daemon (they are shared, such as
/// `virtual_mailbox_base/DOMAIN`), the home itself mode 0700 and owned by
/// the user, so that what is written in it next, as the user, can be.
/// Dovecot's passwd-file users get their home made the same way. A home
/// that exists is left as it is: if the user may not write it, the write
/// fails and says so. Blocking.
pub(crate) fn make_home_for(home: &Path, ids: Option<(u32, u32)>) -> io::Result<()> {
    let Some((uid, gid)) = ids.filter(|_| rustix::process::geteuid().is_root()) else {
        return Ok(());
    };
    if uid == 0 || home.exists() {
        return Ok(());
    }
    if let Some(parent) = home.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(home) {
        Ok(()) => std::os::unix::fs::chown(home, Some(uid), Some(gid)),
        // Made by a delivery running beside this one.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn a_missing_home_is_made_for_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("example.org/carol");
        make_home_for(&home, Some((4242, 4243))).unwrap();
        if !rustix::process::geteuid().is_root() {
            // Not root: nothing to make as anyone else.
            assert!(!home.exists());
            return;
        }
        let meta = std::fs::metadata(&home).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (4242, 4243, 0o700)
        );
        let parent = std::fs::metadata(home.parent().unwrap()).unwrap();
        assert_eq!((parent.uid(), parent.mode() & 0o777), (0, 0o755));
        // Written as the owner, into it.
        let target = home.join("Maildir");
        as_owner(Some((4242, 4243)), move || std::fs::create_dir(&target)).unwrap();
        assert_eq!(std::fs::metadata(home.join("Maildir")).unwrap().uid(), 4242);
        // An existing home is left alone; root's is never made.
        make_home_for(&home, Some((1, 1))).unwrap();
        assert_eq!(std::fs::metadata(&home).unwrap().uid(), 4242);
        let roots = dir.path().join("root");
        make_home_for(&roots, Some((0, 0))).unwrap();
        assert!(!roots.exists());
    }
}
