//! The requests and answers between the daemon and the helper, and their
//! byte format: a frame is a 4-byte big-endian length, then the body: an
//! 8-byte request id (answers carry the id of their request, so that
//! requests from many deliveries share one socket), a kind byte, and the
//! fields in order: numbers big-endian, byte strings as a 4-byte length
//! and the bytes. Nothing is optional but a home (a flag byte first);
//! anything left over after the last field is an error.
//!
//! This file holds the messages and each kind's layout; the frames and
//! the field writer and reader under them are in `format`, the tests in
//! `tests`.

use std::path::PathBuf;

use crate::session::MailSession;

mod format;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use format::len32;
pub(crate) use format::{Body, Fields};
pub use format::{read_frame, write_frame};

/// A uid and gid to act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// The user id.
    pub uid: u32,
    /// The group id (also the only supplementary group).
    pub gid: u32,
}

/// What the daemon may ask of the helper; nothing else is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Deliver `message` into the Maildir `path` as `ids`, after making
    /// `home` (a users-file entry's home) for them when it is missing.
    Maildir {
        /// Who writes.
        ids: Ids,
        /// A home to make, mode 0700, owned by `ids`, when missing.
        home: Option<PathBuf>,
        /// The Maildir (created on first use).
        path: PathBuf,
        /// The message, trace headers included.
        message: Vec<u8>,
    },
    /// Append `message` to the mbox file `path` as `ids`, locked as a
    /// mailbox is.
    Mbox {
        /// Who writes.
        ids: Ids,
        /// The mbox file.
        path: PathBuf,
        /// The envelope sender for the `From ` line (empty: MAILER-DAEMON).
        sender: String,
        /// How long to wait for the mailbox's locks, in milliseconds: 20 s
        /// for the queue, less for a client waiting on its reply.
        lock_wait_ms: u32,
        /// The message, trace headers included.
        message: Vec<u8>,
    },
    /// Run `/bin/sh` with `args` as `ids`, with exactly `env`, in `dir`,
    /// `input` on its standard input, killed after `time_limit` seconds.
    Command {
        /// Who runs it.
        ids: Ids,
        /// The program and its arguments; the program must be `/bin/sh`.
        args: Vec<String>,
        /// The whole environment.
        env: Vec<(String, String)>,
        /// The working directory.
        dir: PathBuf,
        /// Seconds before the process group is killed.
        time_limit: u32,
        /// The standard input.
        input: Vec<u8>,
    },
    /// Check the password of the system account `login` (a bare name).
    Password {
        /// The account name.
        login: String,
        /// The password to check.
        password: String,
    },
    /// Continue a POP3 or IMAP login in a process of the mailbox's owner,
    /// over the socket sent with the request ([`crate::session`]).
    Session(MailSession),
    /// Read `path`, a file the root-owned configuration names (a TLS key,
    /// the users file, an aliases file, a table), for a reload
    /// ([`crate::files`]).
    ReadFile {
        /// The file, absolute.
        path: PathBuf,
    },
    /// Read the file `name` (`.forward` or `.forward+EXT`) in the home of
    /// `uid`, as that user.
    Forward {
        /// Whose home.
        uid: u32,
        /// The file's name in it.
        name: String,
    },
    /// Re-read the root-owned configuration and take the policy from it
    /// (after a reload).
    Refresh,
}

/// The helper's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Done: delivered, or the command exited 0.
    Done,
    /// The command exited with this status and (the start of) this output.
    Exit(i32, String),
    /// The command was killed (by a signal or the time limit): why.
    Killed(String),
    /// The work failed (an I/O error, a full disk): why. Worth retrying.
    Failed(String),
    /// The request was refused by the validator or malformed: why. Not
    /// worth retrying.
    Refused(String),
    /// A password check: the outcome's code (see the auth crate) and its
    /// text (the account name on success, else a reason).
    Password(u8, String),
    /// A session process was started: its pid.
    Started(u32),
    /// A file read: its owner and its contents.
    File {
        /// The file's owner.
        uid: u32,
        /// The file's group.
        gid: u32,
        /// What it holds.
        contents: Vec<u8>,
    },
    /// There is no such file.
    Missing,
    /// A `.forward` exists but Postfix's local(8) would not use it (not a
    /// regular file, a bad owner, world writable, or the user may not
    /// open it): local(8)'s warning. The mail goes to the mailbox, as
    /// when the daemon finds this itself; unlike [`Response::Refused`]
    /// (the request itself refused), which defers it. A daemon older
    /// than this kind reads it as an unknown answer and defers: safe.
    Ignored(String),
}

const MAILDIR: u8 = 1;
const MBOX: u8 = 2;
const COMMAND: u8 = 3;
const PASSWORD: u8 = 4;
/// Far from the others: kinds are added by several hands.
const SESSION: u8 = 16;
const READ_FILE: u8 = 32;
const FORWARD: u8 = 33;
const REFRESH: u8 = 34;

const DONE: u8 = 1;
const EXIT: u8 = 2;
const KILLED: u8 = 3;
const FAILED: u8 = 4;
const REFUSED: u8 = 5;
const CHECKED: u8 = 6;
const STARTED: u8 = 16;
const FILE: u8 = 32;
const MISSING: u8 = 33;
const IGNORED: u8 = 34;

