//! A user's `.forward` read through the helper ([`Request::Forward`]), as
//! that user, with Postfix local(8)'s rules for which file to ignore.
//! Apart from the configuration's files: another caller (delivery, not
//! reload), another identity (the user, not root), other rules.
//!
//! [`Request::Forward`]: crate::Request::Forward

use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::secure::{Unsafe, read_bounded};
use crate::wire::Response;

/// The largest `.forward` (a few addresses or a command in practice).
pub const MAX_FORWARD: usize = 1 << 20;

/// The helper's answer to [`Request::Forward`], run as the user `owner`
/// (the caller switches): the file at `path`, read without following a
/// link and without blocking on a FIFO, at most [`MAX_FORWARD`] bytes.
/// A file Postfix's local(8) ignores (local/dotforward.c) is answered
/// [`Response::Ignored`] with its warning, so that the daemon delivers to
/// the mailbox as when it finds this itself: a link or anything but a
/// regular file, a file owned by neither `owner` nor root, a file others
/// may write ([`forward_allowed`]), one the user may not open (root's
/// 0600: `cannot open file F: Permission denied`), one too large. Group
/// write is allowed, as there: a user's private group is the common
/// case. Any other failure is [`Response::Failed`] (the mail is
/// deferred). The daemon's own read (host/delivery forward/read.rs)
/// applies the same rules.
///
/// [`Request::Forward`]: crate::Request::Forward
pub fn read_forward(path: &Path, owner: u32) -> Response {
    let shown = path.display();
    let failed = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => Response::Missing,
        // As the user, as local(8) opens it: the user may not.
        io::ErrorKind::PermissionDenied => Response::Ignored(cannot_open(path, &e)),
        _ => Response::Failed(format!("{shown}: {e}")),
    };
    let seen = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return failed(e),
    };
    if let Err(warning) = forward_allowed(path, &seen, owner) {
        return Response::Ignored(warning);
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) => return failed(e),
    };
    match read_bounded(file, &seen, path, MAX_FORWARD) {
        Ok(contents) => Response::File {
            uid: seen.uid(),
            gid: seen.gid(),
            contents,
        },
        Err(Unsafe::Missing) => Response::Missing,
        Err(Unsafe::Refused(why)) => Response::Ignored(format!("file {why}")),
        Err(Unsafe::Failed(why)) => Response::Failed(why),
    }
}

/// Postfix's local(8) rules for a `.forward` seen (`lstat`) at `path`
/// for the user `owner`: a regular file, owned by `owner` or root, not
/// writable by others (`S_IWOTH`; group write is allowed). Else its
/// warning, in its words and order (local/dotforward.c).
pub fn forward_allowed(path: &Path, seen: &std::fs::Metadata, owner: u32) -> Result<(), String> {
    let shown = path.display();
    if seen.file_type().is_symlink() || !seen.is_file() {
        return Err(format!("file {shown} is not a regular file"));
    }
    if seen.uid() != owner && seen.uid() != 0 {
        return Err(format!("file {shown} has bad owner uid {}", seen.uid()));
    }
    if seen.mode() & 0o002 != 0 {
        return Err(format!("file {shown} is world writable"));
    }
    Ok(())
}

