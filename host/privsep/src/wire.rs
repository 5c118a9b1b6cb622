//! The requests and answers between the daemon and the helper, and their
//! byte format: a frame is a 4-byte big-endian length, then the body: an
//! 8-byte request id (answers carry the id of their request, so that
//! requests from many deliveries share one socket), a kind byte, and the
//! fields in order: numbers big-endian, byte strings as a 4-byte length
//! and the bytes. Nothing is optional but a home (a flag byte first);
//! anything left over after the last field is an error.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::session::MailSession;

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
                message,
            } => {
                out.u8(MBOX).ids(*ids).path(path).bytes(sender.as_bytes());
                out.bytes(message);
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

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame)
}

/// Reads one frame of at most `max` bytes; `None` at a clean end of the
/// stream. A longer frame is an error (the stream cannot be resynced).
pub fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes, over the {max}-byte cap"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// A length as the 4 bytes the format has; longer is cut by the frame
/// cap long before this matters.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A body being written.
pub(crate) struct Body(Vec<u8>);

impl Body {
    pub(crate) fn new(id: u64) -> Body {
        Body(id.to_be_bytes().to_vec())
    }
    pub(crate) fn u8(&mut self, b: u8) -> &mut Body {
        self.0.push(b);
        self
    }
    pub(crate) fn u32(&mut self, n: u32) -> &mut Body {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    pub(crate) fn ids(&mut self, ids: Ids) -> &mut Body {
        self.u32(ids.uid).u32(ids.gid)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Body {
        self.u32(len32(b.len()));
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn path(&mut self, p: &Path) -> &mut Body {
        self.bytes(p.as_os_str().as_bytes())
    }
}

/// A body being read.
pub(crate) struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated request".to_owned());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let hi = u64::from(self.u32()?);
        Ok(hi << 32 | u64::from(self.u32()?))
    }
    pub(crate) fn ids(&mut self) -> Result<Ids, String> {
        Ok(Ids {
            uid: self.u32()?,
            gid: self.u32()?,
        })
    }
    /// A count of items, each at least 4 bytes long: bounded by what is
    /// left, so that a forged count cannot make us loop or allocate.
    pub(crate) fn count(&mut self) -> Result<usize, String> {
        let n = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if n > self.0.len() / 4 {
            return Err("truncated request".to_owned());
        }
        Ok(n)
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        self.take(n)
    }
    pub(crate) fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "a field not in UTF-8".to_owned())
    }
    pub(crate) fn path(&mut self) -> Result<PathBuf, String> {
        Ok(PathBuf::from(OsString::from_vec(self.bytes()?.to_vec())))
    }
    pub(crate) fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after the request".to_owned())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn command() -> Request {
        Request::Command {
            ids: Ids {
                uid: 1000,
                gid: 1000,
            },
            args: vec!["/bin/sh".into(), "-c".into(), "id -u".into()],
            env: vec![("HOME".into(), "/home/a".into())],
            dir: "/".into(),
            time_limit: 10,
            input: b"hi\n".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let requests = [
            Request::Maildir {
                ids: Ids { uid: 5, gid: 6 },
                home: Some("/h".into()),
                path: "/h/Maildir/".into(),
                message: b"x".to_vec(),
            },
            Request::Mbox {
                ids: Ids { uid: 5, gid: 6 },
                path: "/var/mail/a".into(),
                sender: "a@b".into(),
                message: vec![],
            },
            command(),
            Request::Password {
                login: "a".into(),
                password: "p".into(),
            },
        ];
        for r in requests {
            assert_eq!(Request::decode(&r.encode(7)), (Some(7), Ok(r)));
        }
        for a in [
            Response::Done,
            Response::Exit(-1, "out".into()),
            Response::Password(3, "x".into()),
        ] {
            assert_eq!(Response::decode(&a.encode(9)).unwrap(), (9, a));
        }
    }

    #[test]
    fn forged_bytes_are_refused_not_trusted() {
        let good = command().encode(1);
        // Every truncation, and a byte too many, is an error.
        for n in 0..good.len() {
            assert!(Request::decode(&good[..n]).1.is_err(), "{n}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(Request::decode(&long).1.is_err());
        // A kind that does not exist.
        let mut kind = good.clone();
        kind[8] = 99;
        assert_eq!(
            Request::decode(&kind).1.unwrap_err(),
            "unknown request kind 99"
        );
        // A count of arguments far beyond the frame allocates nothing.
        let mut count = good.clone();
        count[17..21].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Request::decode(&count).1.is_err());
        // A frame over the cap is refused before it is read.
        let mut stream = Vec::new();
        write_frame(&mut stream, &good).unwrap();
        let err = read_frame(&mut stream.as_slice(), 8).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            read_frame(&mut stream.as_slice(), 1 << 20).unwrap(),
            Some(good)
        );
        assert_eq!(read_frame(&mut &b""[..], 8).unwrap(), None);
    }

    #[test]
    fn file_requests_and_answers_round_trip() {
        for r in [
            Request::ReadFile {
                path: "/etc/postern/key.pem".into(),
            },
            Request::Forward {
                uid: 1000,
                name: ".forward".into(),
            },
            Request::Refresh,
        ] {
            let body = r.encode(3);
            for n in 0..body.len() {
                assert!(Request::decode(&body[..n]).1.is_err(), "{n}");
            }
            assert_eq!(Request::decode(&body), (Some(3), Ok(r)));
        }
        for a in [
            Response::File {
                uid: 0,
                gid: 5,
                contents: b"key".to_vec(),
            },
            Response::Missing,
            Response::Ignored("file /h/.forward is world writable".into()),
        ] {
            let body = a.encode(4);
            for n in 0..body.len() {
                assert!(Response::decode(&body[..n]).is_err(), "{n}");
            }
            assert_eq!(Response::decode(&body).unwrap(), (4, a));
        }
        // An answer kind this side does not know (a newer helper's) is an
        // error, never taken for another.
        let mut unknown = Response::Missing.encode(4);
        unknown[8] = 99;
        assert_eq!(
            Response::decode(&unknown).unwrap_err(),
            "unknown answer kind 99"
        );
    }
}