impl Request {
    /// The body of a frame carrying this request as `id`.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        let mut out = Body::new(id);
        match self {
            Request::Maildir {
                ids,
                home,
                path,
                message,
            } => {
                out.u8(MAILDIR).ids(*ids);
                match home {
                    Some(home) => out.u8(1).path(home),
                    None => out.u8(0),
                };
                out.path(path).bytes(message);
            }
            Request::Mbox {
                ids,
                path,
                sender,
                lock_wait_ms,
                message,
            } => {
                out.u8(MBOX).ids(*ids).path(path).bytes(sender.as_bytes());
                out.u32(*lock_wait_ms).bytes(message);
            }
            Request::Command {
                ids,
                args,
                env,
                dir,
                time_limit,
                input,
            } => {
                out.u8(COMMAND).ids(*ids).u32(len32(args.len()));
                for a in args {
                    out.bytes(a.as_bytes());
                }
                out.u32(len32(env.len()));
                for (k, v) in env {
                    out.bytes(k.as_bytes()).bytes(v.as_bytes());
                }
                out.path(dir).u32(*time_limit).bytes(input);
            }
            Request::Password { login, password } => {
                out.u8(PASSWORD)
                    .bytes(login.as_bytes())
                    .bytes(password.as_bytes());
            }
            Request::Session(session) => {
                out.u8(SESSION);
                session.encode(&mut out);
            }
            Request::ReadFile { path } => {
                out.u8(READ_FILE).path(path);
            }
            Request::Forward { uid, name } => {
                out.u8(FORWARD).u32(*uid).bytes(name.as_bytes());
            }
            Request::Refresh => {
                out.u8(REFRESH);
            }
        }
        out.0
    }

    /// Reads a frame body: its id, and the request or why it is not one
    /// (the id is `None` when even that is missing).
    pub fn decode(body: &[u8]) -> (Option<u64>, Result<Request, String>) {
        let mut r = Fields(body);
        let Ok(id) = r.u64() else {
            return (None, Err("a frame too short for an id".to_owned()));
        };
        (Some(id), Request::fields(&mut r))
    }

    fn fields(r: &mut Fields<'_>) -> Result<Request, String> {
        let request = match r.u8()? {
            MAILDIR => {
                let ids = r.ids()?;
                let home = match r.u8()? {
                    0 => None,
                    1 => Some(r.path()?),
                    other => return Err(format!("bad home flag {other}")),
                };
                Request::Maildir {
                    ids,
                    home,
                    path: r.path()?,
                    message: r.bytes()?.to_vec(),
                }
            }
            MBOX => Request::Mbox {
                ids: r.ids()?,
                path: r.path()?,
                sender: r.string()?,
                lock_wait_ms: r.u32()?,
                message: r.bytes()?.to_vec(),
            },
            COMMAND => {
                let ids = r.ids()?;
                let mut args = Vec::new();
                for _ in 0..r.count()? {
                    args.push(r.string()?);
                }
                let mut env = Vec::new();
                for _ in 0..r.count()? {
                    env.push((r.string()?, r.string()?));
                }
                Request::Command {
                    ids,
                    args,
                    env,
                    dir: r.path()?,
                    time_limit: r.u32()?,
                    input: r.bytes()?.to_vec(),
                }
            }
            PASSWORD => Request::Password {
                login: r.string()?,
                password: r.string()?,
            },
            SESSION => Request::Session(MailSession::decode(r)?),
            READ_FILE => Request::ReadFile { path: r.path()? },
            FORWARD => Request::Forward {
                uid: r.u32()?,
                name: r.string()?,
            },
            REFRESH => Request::Refresh,
            other => return Err(format!("unknown request kind {other}")),
        };
        r.end()?;
        Ok(request)
    }
}

impl Response {
    /// The body of a frame answering request `id`.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        let mut out = Body::new(id);
        match self {
            Response::Done => out.u8(DONE),
            Response::Exit(code, output) => out
                .u8(EXIT)
                .u32(u32::from_be_bytes(code.to_be_bytes()))
                .bytes(output.as_bytes()),
            Response::Killed(why) => out.u8(KILLED).bytes(why.as_bytes()),
            Response::Failed(why) => out.u8(FAILED).bytes(why.as_bytes()),
            Response::Refused(why) => out.u8(REFUSED).bytes(why.as_bytes()),
            Response::Password(code, text) => out.u8(CHECKED).u8(*code).bytes(text.as_bytes()),
            Response::Started(pid) => out.u8(STARTED).u32(*pid),
            Response::File { uid, gid, contents } => {
                out.u8(FILE).u32(*uid).u32(*gid).bytes(contents)
            }
            Response::Missing => out.u8(MISSING),
            Response::Ignored(warning) => out.u8(IGNORED).bytes(warning.as_bytes()),
        };
        out.0
    }

    /// Reads an answer's frame body: the id it answers and the answer.
    pub fn decode(body: &[u8]) -> Result<(u64, Response), String> {
        let mut r = Fields(body);
        let id = r.u64()?;
        let response = match r.u8()? {
            DONE => Response::Done,
            EXIT => Response::Exit(i32::from_be_bytes(r.u32()?.to_be_bytes()), r.string()?),
            KILLED => Response::Killed(r.string()?),
            FAILED => Response::Failed(r.string()?),
            REFUSED => Response::Refused(r.string()?),
            CHECKED => Response::Password(r.u8()?, r.string()?),
            STARTED => Response::Started(r.u32()?),
            FILE => Response::File {
                uid: r.u32()?,
                gid: r.u32()?,
                contents: r.bytes()?.to_vec(),
            },
            MISSING => Response::Missing,
            IGNORED => Response::Ignored(r.string()?),
            other => return Err(format!("unknown answer kind {other}")),
        };
        r.end()?;
        Ok((id, response))
    }
}
