//! The validator: what the helper agrees to do, checked on every request
//! before anything is touched (the threat model is in the crate doc).

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::wire::{Ids, Request};

/// The longest a command may be given (Postfix's `command_time_limit`
/// tops out at hours; a day is plenty and bounds a forged request).
const MAX_TIME_LIMIT: u32 = 24 * 3600;
/// The arguments and environment a delivery command gets are a handful
/// (`sh -c COMMAND`, and local(8)'s dozen variables).
const MAX_ARGS: usize = 8;
const MAX_ENV: usize = 32;
/// Logins are account names (32 bytes in useradd); passwords are capped
/// as the SASL decoder caps them.
const MAX_LOGIN: usize = 32;
const MAX_PASSWORD: usize = 1024;
/// A file name (NAME_MAX).
const MAX_NAME: usize = 255;
/// The longest wait for an mbox's locks: the queue's own (Postfix's 20
/// attempts a second apart); a forged request cannot hold a thread longer.
const MAX_LOCK_WAIT_MS: u32 = 20_000;

/// What the helper allows, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where mail of any allowed uid may be written: `virtual_mailbox_base`
    /// and `mail_spool_directory`.
    pub roots: Vec<PathBuf>,
    /// Users-file entries' uid and home (Dovecot's passwd-file `uid:gid`
    /// users), whose homes the helper makes and writes.
    pub homes: Vec<(u32, PathBuf)>,
    /// Uids allowed below `first_uid`: `default_privs` (nobody) and the
    /// users-file uids.
    pub uids: Vec<u32>,
    /// The first uid of an ordinary account (useradd's UID_MIN): system
    /// daemons below it never receive mail through the helper.
    pub first_uid: u32,
    /// passwd(5), for a uid's home.
    pub passwd: PathBuf,
    /// How many session processes ([`Request::Session`]) may run at once:
    /// the POP3 and IMAP session slots the configuration gives the
    /// daemon (`default_process_limit` per listener), so that a forged
    /// stream of requests starts no more than real logins could.
    pub max_sessions: usize,
    /// The longest request frame: a whole message and its trace headers
    /// with room to spare (a delivery carries the message), so that a
    /// forged longer frame ends the helper rather than its memory.
    /// Refreshed with the rest, so that a reload that raises
    /// `message_size_limit` raises it too.
    pub max_frame: usize,
}

impl Policy {
    /// A policy with no roots, homes or extra uids, reading /etc/passwd,
    /// ordinary accounts from uid 1000 (Debian's UID_MIN), at most
    /// [`crate::MAX_SESSIONS`] session processes.
    pub fn new() -> Policy {
        Policy {
            roots: Vec::new(),
            homes: Vec::new(),
            uids: Vec::new(),
            first_uid: 1000,
            passwd: PathBuf::from("/etc/passwd"),
            max_sessions: crate::MAX_SESSIONS,
            max_frame: crate::MAX_FRAME,
        }
    }

