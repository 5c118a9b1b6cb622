//! Files read through the helper: the root-only files the configuration
//! names ([`Request::ReadFile`]: a TLS key, the users file, an aliases
//! file, a table), read again at `postern reload` after the daemon has
//! dropped to `mail_owner`, and a user's `.forward` in a home
//! `mail_owner` may not enter, or one it may not read
//! ([`Request::Forward`]), read as that user.
//! Postfix's master stays root and its children read keys before they
//! drop; its local(8) reads `.forward` as the recipient.
//!
//! The daemon's side is [`read_file_or_ask`]: a direct read, and only
//! when the kernel says "permission denied" and a helper is installed, a
//! request. The helper's side is [`read_named`] and [`refresh`], over a
//! [`Configuration`] that the helper reads itself from a path fixed when
//! it starts: never from what the daemon sends.
//!
//! [`Request::ReadFile`]: crate::Request::ReadFile
//! [`Request::Forward`]: crate::Request::Forward

use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::policy::Policy;
use crate::secure::{Unsafe, read_bounded, read_secure, resolve};
use crate::wire::{Request, Response};

/// The largest file the helper reads for the daemon: an answer is held in
/// memory on both sides. Users files, aliases and access tables of tens
/// of thousands of lines fit; a bigger one is refused with this number.
pub const MAX_FILE: usize = 16 << 20;

/// The largest `.forward` (a few addresses or a command in practice).
pub const MAX_FORWARD: usize = 1 << 20;

/// The root-owned configuration, as the helper reads it: the same loader
/// as the daemon's, from the path given when the helper started.
pub trait Configuration: Send + Sync + 'static {
    /// The config file (`None`: the embedded default, which names no
    /// file and needs no trust). It may always be read: the daemon
    /// reports its errors, line by line, itself.
    fn path(&self) -> Option<&Path>;
    /// Every file it names that the daemon may need again (TLS
    /// certificate and key, users file, alias maps, tables, password
    /// maps), read now.
    fn files(&self) -> Result<Vec<PathBuf>, String>;
    /// The policy it implies (mail roots, users-file uids and homes),
    /// read now.
    fn policy(&self) -> Result<Policy, String>;
}

/// Reads `path`; on "permission denied", and with a helper installed
/// (the daemon has dropped to `mail_owner`), asks the helper, which
/// answers only for files the root-owned configuration names. What
/// every loader calls at reload.
pub fn read_file_or_ask(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => match crate::installed() {
            Some(client) => ask(client, path, &e),
            None => Err(e),
        },
        other => other,
    }
}

fn ask(client: &crate::Client, path: &Path, denied: &io::Error) -> io::Result<Vec<u8>> {
    let request = Request::ReadFile {
        path: std::path::absolute(path)?,
    };
    match client.call(&request)? {
        Response::File { contents, .. } => Ok(contents),
        Response::Refused(why) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{denied}; the privileged helper refused to read it: {why}"),
        )),
        Response::Missing => Err(io::ErrorKind::NotFound.into()),
        Response::Failed(why) => Err(io::Error::other(format!(
            "{denied}; the privileged helper could not read it: {why}"
        ))),
        _ => Err(io::Error::other("an unexpected answer from the helper")),
    }
}

/// The helper's answer to [`Request::ReadFile`]: `path`'s contents when
/// the configuration, trusted and loaded now, names it (or is it), and it
/// is read safely (see [`crate::secure::read_secure`]); else refused
/// with why.
///
/// [`Request::ReadFile`]: crate::Request::ReadFile
pub fn read_named(config: &dyn Configuration, path: &Path) -> Response {
    if let Err(why) = trusted(config) {
        return Response::Refused(why);
    }
    let named = config.path() == Some(path)
        || match config.files() {
            Ok(files) => files.iter().any(|f| f == path),
            Err(why) => return Response::Refused(why),
        };
    if !named {
        return Response::Refused(format!(
            "{}: not a file the configuration names",
            path.display()
        ));
    }
    match read_secure(path, MAX_FILE) {
        Ok((meta, contents)) => Response::File {
            uid: meta.uid(),
            gid: meta.gid(),
            contents,
        },
        Err(Unsafe::Missing) => Response::Missing,
        Err(Unsafe::Refused(why)) => Response::Refused(why),
        Err(Unsafe::Failed(why)) => Response::Failed(why),
    }
}

/// The helper's policy re-read from the configuration
/// ([`Request::Refresh`]): only from a trusted file, never from what the
/// daemon sends.
///
/// [`Request::Refresh`]: crate::Request::Refresh
pub fn refresh(config: &dyn Configuration) -> Result<Policy, String> {
    trusted(config)?;
    config.policy()
}

/// The config's file, if it has one, may be trusted ([`trusted_file`]).
fn trusted(config: &dyn Configuration) -> Result<(), String> {
    match config.path() {
        Some(path) => trusted_file(path),
        None => Ok(()),
    }
}

