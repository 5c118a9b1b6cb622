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

use postern_mail::{Address, Notify, Orcpt, QueueId, Recipient, Ret, ReversePath};

use crate::id::next_id;
use crate::spool::sync_dir;

/// The first line of a maildrop file: its format and version.
const MAGIC: &str = "POSTERN-MAILDROP 1";

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

/// One message as `sendmail` hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The submitting user's uid (for the Received line and the log). The
    /// pickup takes it from the file's owner, whatever the file says.
    pub uid: u32,
    /// The envelope sender, already qualified with `myorigin`.
    pub sender: ReversePath,
    /// `-F`: the sender's full name, for a `From:` header made here.
    pub full_name: Option<String>,
    /// The envelope recipients, qualified, at least one, each with the
    /// DSN `NOTIFY` and `ORCPT` it was given (`sendmail -bs`).
    pub recipients: Vec<Recipient>,
    /// The message, CRLF line ends, as read (no dot-stuffing).
    pub content: Vec<u8>,
    /// `-N`: RFC 3461 NOTIFY for every recipient that has none of its own.
    pub notify: Option<Notify>,
    /// `-R`: RFC 3461 RET.
    pub ret: Option<Ret>,
    /// `-V`: RFC 3461 ENVID.
    pub envid: Option<String>,
    /// `-bs`: the id [`reserve_id`] gave for this message, which the
    /// daemon uses if it reserved it for this caller.
    pub queue_id: Option<String>,
    /// `-bs`: the HELO/EHLO name and the protocol (`SMTP`, `ESMTP`), for
    /// the one `Received:` line the message gets.
    pub helo: Option<(String, String)>,
}

/// Whether `name` may stand in a `Received: from NAME` (RFC 5321 §4.4):
/// a HELO argument of printable ASCII without spaces, 255 at most.
fn check_helo(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(format!("bad HELO name {name:?}"));
    }
    Ok(())
}

/// The protocols a `-bs` session may name.
const PROTOCOLS: &[&str] = &["SMTP", "ESMTP", "UTF8SMTP"];

/// `never` or a comma list of `success`, `failure`, `delay` (sendmail's
/// `-N`, RFC 3461 §4.1), any case.
pub fn parse_notify(value: &str) -> Result<Notify, String> {
    let mut notify = Notify::default();
    let words: Vec<String> = value
        .split(',')
        .map(|w| w.trim().to_ascii_lowercase())
        .collect();
    if words.len() == 1 && words[0] == "never" {
        return Ok(notify);
    }
    for word in &words {
        match word.as_str() {
            "success" => notify.success = true,
            "failure" => notify.failure = true,
            "delay" => notify.delay = true,
            _ => {
                return Err(format!(
                    "{value:?}: expected never, or success, failure and delay"
                ));
            }
        }
    }
    Ok(notify)
}

/// `full` or `hdrs` (sendmail's `-R`, RFC 3461 §4.3), any case.
pub fn parse_ret(value: &str) -> Result<Ret, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "full" => Ok(Ret::Full),
        "hdrs" => Ok(Ret::Headers),
        _ => Err(format!("{value:?}: expected full or hdrs")),
    }
}

/// An ENVID (RFC 3461 §4.4): printable ASCII without spaces, 100 at most.
pub fn check_envid(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 100 || !value.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(format!(
            "{value:?}: an envelope id is 1 to 100 printable characters without spaces"
        ));
    }
    Ok(())
}