/// local(8)'s warning for a `.forward` it cannot open:
/// `cannot open file F: Permission denied` (the C library's text, without
/// Rust's ` (os error 13)`).
pub fn cannot_open(path: &Path, e: &io::Error) -> String {
    let text = e.to_string();
    let reason = match text.rfind(" (os error ") {
        Some(at) if e.raw_os_error().is_some() => &text[..at],
        _ => &text,
    };
    format!("cannot open file {}: {reason}", path.display())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;
    use crate::files::tests::{root, write};
    use crate::policy::Policy;
    use crate::wire::Ids;

    #[test]
    fn forward_reads_follow_local8s_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let me = rustix::process::geteuid().as_raw();
        let read = |name: &str| read_forward(&dir.join(name), me);
        write(&dir.join(".forward"), "bob@example.net\n", 0o644);
        assert!(matches!(
            read(".forward"),
            Response::File { contents, .. } if contents == b"bob@example.net\n"
        ));
        assert_eq!(read(".forward+x"), Response::Missing);
        // Group write is allowed, as local(8) allows it.
        write(&dir.join("group"), "bob@example.net\n", 0o664);
        assert!(matches!(read("group"), Response::File { .. }));
        // Someone else's file (neither the user's nor root's).
        let asker = if me == 0 {
            std::os::unix::fs::chown(dir.join("group"), Some(4242), None).unwrap();
            4243
        } else {
            me + 1
        };
        assert_eq!(
            read_forward(&dir.join("group"), asker),
            Response::Ignored(format!(
                "file {} has bad owner uid {}",
                dir.join("group").display(),
                std::fs::metadata(dir.join("group")).unwrap().uid()
            ))
        );
        std::os::unix::fs::symlink("/etc/shadow", dir.join("link")).unwrap();
        write(&dir.join("shared"), "x", 0o646);
        write(&dir.join("big"), &"x".repeat(MAX_FORWARD + 1), 0o644);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("fifo").as_path(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        // Ignored with local(8)'s warning: the mail goes to the mailbox.
        for (name, why) in [
            ("link", " is not a regular file"),
            ("fifo", " is not a regular file"),
            ("shared", " is world writable"),
            ("big", ": larger than"),
        ] {
            let warning = format!("file {}{why}", dir.join(name).display());
            assert!(
                matches!(read(name), Response::Ignored(w) if w.starts_with(&warning)),
                "{name}"
            );
        }
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            cannot_open(Path::new("/h/.forward"), &denied),
            "cannot open file /h/.forward: Permission denied"
        );
    }

    #[test]
    fn a_forward_the_user_may_not_open_is_ignored_other_failures_are_not() {
        if !root() {
            // Reading as another user needs root.
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        write(&dir.join(".forward"), "bob@example.net\n", 0o600);
        // Read as the user, as the helper does (set in this thread only).
        let read = std::thread::spawn(move || {
            let uid = rustix::process::Uid::from_raw(4242);
            let gid = rustix::process::Gid::from_raw(4242);
            rustix::thread::set_thread_groups(&[gid]).unwrap();
            rustix::thread::set_thread_res_gid(gid, gid, gid).unwrap();
            rustix::thread::set_thread_res_uid(uid, uid, uid).unwrap();
            (
                read_forward(&dir.join(".forward"), 4242),
                // Another I/O error (a path through a file): a failure,
                // which the daemon defers.
                read_forward(&dir.join(".forward/x"), 4242),
            )
        })
        .join()
        .unwrap();
        // Root's 0600 file: local(8)'s warning, and the mailbox.
        let path = tmp.path().join(".forward");
        assert_eq!(
            read.0,
            Response::Ignored(format!(
                "cannot open file {}: Permission denied",
                path.display()
            ))
        );
        assert!(
            matches!(&read.1, Response::Failed(w) if w.contains("Not a directory")),
            "{:?}",
            read.1
        );
    }

    #[test]
    fn a_forward_is_looked_for_only_in_the_users_home() {
        let tmp = tempfile::tempdir().unwrap();
        let passwd = tmp.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\n\
             daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             alice:x:1000:1001::/home/alice:/bin/sh\n\
             slash:x:1002:1002::/:/bin/sh\n",
        )
        .unwrap();
        let carol = tmp.path().join("carol");
        std::fs::create_dir(&carol).unwrap();
        let gid = std::fs::metadata(&carol).unwrap().gid();
        let p = Policy {
            homes: vec![(5000, carol.clone())],
            uids: vec![5000],
            passwd,
            ..Policy::new()
        };
        assert_eq!(
            p.forward(1000, ".forward").unwrap(),
            (
                PathBuf::from("/home/alice/.forward"),
                Ids {
                    uid: 1000,
                    gid: 1001
                }
            )
        );
        assert_eq!(
            p.forward(1000, ".forward+list").unwrap().0,
            Path::new("/home/alice/.forward+list")
        );
        let fwd = p.forward(5000, ".forward");
        if gid == 0 {
            // Made by root here: a group 0 is never used.
            assert!(fwd.unwrap_err().contains("root"));
        } else {
            assert_eq!(
                fwd.unwrap(),
                (carol.join(".forward"), Ids { uid: 5000, gid })
            );
        }
        let refused = |uid, name: &str| p.forward(uid, name).unwrap_err();
        assert!(refused(1000, "../bob/.forward").contains("not a .forward"));
        assert!(refused(1000, ".forward/../../etc/shadow").contains("not a .forward"));
        assert!(refused(1000, ".bashrc").contains("not a .forward"));
        assert!(refused(0, ".forward").contains("root"));
        assert!(refused(1, ".forward").contains("below"));
        assert!(refused(1002, ".forward").contains("/ for a home"));
        assert!(refused(4000, ".forward").contains("no home"));
    }
}