/// The config file at `path` may be trusted: root's, not writable by
/// group or others, in directories only root may change (see
/// [`crate::secure::read_secure`]). Else the daemon (`mail_owner`) could
/// write or swap it and so name any file, `/etc/shadow` included. Public
/// for a [`Configuration`] that checks again as it loads (one whose file
/// may appear between the check and the load).
pub fn trusted_file(path: &Path) -> Result<(), String> {
    let (_, meta) = resolve(path).map_err(|e| match e {
        Unsafe::Missing => format!("config file {}: no such file", path.display()),
        Unsafe::Refused(why) | Unsafe::Failed(why) => format!("config file {why}"),
    })?;
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "config file {}: writable by group or others",
            path.display()
        ));
    }
    Ok(())
}

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
    use std::os::unix::net::UnixStream;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::serve::{Handler, serve};
    use crate::wire::Ids;

    fn root() -> bool {
        rustix::process::geteuid().is_root()
    }

    /// A configuration naming `files`, implying `policy`.
    struct Fake {
        path: PathBuf,
        files: Vec<PathBuf>,
        policy: Mutex<Policy>,
    }

    impl Configuration for Fake {
        fn path(&self) -> Option<&Path> {
            Some(&self.path)
        }
        fn files(&self) -> Result<Vec<PathBuf>, String> {
            Ok(self.files.clone())
        }
        fn policy(&self) -> Result<Policy, String> {
            Ok(self.policy.lock().unwrap().clone())
        }
    }

    /// The helper's handler over `Fake`, as privilege_helper.rs is over
    /// the real config.
    struct Helper(Arc<Fake>);

    impl Handler for Helper {
        fn handle(&self, request: Request) -> Response {
            match request {
                Request::ReadFile { path } => read_named(&*self.0, &path),
                _ => Response::Done,
            }
        }
        fn refused(&self, _why: &str) {}
        fn refresh(&self) -> Result<Policy, String> {
            refresh(&*self.0)
        }
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_helper_reads_only_files_a_trusted_config_names() {
        if !root() {
            // Nothing is trusted but root's files: the test needs root.
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let config = dir.join("postern.toml");
        write(&config, "# root's\n", 0o644);
        write(&dir.join("key.pem"), "KEY", 0o600);
        write(&dir.join("other"), "x", 0o600);
        // mail_owner's directory, with a link it made to a root file.
        let data = dir.join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", data.join("key.pem")).unwrap();
        std::os::unix::fs::chown(&data, Some(4242), Some(4242)).unwrap();
        // root's link to root's file: followed.
        std::os::unix::fs::symlink(dir.join("key.pem"), dir.join("link.pem")).unwrap();
        let fake = Arc::new(Fake {
            path: config.clone(),
            files: vec![
                dir.join("key.pem"),
                dir.join("link.pem"),
                data.join("key.pem"),
                dir.join("missing"),
            ],
            policy: Mutex::new(Policy::new()),
        });
        let (daemon, helper) = UnixStream::pair().unwrap();
        let h = Arc::new(Helper(fake.clone()));
        let server = std::thread::spawn(move || serve(helper, Policy::new(), 1 << 20, h));
        let client = crate::Client::new(daemon).unwrap();
        let read = |path: &Path| {
            client
                .call(&Request::ReadFile {
                    path: path.to_owned(),
                })
                .unwrap()
        };
        let file = |contents: &str| Response::File {
            uid: 0,
            gid: 0,
            contents: contents.as_bytes().to_vec(),
        };
        assert_eq!(read(&dir.join("key.pem")), file("KEY"));
        assert_eq!(read(&dir.join("link.pem")), file("KEY"));
        assert_eq!(read(&config), file("# root's\n"));
        assert_eq!(read(&dir.join("missing")), Response::Missing);
        let refused = |path: &Path| match read(path) {
            Response::Refused(why) => why,
            other => panic!("{} answered {other:?}", path.display()),
        };
        for path in ["/etc/shadow", "/etc/passwd"] {
            assert!(refused(Path::new(path)).contains("not a file the configuration names"));
        }
        assert!(refused(&dir.join("other")).contains("not a file the configuration names"));
        assert!(refused(&dir.join("x/../other")).contains("without .."));
        assert!(refused(Path::new("key.pem")).contains("absolute"));
        // Named, but through a directory mail_owner could change.
        assert!(refused(&data.join("key.pem")).contains("uid 4242, not by root"));
        // A config others may write names nothing.
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(refused(&dir.join("key.pem")).contains("writable by group or others"));
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A hard link is not read.
        std::fs::hard_link(dir.join("key.pem"), dir.join("hard")).unwrap();
        assert!(refused(&dir.join("key.pem")).contains("more than one link"));
        std::fs::remove_file(dir.join("hard")).unwrap();

        // The policy comes from the config, on a refresh only.
        let low = Request::Maildir {
            ids: Ids { uid: 500, gid: 500 },
            home: None,
            path: "/var/mail/x".into(),
            message: vec![],
        };
        assert!(matches!(client.call(&low).unwrap(), Response::Refused(w) if w.contains("below")));
        *fake.policy.lock().unwrap() = Policy {
            uids: vec![500],
            roots: vec!["/var/mail".into()],
            ..Policy::new()
        };
        assert!(matches!(client.call(&low).unwrap(), Response::Refused(_)));
        assert_eq!(client.call(&Request::Refresh).unwrap(), Response::Done);
        assert_eq!(client.call(&low).unwrap(), Response::Done);
        // An untrusted config keeps the running policy.
        std::os::unix::fs::chown(&config, Some(4242), None).unwrap();
        *fake.policy.lock().unwrap() = Policy::new();
        assert!(matches!(
            client.call(&Request::Refresh).unwrap(),
            Response::Failed(w) if w.contains("not by root")
        ));
        assert_eq!(client.call(&low).unwrap(), Response::Done);
        drop(client);
        server.join().unwrap().unwrap();
    }

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