    /// `Ok` when `request` may be carried out, else why not.
    pub fn check(&self, request: &Request) -> Result<(), String> {
        match request {
            Request::Maildir {
                ids,
                home,
                path,
                message: _,
            } => {
                self.ids(*ids)?;
                if let Some(home) = home {
                    let known = self.homes.iter().any(|(u, h)| *u == ids.uid && h == home);
                    if !known && !self.under_root(clean(home)?) {
                        return Err(format!(
                            "{}: not a home of uid {} nor under a mail root",
                            home.display(),
                            ids.uid
                        ));
                    }
                }
                self.mailbox(*ids, path)
            }
            Request::Mbox {
                ids,
                path,
                sender,
                lock_wait_ms,
                ..
            } => {
                self.ids(*ids)?;
                if sender.contains(['\0', '\r', '\n']) {
                    return Err("a sender with control characters".to_owned());
                }
                if *lock_wait_ms > MAX_LOCK_WAIT_MS {
                    return Err(format!("a lock wait of {lock_wait_ms} ms"));
                }
                self.mailbox(*ids, path)
            }
            Request::Command {
                ids,
                args,
                env,
                dir,
                time_limit,
                input: _,
            } => {
                self.ids(*ids)?;
                if args.first().map(String::as_str) != Some("/bin/sh") {
                    return Err("only /bin/sh is run".to_owned());
                }
                if args.len() > MAX_ARGS || env.len() > MAX_ENV {
                    return Err("too many arguments or variables".to_owned());
                }
                if args.iter().any(|a| a.contains('\0')) {
                    return Err("an argument with a NUL".to_owned());
                }
                for (k, v) in env {
                    if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                        return Err(format!("a bad environment variable {k:?}"));
                    }
                }
                clean(dir)?;
                if *time_limit == 0 || *time_limit > MAX_TIME_LIMIT {
                    return Err(format!("a time limit of {time_limit} s"));
                }
                Ok(())
            }
            Request::Password { login, password } => {
                let bad = |c: char| c.is_control() || c.is_whitespace() || ":/@\\".contains(c);
                if login.is_empty()
                    || login.len() > MAX_LOGIN
                    || login.starts_with('-')
                    || login.contains(bad)
                {
                    return Err("not an account name".to_owned());
                }
                if password.len() > MAX_PASSWORD {
                    return Err("a password too long".to_owned());
                }
                Ok(())
            }
            Request::Session(session) => session.check(self),
            // Which files: decided by the helper against the config it
            // reads itself (crate::files::read_named).
            Request::ReadFile { path } => clean(path).map(drop),
            Request::Forward { uid, name } => self.forward(*uid, name).map(drop),
            Request::Refresh => Ok(()),
        }
    }

    /// Never root, never a system daemon: `first_uid` and up, or one of
    /// the uids named at start.
    pub(crate) fn ids(&self, ids: Ids) -> Result<(), String> {
        if ids.uid == 0 || ids.gid == 0 {
            return Err("refusing to act as root (uid or gid 0)".to_owned());
        }
        if ids.uid < self.first_uid && !self.uids.contains(&ids.uid) {
            return Err(format!(
                "uid {} is below {} and not a mail user",
                ids.uid, self.first_uid
            ));
        }
        Ok(())
    }

    /// A mailbox `path` for `ids`: under its passwd home, a users-file home
    /// of that uid, or a mail root.
    pub(crate) fn mailbox(&self, ids: Ids, path: &Path) -> Result<(), String> {
        let path = clean(path)?;
        let in_home =
            |home: &Path| home.is_absolute() && home != Path::new("/") && path.starts_with(home);
        if self.under_root(path)
            || self.homes.iter().any(|(u, h)| *u == ids.uid && in_home(h))
            || self.passwd_home(ids.uid).is_some_and(|h| in_home(&h))
        {
            return Ok(());
        }
        Err(format!(
            "{}: not under the home of uid {} nor under a mail root",
            path.display(),
            ids.uid
        ))
    }

    fn under_root(&self, path: &Path) -> bool {
        self.roots
            .iter()
            .any(|r| r.is_absolute() && r != Path::new("/") && path.starts_with(r))
    }

    /// The home of `uid` in passwd(5), read at each request (as
    /// getpwuid(3) would) so that new accounts count at once.
    fn passwd_home(&self, uid: u32) -> Option<PathBuf> {
        let text = std::fs::read_to_string(&self.passwd).ok()?;
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 7 && fields[2].parse() == Ok(uid)).then(|| PathBuf::from(fields[5]))
        })
    }
}

impl Policy {
    /// Where the `.forward` file `name` of `uid` is, and as whom it is
    /// read: `name` is `.forward` or `.forward+EXT` (one name, no `/`),
    /// the home is the users-file home of `uid` or else its passwd home,
    /// the group its passwd group or else the home's (a users-file home
    /// is made with the entry's gid). Never root, never a system daemon.
    pub fn forward(&self, uid: u32, name: &str) -> Result<(PathBuf, Ids), String> {
        if !name.starts_with(".forward")
            || name.len() > MAX_NAME
            || name.contains(['/', '\0'])
            || name.contains("..")
        {
            return Err(format!("{name:?}: not a .forward file name"));
        }
        let entry = self.passwd_entry(uid);
        let home = self
            .homes
            .iter()
            .find(|(u, _)| *u == uid)
            .map(|(_, h)| h.clone())
            .or_else(|| entry.as_ref().map(|(_, h)| h.clone()))
            .ok_or_else(|| format!("uid {uid} has no home"))?;
        let home = clean(&home)?.to_owned();
        if home == Path::new("/") {
            return Err(format!("uid {uid} has / for a home"));
        }
        let gid = match entry {
            Some((gid, _)) => gid,
            None => std::fs::metadata(&home)
                .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
                .map_err(|e| format!("{}: {e}", home.display()))?,
        };
        let ids = Ids { uid, gid };
        self.ids(ids)?;
        Ok((home.join(name), ids))
    }

    /// The group and home of `uid` in passwd(5), read at each request.
    fn passwd_entry(&self, uid: u32) -> Option<(u32, PathBuf)> {
        let text = std::fs::read_to_string(&self.passwd).ok()?;
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 7 || fields[2].parse() != Ok(uid) {
                return None;
            }
            Some((fields[3].parse().ok()?, PathBuf::from(fields[5])))
        })
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::new()
    }
}

