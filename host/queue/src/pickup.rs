//! Local submission without the network: Postfix's postdrop, pickup and
//! the cleanup work they hand over to.
//!
//! `postern sendmail` runs as whoever calls it, root or not, and the
//! queue belongs to the daemon's user: so, as Postfix needs a setgid
//! `postdrop` to write into its maildrop, a caller needs a way in that
//! gives it no other right over the queue. Postern has two, tried in
//! this order:
//! - **The pickup socket** ([`submit`]): `QUEUE_DIRECTORY/public/pickup`,
//!   a unix stream socket anyone may connect to (the socket 0666, its
//!   directories searchable but not listable). The client writes the
//!   maildrop file's bytes ([`Submission::encode`]) and closes its side;
//!   the daemon reads at most the size limit, takes the caller's uid
//!   from the kernel (`SO_PEERCRED`), never from what was written,
//!   queues the message durably, and only then answers `ok ID`
//!   (`reject TEXT` for a message it will never take, `defer TEXT` for
//!   one it cannot take now). A caller gets no file descriptor, path or
//!   directory of the queue, and cannot name another uid; the daemon
//!   reads with a deadline and a cap on concurrent callers
//!   (`pickup_service`).
//! - **The maildrop directory** ([`drop_file`]), when no daemon answers:
//!   `QUEUE_DIRECTORY/maildrop`, mode 1733 and owned by the daemon's
//!   user. Any local user may create a file there, and nothing else: the
//!   directory cannot be listed but by its owner, and the sticky bit
//!   keeps a user from renaming or removing a file of another. A file is
//!   created with `O_EXCL` under an unguessable name (the time, then 128
//!   random bits), mode 0600 (0644 when the daemon runs as a user who is
//!   neither root nor the caller, so that it can read it; the name still
//!   hides it from everyone else), written as `.NAME`, fsynced, renamed
//!   to `NAME`, and the directory fsynced. The daemon scans the maildrop
//!   at start-up, when told to ([`notify`]), and every [`POLL`]; it opens
//!   each file without following links or blocking on a FIFO, takes the
//!   submitting uid from the file's owner (never from its content),
//!   checks the envelope and that the content has the `size` the
//!   envelope announces (a truncated file is refused), turns it into a
//!   queued message, and only then removes it. A file that fails any
//!   check goes to `corrupt/` with a log line naming it. A crash between
//!   queueing and removal repeats a message rather than loses it.
//!
//! On the way in it does cleanup's work for local submissions
//! (`pickup_cleanup`): a
//! `Received: by HOST (Postern, from userid N)` line, `Date:`,
//! `Message-Id:` and `From:` when missing (`From: Full Name <sender>`
//! with `-F`), `Bcc:` and `Resent-Bcc:` removed, and a header/body
//! separator where the message had none. A file that does not parse, is
//! too large or has another name (a hard link) goes to `corrupt/` and is
//! logged; the uid recorded is the file owner's, whatever it says.
//!
//! `sendmail -bs` also asks the socket for a queue id first
//! ([`reserve_id`]) and names it in its submission (`queue-id`), so that
//! its `250 ... queued as ID` names the id the message is queued under;
//! the daemon honours a `queue-id` only from the uid it reserved it for.

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_mail::QueueId;

use crate::id::next_id;
pub use crate::pickup_file::{Submission, check_envid, parse_notify, parse_ret};
use crate::spool::sync_dir;

/// What a client sends on the pickup socket to have the maildrop
/// scanned now.
pub(crate) const SCAN: &[u8] = b"pickup\n";

/// How long a client waits for the daemon to take a message (it fsyncs
/// before it answers).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the maildrop directory is scanned without being told (a
/// file dropped while the socket could not be reached, say).
pub const POLL: Duration = Duration::from_secs(30);

/// `QUEUE_DIRECTORY/maildrop`.
pub fn maildrop_dir(queue_directory: &Path) -> PathBuf {
    queue_directory.join("maildrop")
}

/// `QUEUE_DIRECTORY/public/pickup`.
pub fn socket_path(queue_directory: &Path) -> PathBuf {
    queue_directory.join("public/pickup")
}

/// Writes `submission` durably into the maildrop of `queue_directory`
/// and returns its path: `.NAME` created with `O_EXCL`, written, fsynced,
/// renamed to `NAME`, the directory fsynced. On error nothing of it is
/// left. Any local user may: see the module documentation for why that
/// gives a user no other right over the queue.
pub fn drop_file(queue_directory: &Path, submission: &Submission) -> io::Result<PathBuf> {
    let dir = maildrop_dir(queue_directory);
    if !dir.is_dir() {
        if !queue_directory.is_dir() {
            // Searchable, not listable: the daemon makes its queues 0700
            // inside it.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(queue_directory)?;
        }
        create_maildrop(&dir)?;
    }
    // Others cannot list the directory, so a name they cannot guess is a
    // file they cannot open, whatever its mode.
    let prefix = submission
        .queue_id
        .as_deref()
        .filter(|i| QueueId::parse(i).is_some())
        .map_or_else(|| next_id().to_string(), str::to_owned);
    let name = format!("{prefix}.{}", random_hex()?);
    let tmp = dir.join(format!(".{name}"));
    let path = dir.join(&name);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            // O_EXCL: never a file (or a link) someone put there first.
            .create_new(true)
            .mode(file_mode(&dir)?)
            .open(&tmp)?;
        file.write_all(&submission.encode())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        match sync_dir(&dir) {
            // A user who may not read the maildrop cannot open it to
            // fsync it: the whole file system's sync makes the rename
            // durable instead.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(rustix::fs::syncfs(&file)?),
            done => done,
        }
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// A drop file's mode: 0600 when the daemon (the maildrop's owner) is
/// root or the caller, who can read it anyway; 0644 when it is another
/// user, who must read it to queue it.
fn file_mode(maildrop: &Path) -> io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(maildrop)?.uid();
    let euid = rustix::process::geteuid().as_raw();
    Ok(if owner == 0 || owner == euid {
        0o600
    } else {
        0o644
    })
}

