//! The identity switch once a root-started daemon has dropped to
//! `mail_owner` (host/privsep): it can no longer become a mailbox's owner
//! itself, so the steps that need the owner's uid — a Maildir or mbox
//! write into a system user's (or a users-file uid's) home, an alias,
//! `.forward` or `mailbox_command` `|command`, an alias `/file` — are
//! sent to the root helper instead, which checks them and runs the same
//! code here ([`execute`]) as the owner.
//!
//! Directories the helper makes (a users-file home, the parents of a
//! home or of an mbox) never stay root's by accident: see `make_dirs`.
//!
//! Without a helper (a daemon that never was root, or runs as root with
//! `mail_owner = "root"`) nothing goes through here: `local_owner`
//! switches per thread as before, or the daemon writes as itself.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use postern_mailbox::{Maildir, Mbox};
use postern_privsep::{Ids, Request, Response};
use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use crate::local_owner::as_owner;
use crate::pipe::{self, Failure};

/// Delivers `parts` into the Maildir `path` as `owner` through the helper,
/// making `home` first; `None` when there is no helper or no owner (the
/// caller writes it itself). Blocking.
pub(crate) fn maildir(
    owner: Option<(u32, u32)>,
    home: Option<PathBuf>,
    path: &Path,
    parts: &[&[u8]],
) -> Option<io::Result<()>> {
    let (uid, gid) = owner?;
    let client = postern_privsep::installed()?;
    let request = Request::Maildir {
        ids: Ids { uid, gid },
        home,
        path: path.to_owned(),
        message: parts.concat(),
    };
    Some(client.call(&request).and_then(done))
}

/// Appends `parts` to the mbox `path` as `owner` through the helper,
/// waiting at most `lock_wait` for its locks; `None` when there is no
/// helper or no owner. Blocking.
pub(crate) fn mbox(
    owner: Option<(u32, u32)>,
    path: &Path,
    sender: &str,
    lock_wait: Duration,
    parts: &[&[u8]],
) -> Option<Result<(), String>> {
    let (uid, gid) = owner?;
    let client = postern_privsep::installed()?;
    let request = Request::Mbox {
        ids: Ids { uid, gid },
        path: path.to_owned(),
        sender: sender.to_owned(),
        lock_wait_ms: u32::try_from(lock_wait.as_millis()).unwrap_or(u32::MAX),
        message: parts.concat(),
    };
    Some(
        client
            .call(&request)
            .and_then(done)
            .map_err(|e| e.to_string()),
    )
}

/// Runs `cmd` (`/bin/sh` and its arguments, environment and directory)
/// as `ids` through the helper, if there is one. Blocking.
pub(crate) fn command(
    cmd: &Command,
    (uid, gid): (u32, u32),
    time_limit: Duration,
    input: &[u8],
) -> Option<Result<(), Failure>> {
    let client = postern_privsep::installed()?;
    let text = |s: &OsStr| s.to_string_lossy().into_owned();
    let mut args = vec![text(cmd.get_program())];
    args.extend(cmd.get_args().map(text));
    let env = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((text(k), text(v?))))
        .collect();
    let request = Request::Command {
        ids: Ids { uid, gid },
        args,
        env,
        dir: cmd.get_current_dir().unwrap_or(Path::new("/")).to_owned(),
        time_limit: u32::try_from(time_limit.as_secs().max(1)).unwrap_or(u32::MAX),
        input: input.to_vec(),
    };
    Some(match client.call(&request) {
        Ok(Response::Done) => Ok(()),
        Ok(Response::Exit(code, output)) => Err(Failure::Exit(code, output)),
        Ok(Response::Killed(why)) => Err(Failure::Killed(why)),
        Ok(Response::Refused(why)) => Err(Failure::Refused(format!(
            "refused by the privileged helper: {why}"
        ))),
        Ok(Response::Failed(why)) => Err(Failure::Io(why)),
        Ok(_) => Err(Failure::Io("an unexpected answer".to_owned())),
        Err(e) => Err(Failure::Io(e.to_string())),
    })
}

