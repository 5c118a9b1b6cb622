//! Local submission without the network: Postfix's postdrop, pickup and
//! the cleanup work they hand over to.
//!
//! `postern sendmail` writes one file per message into
//! `QUEUE_DIRECTORY/maildrop` ([`drop_file`]: `.NAME` written and fsynced,
//! renamed to `NAME`, the directory fsynced), then sends a datagram to
//! `QUEUE_DIRECTORY/public/pickup` ([`notify`]). The daemon's pickup task
//! ([`Queue::start_pickup`]) scans the directory at start-up, on every
//! datagram and every [`POLL`], turns each file into a queued message,
//! and only then removes it; a message dropped while no daemon runs waits
//! there for the next start. A crash between the two repeats a message
//! rather than loses it.
//!
//! On the way in it does cleanup's work for local submissions: a
//! `Received: by HOST (Postern, from userid N)` line, `Date:`,
//! `Message-Id:` and `From:` when missing (`From: Full Name <sender>`
//! with `-F`), `Bcc:` and `Resent-Bcc:` removed, and a header/body
//! separator where the message had none. A file that does not parse, is
//! too large or has another name (a hard link) goes to `corrupt/` and is
//! logged; the uid recorded is the file owner's, whatever it says.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_mail::date::{Civil, rfc5322};
use postern_mail::{Address, Enqueue, Envelope, Notify, QueueId, Recipient, Ret, ReversePath};
use tokio::net::UnixDatagram;
use tokio::sync::watch;

use crate::id::next_id;
use crate::queue::Queue;
use crate::spool::{QueueName, sync_dir};

/// The first line of a maildrop file: its format and version.
const MAGIC: &str = "POSTERN-MAILDROP 1";

/// How often the maildrop directory is scanned without a datagram (a
/// sender that could not reach the socket, say).
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
    /// The envelope recipients, qualified, at least one.
    pub recipients: Vec<Address>,
    /// The message, CRLF line ends, as read (no dot-stuffing).
    pub content: Vec<u8>,
    /// `-N`: RFC 3461 NOTIFY for every recipient.
    pub notify: Option<Notify>,
    /// `-R`: RFC 3461 RET.
    pub ret: Option<Ret>,
    /// `-V`: RFC 3461 ENVID.
    pub envid: Option<String>,
}

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
        let mut out = format!("{MAGIC}\nuid: {}\nsender: {}\n", self.uid, self.sender);
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
            out.push_str(&format!("recipient: {r}\n"));
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
        };
        let mut has_sender = false;
        for line in lines {
            let (key, value) = line.split_once(": ").unwrap_or((line, ""));
            match key {
                "uid" => {
                    submission.uid = value.parse().map_err(|_| format!("bad uid {value:?}"))?
                }
                "sender" if value.is_empty() || value == "<>" => has_sender = true,
                "sender" => {
                    submission.sender = ReversePath::Address(
                        Address::parse(value).map_err(|e| format!("sender {value:?}: {e}"))?,
                    );
                    has_sender = true;
                }
                "full-name" => submission.full_name = Some(value.to_owned()),
                "notify" => submission.notify = Some(parse_notify(value)?),
                "ret" => submission.ret = Some(parse_ret(value)?),
                "envid" => {
                    check_envid(value)?;
                    submission.envid = Some(value.to_owned());
                }
                "recipient" => submission
                    .recipients
                    .push(Address::parse(value).map_err(|e| format!("recipient {value:?}: {e}"))?),
                other => return Err(format!("unknown envelope line {other:?}")),
            }
        }
        if !has_sender || submission.uid == u32::MAX || submission.recipients.is_empty() {
            return Err("incomplete envelope (uid, sender, recipient)".to_owned());
        }
        Ok(submission)
    }
}

