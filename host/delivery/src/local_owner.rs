//! Writing a mailbox as its owner, never as root (Postfix's local(8)
//! switches to the recipient's uid and gid before it touches the
//! mailbox).
//!
//! A daemon running as root that delivers into a system account's home
//! runs the write on a thread of its own that first drops, for that
//! thread only, its supplementary groups and its real, effective and
//! saved uid and gid to the owner's (Linux keeps credentials per thread;
//! the raw system calls do not spread the change to the other threads
//! as the C library's wrappers would). The thread cannot get root back,
//! and it ends with the write: nothing else ever runs with those ids, and
//! no thread of the server is left changed. Every file the write makes
//! is the owner's, and the kernel checks the owner's permissions, so a
//! home that points somewhere the user may not write fails rather than
//! writes there. A daemon that is not root writes as itself.

use std::io;

use rustix::process::{Gid, Uid};

/// Runs `write` as `ids` (uid, gid) when this process is root and `ids`
/// are given and not root's; else runs it here as it is. Blocking.
pub(crate) fn as_owner<T, F>(ids: Option<(u32, u32)>, write: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let Some((uid, gid)) = ids.filter(|_| rustix::process::geteuid().is_root()) else {
        return write();
    };
    if uid == 0 {
        return Err(io::Error::other("refusing to deliver as root"));
    }
    let thread = std::thread::Builder::new()
        .name(format!("deliver-as-{uid}"))
        .spawn(move || {
            drop_to(uid, gid)?;
            write()
        })?;
    thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the delivery thread panicked")))
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
    }
}