/// A write's answer as a result.
fn done(response: Response) -> io::Result<()> {
    match response {
        Response::Done => Ok(()),
        Response::Refused(why) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refused by the privileged helper: {why}"),
        )),
        Response::Failed(why) | Response::Killed(why) => Err(io::Error::other(why)),
        _ => Err(io::Error::other("an unexpected answer from the helper")),
    }
}

/// The helper's side: carries out a delivery request (already checked
/// by [`postern_privsep::Policy`]) as its uid and gid, with the same code
/// a root daemon runs itself. Blocking.
pub fn execute(request: Request) -> Response {
    let failed = |e: String| Response::Failed(e);
    match request {
        Request::Maildir {
            ids,
            home,
            path,
            message,
        } => {
            let owner = Some((ids.uid, ids.gid));
            let written = home
                .map_or(Ok(()), |home| make_home(&home, ids))
                .and_then(|()| {
                    as_owner(owner, move || {
                        Maildir::create(&path)?.deliver_parts(&[&message])
                    })
                });
            written.map_or_else(|e| failed(e.to_string()), |_| Response::Done)
        }
        Request::Mbox {
            ids,
            path,
            sender,
            lock_wait_ms,
            message,
        } => {
            // `mail_spool_directory/DOMAIN/USER`: the domain's directory
            // may be new.
            if let Some(Err(e)) = path.parent().map(make_dirs) {
                let why = postern_mail::io_reason(&e);
                return failed(format!("cannot create {}: {why}", path.display()));
            }
            let date = postern_mail::date::asctime(SystemTime::now());
            Mbox::new(&path)
                .with_owner(Some((ids.uid, ids.gid)))
                .with_lock_wait(Duration::from_millis(u64::from(lock_wait_ms)))
                .deliver(&sender, &date, &[&message])
                .map_or_else(|e| failed(e.to_string()), |_| Response::Done)
        }
        Request::Command {
            ids,
            args,
            env,
            dir,
            time_limit,
            input,
        } => {
            let Some((program, args)) = args.split_first() else {
                return Response::Refused("no program".to_owned());
            };
            let mut cmd = Command::new(program);
            // A home the user cannot enter fails the spawn: start in `/`
            // then, as Postfix's local(8) does.
            let dir = if dir.is_dir() {
                dir
            } else {
                PathBuf::from("/")
            };
            cmd.args(args).env_clear().envs(env).current_dir(dir);
            let limit = Duration::from_secs(u64::from(time_limit));
            match pipe::run_as(cmd, Some((ids.uid, ids.gid)), limit, &input) {
                Ok(()) => Response::Done,
                Err(Failure::Exit(code, output)) => Response::Exit(code, output),
                Err(Failure::Killed(why)) => Response::Killed(why),
                Err(Failure::Io(why)) => Response::Failed(why),
                Err(Failure::Refused(why)) => Response::Refused(why),
            }
        }
        // Passwords, sessions and what else the helper serves elsewhere.
        _ => Response::Refused("not a delivery request".to_owned()),
    }
}

/// Opens a directory made here: never through a link put in its place.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Makes `home` for `ids` when it is missing, as
/// [`crate::local_owner::make_home_for`] does for a root daemon (mode
/// 0700, the user's), its missing parents by [`make_dirs`]. A home that
/// exists is left as it is.
fn make_home(home: &Path, ids: Ids) -> io::Result<()> {
    if ids.uid == 0 || home.exists() {
        return Ok(());
    }
    let (Some(parent), Some(name)) = (home.parent(), home.file_name()) else {
        return Err(io::Error::other(format!("{}: not a home", home.display())));
    };
    let parent = make_dirs(parent)?;
    let owner = (Uid::from_raw(ids.uid), Gid::from_raw(ids.gid));
    make_dir(&parent, name, owner, 0o700).map(drop)
}

