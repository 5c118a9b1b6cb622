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
//! The `.forward` side, with local(8)'s rules, is in `forward`.
//!
//! [`Request::ReadFile`]: crate::Request::ReadFile
//! [`Request::Forward`]: crate::Request::Forward

mod forward;

pub use forward::{MAX_FORWARD, cannot_open, forward_allowed, read_forward};

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::policy::Policy;
use crate::secure::{Unsafe, read_secure, resolve};
use crate::wire::{Request, Response};

/// The largest file the helper reads for the daemon: an answer is held in
/// memory on both sides. Users files, aliases and access tables of tens
/// of thousands of lines fit; a bigger one is refused with this number.
pub const MAX_FILE: usize = 16 << 20;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::serve::{Handler, serve};
    use crate::wire::Ids;

    pub(super) fn root() -> bool {
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

    pub(super) fn write(path: &Path, text: &str, mode: u32) {
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
        let server = std::thread::spawn(move || serve(helper, Policy::new(), h));
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
}