/// Writes `submission` durably into the maildrop of `queue_directory`
/// and returns its path: `.NAME`, fsync, rename to `NAME`, fsync the
/// directory. On error nothing of it is left.
pub fn drop_file(queue_directory: &Path, submission: &Submission) -> io::Result<PathBuf> {
    let dir = maildrop_dir(queue_directory);
    if !dir.is_dir() {
        create_maildrop(&dir)?;
    }
    let name = next_id().to_string();
    let tmp = dir.join(format!(".{name}"));
    let path = dir.join(&name);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&submission.encode())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(&dir)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// The maildrop directory: writable by every local user (who cannot list
/// it), sticky so none can remove another's file, as Postfix's 1730.
fn create_maildrop(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o1733)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1733))
}

/// Tells a running daemon to look in the maildrop now. `Ok(false)` when
/// none listens (or the socket is not ours to use): the file waits for
/// the next scan or start.
pub fn notify(queue_directory: &Path) -> io::Result<bool> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    match socket.send_to(b"pickup", socket_path(queue_directory)) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

impl Queue {
    /// Creates the maildrop, binds `public/pickup`, and runs the pickup
    /// until `shutdown`: every file in the maildrop becomes a queued
    /// message. Files over `max_size` bytes go to `corrupt/`. Must run
    /// inside a tokio runtime.
    pub fn start_pickup(
        self: Arc<Self>,
        max_size: u64,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<tokio::task::JoinHandle<()>> {
        let dir = maildrop_dir(self.dir());
        create_maildrop(&dir)?;
        let path = socket_path(self.dir());
        if let Some(public) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(public)?;
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let socket = UnixDatagram::bind(&path)?;
        Ok(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                self.pick_up_all(&dir, max_size).await;
                tokio::select! {
                    _ = socket.recv(&mut buf) => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => break,
                }
            }
            let _ = std::fs::remove_file(&path);
        }))
    }

    /// Queues every finished file in the maildrop, oldest name first.
    async fn pick_up_all(&self, dir: &Path, max_size: u64) {
        let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect(),
            Err(e) => {
                tracing::warn!(target: "postern/pickup", "{}: {e}", dir.display());
                return;
            }
        };
        names.sort();
        for path in names {
            self.pick_up(&path, max_size).await;
        }
    }

    /// One maildrop file into the queue; removed only once queued.
    async fn pick_up(&self, path: &Path, max_size: u64) {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => m,
            // Gone (another scan took it) or not a file: not ours.
            _ => return,
        };
        let submission = if meta.nlink() > 1 {
            // A hard link to some other file: not a submission, and not to
            // be read with the daemon's rights.
            Err("has more than one hard link".to_owned())
        } else if meta.len() > max_size {
            Err(format!(
                "{} bytes, over the limit of {max_size}",
                meta.len()
            ))
        } else {
            std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| Submission::decode(&b))
        };
        let mut submission = match submission {
            Ok(s) => s,
            Err(e) => {
                let name = path.file_name().unwrap_or_default();
                let target = self.spool.dir(QueueName::Corrupt).join(name);
                tracing::warn!(target: "postern/pickup", "{}: {e}; moved to {}", path.display(), target.display());
                if std::fs::rename(path, &target).is_err() {
                    let _ = std::fs::remove_file(path);
                }
                return;
            }
        };
        // Who wrote the file, not who it claims: any local user may write
        // into the maildrop, so the owner is the only uid to trust.
        submission.uid = meta.uid();
        let id = self.new_id();
        let envelope = local_envelope(&submission, meta.modified().ok());
        let content = local_headers(&submission, &self.settings.myhostname.to_string(), &id);
        tracing::info!(target: "postern/pickup", "{id}: uid={} from=<{}>", submission.uid, envelope.sender);
        match self.enqueue(id.clone(), envelope, content).await {
            Ok(()) => {
                let _ = std::fs::remove_file(path);
                if let Some(dir) = path.parent() {
                    let _ = sync_dir(dir);
                }
            }
            Err(e) => {
                tracing::warn!(target: "postern/pickup", "{id}: cannot queue {}: {e}; will retry", path.display())
            }
        }
    }
}