/// Makes the missing directories of `dir`, each a copy of the directory
/// it is made in: the same owner, group and permission bits. Under the
/// mail roots, which start-up hands to `mail_owner`, that makes them
/// `mail_owner`'s, so the daemon can still make the homes of users
/// without a uid beside the ones made here (a domain's directory under
/// `virtual_mailbox_base` is shared by both); under a root-owned
/// directory (`/home`) they are root's, as before.
///
/// Not the recipient's, as Postfix's virtual(8) makes them (it creates
/// them as the recipient's uid): a domain's directory is shared by
/// users of several uids, and one of them owning it could replace the
/// others' homes. A copy of the parent gives no one a directory they
/// could not have made themselves.
///
/// The existing part of the path is followed as configured (the daemon
/// chose it and the policy checked it); each directory made is opened
/// without following links and changed through that descriptor, so
/// that an owner of the directory it is made in, swapping it for a link
/// meanwhile, cannot pass the change on to another file. Blocking.
fn make_dirs(dir: &Path) -> io::Result<OwnedFd> {
    let mut missing = Vec::new();
    let mut base = dir;
    while let Err(e) = std::fs::metadata(base) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                base = parent;
            }
            _ => return Err(e),
        }
    }
    let mut fd = rustix::fs::openat(
        CWD,
        base,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for name in missing.into_iter().rev() {
        let stat = rustix::fs::fstat(&fd)?;
        let like = (Uid::from_raw(stat.st_uid), Gid::from_raw(stat.st_gid));
        fd = make_dir(&fd, name, like, stat.st_mode & 0o7777)?;
    }
    Ok(fd)
}

/// Makes `name` in `parent` with `owner` and `mode`, or opens it when a
/// delivery beside this one made it first (left as it is then).
fn make_dir(
    parent: &OwnedFd,
    name: &OsStr,
    (uid, gid): (Uid, Gid),
    mode: u32,
) -> io::Result<OwnedFd> {
    // Made closed (0700, root's), then given away: never looser than
    // meant, even for a moment.
    let made = match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(e.into()),
    };
    let fd = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?;
    if made {
        // Still the one made here (root's), not one swapped in meanwhile.
        if rustix::fs::fstat(&fd)?.st_uid != 0 {
            return Err(io::Error::other(format!(
                "{}: replaced while being made",
                Path::new(name).display()
            )));
        }
        rustix::fs::fchown(&fd, Some(uid), Some(gid))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    }
    Ok(fd)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn made_directories_copy_the_one_they_are_made_in() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        // The mail root, handed to mail_owner (4242) at start.
        let base = tmp.path().join("mail");
        std::fs::create_dir(&base).unwrap();
        std::os::unix::fs::chown(&base, Some(4242), Some(4243)).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o750)).unwrap();
        let home = base.join("example.org/sub/carol");
        make_home(
            &home,
            Ids {
                uid: 5001,
                gid: 5002,
            },
        )
        .unwrap();
        let ids = |p: &Path| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid(), m.mode() & 0o7777)
        };
        assert_eq!(ids(&base.join("example.org")), (4242, 4243, 0o750));
        assert_eq!(ids(&base.join("example.org/sub")), (4242, 4243, 0o750));
        assert_eq!(ids(&home), (5001, 5002, 0o700));
        // An existing home, and existing parents, are left alone.
        make_home(&home, Ids { uid: 1, gid: 1 }).unwrap();
        assert_eq!(ids(&home), (5001, 5002, 0o700));
        // Under a root-owned directory: root's, as before.
        let roots = tmp.path().join("spool/example.net");
        make_dirs(&roots).unwrap();
        assert_eq!(ids(&roots).0, 0);
        // A path through a file is an error, not a panic.
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        assert!(make_dirs(&tmp.path().join("file/x")).is_err());
    }

    #[test]
    fn an_mbox_in_a_new_domain_directory_of_the_spool() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        // mail_spool_directory as Debian has it: root:mail 2775.
        let spool = tmp.path().join("spool");
        std::fs::create_dir(&spool).unwrap();
        std::os::unix::fs::chown(&spool, Some(0), Some(8)).unwrap();
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o2775)).unwrap();
        let path = spool.join("example.net/dave");
        let response = execute(Request::Mbox {
            ids: Ids {
                uid: 5001,
                gid: 5002,
            },
            path: path.clone(),
            sender: "s@example.org".to_owned(),
            lock_wait_ms: 1000,
            message: b"Subject: x\r\n\r\nhi\r\n".to_vec(),
        });
        assert!(matches!(response, Response::Done), "{response:?}");
        let meta = std::fs::metadata(spool.join("example.net")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 8, 0o2775)
        );
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 5001);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("From s@example.org ")
        );
    }
}