impl Submission {
    /// The maildrop file's bytes: a small text envelope, a blank line,
    /// the content.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{MAGIC}\nuid: {}\nsize: {}\nsender: {}\n",
            self.uid,
            self.content.len(),
            self.sender
        );
        if let Some(id) = self
            .queue_id
            .as_ref()
            .filter(|i| QueueId::parse(i).is_some())
        {
            out.push_str(&format!("queue-id: {id}\n"));
        }
        if let Some((helo, protocol)) = self
            .helo
            .as_ref()
            .filter(|(h, p)| check_helo(h).is_ok() && PROTOCOLS.contains(&p.as_str()))
        {
            out.push_str(&format!("helo: {helo} {protocol}\n"));
        }
        if let Some(name) = &self.full_name {
            // One line: a name cannot add envelope lines.
            let name: String = name.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!("full-name: {name}\n"));
        }
        if let Some(n) = self.notify {
            out.push_str(&format!("notify: {}\n", n.keywords()));
        }
        if let Some(r) = self.ret {
            out.push_str(&format!("ret: {}\n", r.keyword()));
        }
        if let Some(e) = self.envid.as_ref().filter(|e| check_envid(e).is_ok()) {
            out.push_str(&format!("envid: {e}\n"));
        }
        for r in &self.recipients {
            out.push_str(&format!("recipient: {}\n", r.address));
            if let Some(n) = r.notify {
                out.push_str(&format!("recipient-notify: {}\n", n.keywords()));
            }
            if let Some(o) = &r.orcpt {
                // One line: an ORCPT cannot add envelope lines.
                let o: String = o.to_string().chars().filter(|c| !c.is_control()).collect();
                out.push_str(&format!("recipient-orcpt: {o}\n"));
            }
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.content);
        bytes
    }

    /// Reads a maildrop file; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Submission, String> {
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or("no end of envelope")?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "envelope is not UTF-8")?;
        let mut lines = head.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("not a maildrop file (expected {MAGIC:?})"));
        }
        let mut submission = Submission {
            uid: u32::MAX,
            sender: ReversePath::Null,
            full_name: None,
            recipients: Vec::new(),
            content: bytes[split + 2..].to_vec(),
            notify: None,
            ret: None,
            envid: None,
            queue_id: None,
            helo: None,
        };
        let mut has_sender = false;
        let mut size = None;
        for line in lines {
            let (key, value) = line.split_once(": ").unwrap_or((line, ""));
            match key {
                "uid" => {
                    submission.uid = value.parse().map_err(|_| format!("bad uid {value:?}"))?
                }
                "size" => {
                    size = Some(
                        value
                            .parse::<usize>()
                            .map_err(|_| format!("bad size {value:?}"))?,
                    )
                }
                "queue-id" => {
                    QueueId::parse(value).ok_or_else(|| format!("bad queue id {value:?}"))?;
                    submission.queue_id = Some(value.to_owned());
                }
                "helo" => {
                    let (helo, protocol) = value
                        .split_once(' ')
                        .filter(|(h, p)| check_helo(h).is_ok() && PROTOCOLS.contains(p))
                        .ok_or_else(|| format!("bad helo line {value:?}"))?;
                    submission.helo = Some((helo.to_owned(), protocol.to_owned()));
                }
                "sender" if value.is_empty() || value == "<>" => has_sender = true,
                "sender" => {
                    submission.sender = ReversePath::Address(
                        Address::parse(value).map_err(|e| format!("sender {value:?}: {e}"))?,
                    );
                    has_sender = true;
                }
                // A lone CR would survive `lines()`: no control
                // characters reach the From: header made of this.
                "full-name" => {
                    submission.full_name = Some(value.chars().filter(|c| !c.is_control()).collect())
                }
                "notify" => submission.notify = Some(parse_notify(value)?),
                "ret" => submission.ret = Some(parse_ret(value)?),
                "envid" => {
                    check_envid(value)?;
                    submission.envid = Some(value.to_owned());
                }
                "recipient" => submission.recipients.push(Recipient::new(
                    Address::parse(value).map_err(|e| format!("recipient {value:?}: {e}"))?,
                )),
                // These say more of the recipient just before them.
                "recipient-notify" | "recipient-orcpt" => {
                    let Some(r) = submission.recipients.last_mut() else {
                        return Err(format!("{key} before any recipient"));
                    };
                    if key == "recipient-notify" {
                        r.notify = Some(parse_notify(value)?);
                    } else {
                        let (addr_type, address) = value
                            .split_once(';')
                            .ok_or_else(|| format!("bad ORCPT {value:?}"))?;
                        r.orcpt = Some(Orcpt {
                            addr_type: addr_type.to_owned(),
                            address: address.to_owned(),
                        });
                    }
                }
                other => return Err(format!("unknown envelope line {other:?}")),
            }
        }
        if !has_sender || submission.uid == u32::MAX || submission.recipients.is_empty() {
            return Err("incomplete envelope (uid, sender, recipient)".to_owned());
        }
        // A file cut short (a writer that died, a full disk) is refused,
        // not queued as a shorter message.
        match size {
            None => return Err("incomplete envelope (no size)".to_owned()),
            Some(n) if n != submission.content.len() => {
                return Err(format!(
                    "truncated or padded: the envelope says {n} bytes, the content has {}",
                    submission.content.len()
                ));
            }
            Some(_) => {}
        }
        Ok(submission)
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn submission(content: &[u8]) -> Submission {
        Submission {
            uid: 1000,
            sender: ReversePath::Address(Address::parse("alice@mx.example.org").unwrap()),
            full_name: Some("Alice \"A\" Example".to_owned()),
            recipients: vec![Recipient::new(Address::parse("bob@example.org").unwrap())],
            content: content.to_vec(),
            notify: None,
            ret: None,
            envid: None,
            queue_id: None,
            helo: None,
        }
    }

    #[test]
    fn maildrop_file_round_trip() {
        let s = submission(b"Subject: x\r\n\r\nbody\n\n\r\n");
        assert_eq!(Submission::decode(&s.encode()).unwrap(), s);
        let null = Submission {
            sender: ReversePath::Null,
            full_name: None,
            notify: Some(parse_notify("FAILURE,delay").unwrap()),
            ret: Some(Ret::Headers),
            envid: Some("QQ314159".to_owned()),
            queue_id: Some("0123456789ABCDEF0123".to_owned()),
            helo: Some(("client.example".to_owned(), "ESMTP".to_owned())),
            ..s
        };
        assert_eq!(Submission::decode(&null.encode()).unwrap(), null);
        let never = parse_notify("never").unwrap();
        assert!(!never.success && !never.failure && !never.delay);
        assert!(parse_notify("sometimes").is_err() && parse_ret("all").is_err());
        assert!(check_envid("with space").is_err());
        let env = crate::pickup_cleanup::local_envelope(&null, None);
        assert_eq!(env.ret, Some(Ret::Headers));
        assert_eq!(env.envid.as_deref(), Some("QQ314159"));
        assert!(
            env.recipients[0]
                .notify
                .is_some_and(|n| n.failure && n.delay)
        );
        // Each recipient's own NOTIFY and ORCPT (from `-bs`) travel too,
        // and win over `-N`.
        let mut carol = Recipient::new(Address::parse("carol@example.org").unwrap());
        carol.notify = Some(parse_notify("never").unwrap());
        carol.orcpt = Some(Orcpt {
            addr_type: "rfc822".to_owned(),
            address: "Carol@Example.ORG\r\nrecipient: evil@x".to_owned(),
        });
        let mut two = null.clone();
        two.recipients.push(carol);
        let back = Submission::decode(&two.encode()).unwrap();
        assert_eq!(back.recipients.len(), 2);
        let orcpt = back.recipients[1].orcpt.as_ref().unwrap();
        assert_eq!(orcpt.address, "Carol@Example.ORGrecipient: evil@x");
        let env = crate::pickup_cleanup::local_envelope(&back, None);
        assert!(env.recipients[1].notify.is_some_and(|n| !n.failure));
        assert!(env.recipients[0].notify.is_some_and(|n| n.failure));
        let good = b"POSTERN-MAILDROP 1\nuid: 1\nsize: 1\nsender: a@b\nrecipient: c@d\nhelo: [127.0.0.1] SMTP\n\nx";
        assert!(Submission::decode(good).is_ok());
        for bad in [
            &b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient-notify: never\nrecipient: c@d\n\n"[..],
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient: c@d\nrecipient-orcpt: x\n\n",
            &b"garbage"[..],
            b"POSTERN-MAILDROP 1\nuid: x\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient: <<\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nevil: 1\nrecipient: c@d\n\n",
            // No size, a size that does not match (truncated), bad -bs lines.
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient: c@d\n\nx",
            b"POSTERN-MAILDROP 1\nuid: 1\nsize: 10\nsender: a@b\nrecipient: c@d\n\nx",
            b"POSTERN-MAILDROP 1\nuid: 1\nsize: 1\nsender: a@b\nrecipient: c@d\nhelo: a b\n\nx",
            b"POSTERN-MAILDROP 1\nuid: 1\nsize: 1\nsender: a@b\nrecipient: c@d\nqueue-id: ../x\n\nx",
        ] {
            assert!(Submission::decode(bad).is_err(), "{bad:?}");
        }
    }
}