/// 128 random bits as 32 hex digits, from the kernel.
fn random_hex() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The maildrop directory: its owner (the daemon's user) lists and reads
/// it; everyone may create files in it, and the sticky bit keeps each
/// user's files from the others (module documentation).
pub(crate) fn create_maildrop(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(MAILDROP_MODE)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(MAILDROP_MODE))
}

/// The maildrop's mode: Postfix's 1730 opened to everyone's writes
/// (there is no setgid postdrop here), sticky, not listable.
pub(crate) const MAILDROP_MODE: u32 = 0o1733;

/// What the daemon answered a [`submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Queued durably under this id.
    Queued(String),
    /// Never to be taken (too large, malformed): the reason.
    Rejected(String),
    /// Not taken now (disk full, shutting down): the reason.
    Deferred(String),
}

impl Answer {
    /// The line the daemon writes for this answer.
    pub(crate) fn line(&self) -> String {
        let (word, text) = match self {
            Answer::Queued(t) => ("ok", t),
            Answer::Rejected(t) => ("reject", t),
            Answer::Deferred(t) => ("defer", t),
        };
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        format!("{word} {text}\n")
    }

    /// Reads the daemon's line; anything else is a deferral.
    fn parse(line: &str) -> Answer {
        let line = line.trim_end();
        let (word, text) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "ok" => Answer::Queued(text.to_owned()),
            "reject" => Answer::Rejected(text.to_owned()),
            "defer" => Answer::Deferred(text.to_owned()),
            _ => Answer::Deferred(format!(
                "unexpected answer from the pickup service: {line:?}"
            )),
        }
    }
}

/// Hands `submission` to the running daemon over the pickup socket and
/// returns its answer. An error of kind `NotFound`, `ConnectionRefused`
/// or `PermissionDenied` means no daemon can be reached: the caller may
/// fall back to [`drop_file`].
pub fn submit(queue_directory: &Path, submission: &Submission) -> io::Result<Answer> {
    let mut stream = UnixStream::connect(socket_path(queue_directory))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    let sent = stream
        .write_all(&submission.encode())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    let mut reply = String::new();
    // A line, not more: a bounded read whatever is on the other side.
    let read = (&mut stream).take(4096).read_to_string(&mut reply);
    // A daemon that refuses a message too large stops reading it and
    // answers: the answer counts more than the broken write.
    if reply.is_empty() {
        sent?;
        read?;
        return Ok(Answer::Deferred(
            "the pickup service closed the connection without an answer".to_owned(),
        ));
    }
    Ok(Answer::parse(&reply))
}

/// Whether `e` says that no daemon listens on the pickup socket (or
/// that this user may not use it).
pub fn unreachable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::PermissionDenied
    )
}

/// What else a local user may ask of the pickup service, as Postfix lets
/// any user run `mailq` and `postqueue -f` (`authorized_mailq_users`,
/// `authorized_flush_users`: anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The queue listing in mailq format.
    Mailq,
    /// A queue run now.
    Flush,
    /// A queue id for the caller's next submission (`sendmail -bs`).
    QueueId,
}

impl Request {
    /// The bytes sent for it.
    pub(crate) fn word(self) -> &'static [u8] {
        match self {
            Request::Mailq => b"mailq\n",
            Request::Flush => b"flush\n",
            Request::QueueId => b"queue-id\n",
        }
    }
}

/// The most of a listing a client reads (a queue of 100,000 messages
/// lists in about 20 MB).
const LISTING_LIMIT: u64 = 256 << 20;

/// Asks the running daemon for `request` and returns its answer (the
/// listing, or `ok ...`). Errors as [`submit`]'s: [`unreachable()`] ones
/// mean no daemon listens.
pub fn ask(queue_directory: &Path, request: Request) -> io::Result<Vec<u8>> {
    let mut stream = UnixStream::connect(socket_path(queue_directory))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.write_all(request.word())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = Vec::new();
    (&mut stream).take(LISTING_LIMIT).read_to_end(&mut answer)?;
    Ok(answer)
}

/// Asks the running daemon for the queue id of this caller's next
/// submission (`sendmail -bs`, which names it in its `250`): `Ok(None)`
/// when no daemon answers, and the message will go to the maildrop.
pub fn reserve_id(queue_directory: &Path) -> io::Result<Option<String>> {
    let answer = match ask(queue_directory, Request::QueueId) {
        Ok(a) => a,
        Err(e) if unreachable(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    match Answer::parse(&String::from_utf8_lossy(&answer)) {
        Answer::Queued(id) if QueueId::parse(&id).is_some() => Ok(Some(id)),
        _ => Ok(None),
    }
}

/// Tells a running daemon to look in the maildrop now. `Ok(false)` when
/// none listens (or the socket is not ours to use): the file waits for
/// the next scan or start.
pub fn notify(queue_directory: &Path) -> io::Result<bool> {
    let mut stream = match UnixStream::connect(socket_path(queue_directory)) {
        Ok(s) => s,
        Err(e) if unreachable(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.write_all(SCAN)?;
    Ok(true)
}
