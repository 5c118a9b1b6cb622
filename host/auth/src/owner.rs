//! Touching a user's mail as that user, never as root: Postfix's local(8)
//! switches to the recipient's uid and gid before it writes a mailbox,
//! and Dovecot's imap and pop3 processes run as the user they serve
//! (`userdb` uid and gid). Local delivery, POP3 and IMAP all come here,
//! so that every file in a mailbox belongs to its owner.
//!
//! A daemon running as root runs the work on a thread of its own that
//! first drops, for that thread only, its supplementary groups and its
//! real, effective and saved uid and gid to the owner's (Linux keeps
//! credentials per thread; the raw system calls do not spread the change
//! to the other threads as the C library's wrappers would). The thread
//! cannot get root back, and it ends with the work: nothing else ever
//! runs with those ids, and no thread of the server is left changed.
//! The kernel checks the owner's permissions, so a home that points
//! somewhere the user may not write fails rather than writes there. A
//! daemon that is not root works as itself. A thread per call costs tens
//! of microseconds, small beside the file system work it wraps.

use std::io;

use rustix::process::{Gid, Uid};

/// Runs `work` as `ids` (uid, gid) when this process is root and `ids`
/// are given; else runs it here as it is. uid 0 is refused (Dovecot's
/// `first_valid_uid`, Postfix's refusal to deliver as root). Blocking.
pub fn as_owner<T, F>(ids: Option<(u32, u32)>, work: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let Some((uid, gid)) = ids.filter(|_| rustix::process::geteuid().is_root()) else {
        return work();
    };
    if uid == 0 {
        return Err(io::Error::other("refusing to access mail as root"));
    }
    let thread = std::thread::Builder::new()
        .name(format!("as-uid-{uid}"))
        .spawn(move || {
            drop_to(uid, gid)?;
            work()
        })?;
    thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the mailbox thread panicked")))
}

/// This thread's groups, gids and uids become `gid` and `uid`: groups
/// first and uid last, since only root may change groups.
fn drop_to(uid: u32, gid: u32) -> io::Result<()> {
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    rustix::thread::set_thread_groups(&[gid])?;
    rustix::thread::set_thread_res_gid(gid, gid, gid)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    // Paranoia as in Postfix's set_ugid: make sure it took.
    if rustix::process::geteuid() != uid || rustix::process::getegid() != gid {
        return Err(io::Error::other("could not drop privileges"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn files_belong_to_the_owner_and_the_server_keeps_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let target = path.clone();
        if !rustix::process::geteuid().is_root() {
            as_owner(Some((4242, 4242)), move || std::fs::write(&target, b"x")).unwrap();
            assert_eq!(
                std::fs::metadata(&path).unwrap().uid(),
                rustix::process::geteuid().as_raw()
            );
            return;
        }
        // A directory only root may write: the owner cannot.
        let denied = as_owner(Some((4242, 4242)), move || std::fs::write(&target, b"x"));
        assert_eq!(denied.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        std::os::unix::fs::chown(dir.path(), Some(4242), Some(4242)).unwrap();
        let target = path.clone();
        as_owner(Some((4242, 4242)), move || std::fs::write(&target, b"x")).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4242));
        assert!(rustix::process::geteuid().is_root());
        assert!(as_owner(Some((0, 0)), || Ok(())).is_err());
        assert_eq!(as_owner(None, || Ok(7)).unwrap(), 7);
    }
}
