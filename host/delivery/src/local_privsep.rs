//! The identity switch once a root-started daemon has dropped to
//! `mail_owner` (host/privsep): it can no longer become a mailbox's owner
//! itself, so the steps that need the owner's uid — a Maildir or mbox
//! write into a system user's (or a users-file uid's) home, an alias,
//! `.forward` or `mailbox_command` `|command`, an alias `/file` — are
//! sent to the root helper instead, which checks them and runs the same
//! code here ([`execute`]) as the owner.
//!
//! Without a helper (a daemon that never was root, or runs as root with
//! `mail_owner = "root"`) nothing goes through here: [`local_owner`]
//! switches per thread as before, or the daemon writes as itself.
//!
//! [`local_owner`]: crate::local_owner

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use postern_mailbox::{Maildir, Mbox};
use postern_privsep::{Ids, Request, Response};

use crate::local_owner::{as_owner, make_home_for};
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

/// Appends `parts` to the mbox `path` as `owner` through the helper;
/// `None` when there is no helper or no owner. Blocking.
pub(crate) fn mbox(
    owner: Option<(u32, u32)>,
    path: &Path,
    sender: &str,
    parts: &[&[u8]],
) -> Option<Result<(), String>> {
    let (uid, gid) = owner?;
    let client = postern_privsep::installed()?;
    let request = Request::Mbox {
        ids: Ids { uid, gid },
        path: path.to_owned(),
        sender: sender.to_owned(),
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
    let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
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
        Ok(Response::Password(..)) => Err(Failure::Io("an unexpected answer".to_owned())),
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
        Response::Exit(..) | Response::Password(..) => {
            Err(io::Error::other("an unexpected answer from the helper"))
        }
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
                .map_or(Ok(()), |home| make_home_for(&home, owner))
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
            message,
        } => {
            let date = postern_mail::date::asctime(SystemTime::now());
            Mbox::new(&path)
                .with_owner(Some((ids.uid, ids.gid)))
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
        Request::Password { .. } => Response::Refused("not a delivery request".to_owned()),
    }
}