/// `path` when it is absolute, without `..` or NUL.
fn clean(path: &Path) -> Result<&Path, String> {
    if !path.is_absolute()
        || path.components().any(|c| c == Component::ParentDir)
        || path.as_os_str().as_bytes().contains(&0)
    {
        return Err(format!(
            "{}: not an absolute path without ..",
            path.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(dir: &Path) -> Policy {
        let passwd = dir.join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\n\
             daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             alice:x:1000:1000::/home/alice:/bin/sh\n\
             slash:x:1001:1001::/:/bin/sh\n",
        )
        .unwrap();
        Policy {
            roots: vec!["/var/lib/postern/mail".into(), "/var/mail".into()],
            homes: vec![(5000, "/var/lib/postern/mail/example.org/carol".into())],
            uids: vec![65534, 5000],
            first_uid: 1000,
            passwd,
            max_sessions: 10,
            max_frame: 1 << 20,
        }
    }

    fn maildir(uid: u32, path: &str) -> Request {
        Request::Maildir {
            ids: Ids { uid, gid: uid },
            home: None,
            path: path.into(),
            message: b"x".to_vec(),
        }
    }

    fn command(uid: u32, program: &str) -> Request {
        Request::Command {
            ids: Ids { uid, gid: uid },
            args: vec![program.into(), "-c".into(), "id -u".into()],
            env: vec![("HOME".into(), "/".into())],
            dir: "/".into(),
            time_limit: 60,
            input: vec![],
        }
    }

    #[test]
    fn allowed_requests_pass() {
        let dir = std::env::temp_dir().join(format!("privsep-ok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = policy(&dir);
        p.check(&maildir(1000, "/home/alice/Maildir/")).unwrap();
        p.check(&maildir(
            5000,
            "/var/lib/postern/mail/example.org/carol/Maildir/",
        ))
        .unwrap();
        p.check(&Request::Maildir {
            ids: Ids {
                uid: 5000,
                gid: 5000,
            },
            home: Some("/var/lib/postern/mail/example.org/carol".into()),
            path: "/var/lib/postern/mail/example.org/carol/Maildir/".into(),
            message: vec![],
        })
        .unwrap();
        p.check(&command(65534, "/bin/sh")).unwrap();
        p.check(&command(1000, "/bin/sh")).unwrap();
        p.check(&Request::Password {
            login: "alice".into(),
            password: "secret".into(),
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forged_requests_are_refused() {
        let dir = std::env::temp_dir().join(format!("privsep-no-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = policy(&dir);
        let refused = |r: Request| p.check(&r).unwrap_err();
        // Root, by uid or by gid, and system daemons.
        assert!(refused(maildir(0, "/root/Maildir/")).contains("root"));
        assert!(refused(command(0, "/bin/sh")).contains("root"));
        assert!(
            refused(Request::Mbox {
                ids: Ids { uid: 1000, gid: 0 },
                path: "/var/mail/alice".into(),
                sender: String::new(),
                lock_wait_ms: 0,
                message: vec![],
            })
            .contains("root")
        );
        // A thread of the helper held longer than the queue would wait.
        assert!(
            refused(Request::Mbox {
                ids: Ids {
                    uid: 1000,
                    gid: 1000
                },
                path: "/var/mail/alice".into(),
                sender: String::new(),
                lock_wait_ms: 60_000,
                message: vec![],
            })
            .contains("lock wait")
        );
        assert!(refused(command(1, "/bin/sh")).contains("below"));
        // Someone else's home, a way out with `..`, a relative path, a
        // home of `/` that would be everywhere.
        assert!(refused(maildir(1000, "/root/Maildir/")).contains("not under"));
        assert!(refused(maildir(1000, "/home/alice/../bob/Maildir/")).contains(".."));
        assert!(refused(maildir(1000, "Maildir/")).contains("absolute"));
        assert!(refused(maildir(1001, "/etc/cron.d/x")).contains("not under"));
        assert!(refused(maildir(5000, "/home/alice/Maildir/")).contains("not under"));
        // Making a home that is not the user's.
        let home = Request::Maildir {
            ids: Ids {
                uid: 1000,
                gid: 1000,
            },
            home: Some("/etc/postern".into()),
            path: "/home/alice/Maildir/".into(),
            message: vec![],
        };
        assert!(refused(home).contains("not a home"));
        // Only /bin/sh, with bounded arguments, environment and time.
        assert!(refused(command(1000, "/usr/bin/python3")).contains("/bin/sh"));
        let mut forged = command(1000, "/bin/sh");
        if let Request::Command { env, .. } = &mut forged {
            env.push(("LD_PRELOAD=x".into(), String::new()));
        }
        assert!(refused(forged).contains("environment"));
        let mut forged = command(1000, "/bin/sh");
        if let Request::Command { time_limit, .. } = &mut forged {
            *time_limit = u32::MAX;
        }
        assert!(refused(forged).contains("time limit"));
        // Logins are account names.
        for login in ["", "../root", "a b", "-r", &"x".repeat(33)] {
            let forged = Request::Password {
                login: login.to_owned(),
                password: String::new(),
            };
            assert!(refused(forged).contains("account"), "{login:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