/// The envelope of a local submission.
fn local_envelope(submission: &Submission, arrival: Option<SystemTime>) -> Envelope {
    let mut envelope = Envelope::new(submission.sender.clone());
    let mut seen: Vec<&Address> = Vec::new();
    for r in &submission.recipients {
        if !seen.contains(&r) {
            seen.push(r);
            let mut recipient = Recipient::new(r.clone());
            recipient.notify = submission.notify;
            envelope.recipients.push(recipient);
        }
    }
    envelope.ret = submission.ret;
    envelope.envid = submission.envid.clone();
    envelope.client_name = "localhost".to_owned();
    envelope.protocol = "local".to_owned();
    envelope.arrival = arrival.unwrap_or_else(SystemTime::now);
    envelope.eight_bit_mime = submission.content.iter().any(|b| *b >= 0x80);
    envelope
}

/// The message as queued: our Received line and the headers cleanup adds
/// for local submissions, then the submitted header without `Bcc:`, then
/// the body.
fn local_headers(submission: &Submission, hostname: &str, id: &QueueId) -> Vec<u8> {
    let now = SystemTime::now();
    let content = &submission.content;
    let (header, body) = split_header(content);
    let mut kept: Vec<&[u8]> = Vec::new();
    let (mut date, mut message_id, mut from, mut dropping) = (false, false, false, false);
    for line in header {
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if !dropping {
                kept.push(line);
            }
            continue;
        }
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map_or(&line[..0], |c| &line[..c]);
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        date |= is("date");
        message_id |= is("message-id");
        from |= is("from");
        dropping = is("bcc") || is("resent-bcc");
        if !dropping {
            kept.push(line);
        }
    }
    let mut out = format!(
        "Received: by {hostname} (Postern, from userid {})\r\n\tid {id}; {}\r\n",
        submission.uid,
        rfc5322(now)
    );
    if !date {
        out.push_str(&format!("Date: {}\r\n", rfc5322(now)));
    }
    if !message_id {
        let c = Civil::from_time(now);
        out.push_str(&format!(
            "Message-Id: <{}{:02}{:02}{:02}{:02}{:02}.{id}@{hostname}>\r\n",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ));
    }
    if !from {
        let sender = match &submission.sender {
            ReversePath::Address(a) => a.to_string(),
            _ => format!("MAILER-DAEMON@{hostname}"),
        };
        match &submission.full_name {
            Some(name) if !name.is_empty() => {
                out.push_str(&format!("From: {} <{sender}>\r\n", quote_phrase(name)));
            }
            _ => out.push_str(&format!("From: {sender}\r\n")),
        }
    }
    let mut bytes = out.into_bytes();
    for line in kept {
        bytes.extend_from_slice(line);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// A display name as an RFC 5322 §3.2.5 phrase: quoted when it holds
/// specials.
fn quote_phrase(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c));
    if plain {
        name.to_owned()
    } else {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

/// The header lines (without line ends) and the body. The header ends at
/// the first empty line, or before the first line that is not a header
/// field (then the body starts there: a message typed without headers).
fn split_header(content: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < content.len() {
        let end = content[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |p| at + p + 1);
        let raw = &content[at..end];
        let line = raw
            .strip_suffix(b"\r\n")
            .or_else(|| raw.strip_suffix(b"\n"))
            .unwrap_or(raw);
        if line.is_empty() {
            return (lines, &content[end..]);
        }
        let continuation = (line.starts_with(b" ") || line.starts_with(b"\t")) && !lines.is_empty();
        if !continuation && !is_field(line) {
            return (lines, &content[at..]);
        }
        lines.push(line);
        at = end;
    }
    (lines, &content[content.len()..])
}

/// RFC 5322 §2.2: a field name of printable ASCII but colon, then a colon.
fn is_field(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(c) if c > 0 => line[..c].iter().all(|b| (0x21..0x7f).contains(b)),
        _ => false,
    }
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
            recipients: vec![Address::parse("bob@example.org").unwrap()],
            content: content.to_vec(),
            notify: None,
            ret: None,
            envid: None,
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
            ..s
        };
        assert_eq!(Submission::decode(&null.encode()).unwrap(), null);
        let never = parse_notify("never").unwrap();
        assert!(!never.success && !never.failure && !never.delay);
        assert!(parse_notify("sometimes").is_err() && parse_ret("all").is_err());
        assert!(check_envid("with space").is_err());
        let env = local_envelope(&null, None);
        assert_eq!(env.ret, Some(Ret::Headers));
        assert_eq!(env.envid.as_deref(), Some("QQ314159"));
        assert!(
            env.recipients[0]
                .notify
                .is_some_and(|n| n.failure && n.delay)
        );
        for bad in [
            &b"garbage"[..],
            b"POSTERN-MAILDROP 1\nuid: x\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient: <<\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nevil: 1\nrecipient: c@d\n\n",
        ] {
            assert!(Submission::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cleanup_adds_headers_and_drops_bcc() {
        let id = QueueId::parse("ABCDEF123456").unwrap();
        let s = submission(b"To: bob@example.org\r\nBcc: carol@example.org,\r\n dave@example.org\r\nSubject: hi\r\n\r\nbody\r\n");
        let out = String::from_utf8(local_headers(&s, "mx.example.org", &id)).unwrap();
        assert!(
            out.starts_with(
                "Received: by mx.example.org (Postern, from userid 1000)\r\n\tid ABCDEF123456; "
            ),
            "{out}"
        );
        assert!(out.contains("\r\nDate: "), "{out}");
        assert!(out.contains(".ABCDEF123456@mx.example.org>\r\n"), "{out}");
        assert!(
            out.contains("From: \"Alice \\\"A\\\" Example\" <alice@mx.example.org>\r\n"),
            "{out}"
        );
        assert!(!out.contains("carol") && !out.contains("dave"), "{out}");
        assert!(out.ends_with("To: bob@example.org\r\nSubject: hi\r\n\r\nbody\r\n"));
    }

    #[test]
    fn a_message_without_headers_gets_a_separator() {
        let id = QueueId::parse("ABCDEF123456").unwrap();
        let mut s = submission(b"just a line\r\nFrom: not a header here\r\n");
        s.full_name = None;
        let out = String::from_utf8(local_headers(&s, "h", &id)).unwrap();
        assert!(
            out.ends_with(
                "From: alice@mx.example.org\r\n\r\njust a line\r\nFrom: not a header here\r\n"
            ),
            "{out}"
        );
        let (header, body) = split_header(b"Subject: a\r\n");
        assert_eq!((header.len(), body), (1, &b""[..]));
    }

    #[tokio::test]
    async fn dropped_files_are_queued_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let s = submission(b"Subject: hi\r\n\r\nbody\r\n");
        // Dropped before the daemon runs: picked up at start.
        let path = drop_file(dir.path(), &s).unwrap();
        assert!(!notify(dir.path()).unwrap());
        std::fs::write(maildrop_dir(dir.path()).join("junk"), b"junk").unwrap();
        let q = Arc::new(Queue::open(dir.path()).unwrap());
        let (stop, shutdown) = watch::channel(false);
        let task = Arc::clone(&q).start_pickup(1_000_000, shutdown).unwrap();
        let second = drop_file(dir.path(), &s).unwrap();
        assert!(notify(dir.path()).unwrap());
        for _ in 0..200 {
            if !path.exists() && !second.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!path.exists() && !second.exists());
        let queued = q.list().unwrap();
        assert_eq!(queued.len(), 2, "{queued:?}");
        let corrupt = std::fs::read_dir(dir.path().join("corrupt"))
            .unwrap()
            .count();
        assert_eq!(corrupt, 1);
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
