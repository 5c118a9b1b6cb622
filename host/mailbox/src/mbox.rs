//! mbox delivery: one message appended to a Unix mailbox file, as
//! Postfix's local(8) writes `/var/mail/USER` or `$HOME/Mailbox`.
//!
//! The file is locked the two ways Postfix, Dovecot and mutt agree on
//! (Postfix's `mailbox_delivery_lock = fcntl, dotlock` on Linux): a
//! `FILE.lock` dot file created with `O_EXCL` beside it (which also keeps
//! two threads of this process apart, since fcntl locks belong to the
//! process), then an fcntl write lock on the file itself. The message gets
//! a `From SENDER DATE` line, Unix line ends, and mboxrd quoting (every
//! line matching `^>*From ` gains one `>`, so a reader can undo it), and
//! ends with a blank line. The write is fsynced before delivery counts;
//! on any error the file is truncated back to its old length, so a reader
//! never sees half a message.
//!
//! It does not change owner or mode of an existing mailbox, and a new one
//! is created 0600 by whoever runs the delivery.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{FlockOperation, fcntl_lock};

/// A mailbox is the user's alone.
const FILE_MODE: u32 = 0o600;

/// Postfix's `stale_lock_time` (500s): a dot lock older than this was left
/// by a crashed writer and is removed.
const STALE_LOCK: Duration = Duration::from_secs(500);

/// How long to wait for the locks by default: Postfix's
/// `deliver_lock_attempts` (20) times `deliver_lock_delay` (1s).
pub const LOCK_WAIT: Duration = Duration::from_secs(20);

/// How often a held lock is tried again.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// An mbox file.
#[derive(Debug, Clone)]
pub struct Mbox {
    path: PathBuf,
    lock_wait: Duration,
    owner: Option<(u32, u32)>,
}

/// Why a delivery into an mbox failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MboxError {
    /// Another writer held the dot lock or the fcntl lock too long.
    #[error("{}: unable to lock the mailbox: {what}", path.display())]
    Locked {
        /// The mailbox.
        path: PathBuf,
        /// Which lock.
        what: &'static str,
    },
    /// The path is a symbolic link, not a regular file, or has other
    /// names (hard links): refused, as Postfix refuses it.
    #[error("{}: {what}", path.display())]
    Unsafe {
        /// The mailbox.
        path: PathBuf,
        /// What is wrong with it.
        what: &'static str,
    },
    /// Reading, writing, syncing or locking failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl MboxError {
    fn io(path: &Path, source: io::Error) -> MboxError {
        MboxError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Whether the disk is full (or over quota): mail for this mailbox
    /// waits, as for any other temporary failure, but the log says so.
    pub fn is_no_space(&self) -> bool {
        matches!(self, MboxError::Io { source, .. }
            if matches!(source.raw_os_error(), Some(28 | 122))) // ENOSPC, EDQUOT
    }
}

impl Mbox {
    /// The mbox file at `path` (created on first delivery).
    pub fn new(path: impl Into<PathBuf>) -> Mbox {
        Mbox {
            path: path.into(),
            lock_wait: LOCK_WAIT,
            owner: None,
        }
    }

    /// The same file, given to `owner` (uid, gid) when a delivery
    /// creates it: a root daemon writing `/var/mail/alice` hands it to
    /// alice. Ignored unless the daemon runs as root.
    pub fn with_owner(mut self, owner: Option<(u32, u32)>) -> Mbox {
        self.owner = owner;
        self
    }

    /// The same file, waiting at most `wait` for its locks.
    pub fn with_lock_wait(mut self, wait: Duration) -> Mbox {
        self.lock_wait = wait;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one message from envelope sender `sender` (empty for the
    /// null sender, written `MAILER-DAEMON`) received at `date`, given in
    /// pieces (added header lines, then the message as queued, CRLF or LF
    /// line ends). Returns the bytes appended. When this returns `Ok` the
    /// message is on disk; on error the file is as it was.
    pub fn deliver(&self, sender: &str, date: &str, parts: &[&[u8]]) -> Result<u64, MboxError> {
        let message = mbox_message(sender, date, parts);
        let deadline = Instant::now() + self.lock_wait;
        let _dot = DotLock::acquire(&self.path, deadline)?;
        let file = self.open()?;
        lock_fcntl(&file, &self.path, deadline)?;
        let before = file
            .metadata()
            .map_err(|e| MboxError::io(&self.path, e))?
            .len();
        match write_synced(&file, &message) {
            Ok(()) => Ok(message.len() as u64),
            Err(e) => {
                // Take back what part of the message reached the file: the
                // next delivery must not follow half a message.
                let _ = file.set_len(before);
                let _ = file.sync_all();
                Err(MboxError::io(&self.path, e))
            }
        }
        // The fcntl lock goes with the file, the dot lock with `_dot`.
    }

    /// Opens (or creates) the file for appending, refusing symbolic links,
    /// non-regular files and files with more than one name.
    fn open(&self) -> Result<File, MboxError> {
        let existed = fs::symlink_metadata(&self.path).is_ok();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&self.path)
            .map_err(|e| {
                if e.raw_os_error() == Some(40) {
                    // ELOOP: the last component is a symbolic link.
                    MboxError::Unsafe {
                        path: self.path.clone(),
                        what: "is a symbolic link",
                    }
                } else {
                    MboxError::io(&self.path, e)
                }
            })?;
        let meta = file.metadata().map_err(|e| MboxError::io(&self.path, e))?;
        let what = if !meta.is_file() {
            "is not a regular file"
        } else if meta.nlink() > 1 {
            "has more than one hard link"
        } else {
            // Only root can give a file away; anyone else keeps it.
            let root = rustix::process::geteuid().is_root();
            if let Some((uid, gid)) = self.owner.filter(|_| !existed && root) {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                    .map_err(|e| MboxError::io(&self.path, e))?;
            }
            return Ok(file);
        };
        Err(MboxError::Unsafe {
            path: self.path.clone(),
            what,
        })
    }
}

/// The bytes appended for one message: the `From ` line, the pieces with
/// LF line ends and mboxrd quoting, a final newline if missing, and the
/// blank line that ends a message in an mbox.
pub fn mbox_message(sender: &str, date: &str, parts: &[&[u8]]) -> Vec<u8> {
    let size: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(size + size / 50 + 100);
    let sender = if sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        sender
    };
    out.extend_from_slice(format!("From {sender}  {date}\n").as_bytes());
    // Joined first: a piece may end in the middle of a line.
    let joined: Vec<u8> = parts.concat();
    for line in joined.split_inclusive(|&b| b == b'\n') {
        let line = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        if line.iter().skip_while(|&&b| b == b'>').take(5).eq(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

fn write_synced(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_data()
}

/// Takes the fcntl write lock on the whole file, retrying until `deadline`.
fn lock_fcntl(file: &File, path: &Path, deadline: Instant) -> Result<(), MboxError> {
    loop {
        match fcntl_lock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
                if Instant::now() >= deadline {
                    return Err(MboxError::Locked {
                        path: path.to_owned(),
                        what: "fcntl lock held by another process",
                    });
                }
                std::thread::sleep(LOCK_RETRY);
            }
            Err(e) => return Err(MboxError::io(path, e.into())),
        }
    }
}

/// `FILE.lock`, held while it lives.
#[derive(Debug)]
struct DotLock {
    path: PathBuf,
}

impl DotLock {
    /// Creates the dot lock with `O_EXCL`, removing a stale one, waiting
    /// for a live one until `deadline`.
    fn acquire(mailbox: &Path, deadline: Instant) -> Result<DotLock, MboxError> {
        let mut name = mailbox.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => return Ok(DotLock { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_stale(&path) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(MboxError::Locked {
                            path: mailbox.to_owned(),
                            what: "dot lock file exists",
                        });
                    }
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(e) => return Err(MboxError::io(&path, e)),
            }
        }
    }
}

fn is_stale(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_LOCK)
}

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DATE: &str = "Thu Jan  1 00:00:00 1970";

    #[test]
    fn from_line_quoting_and_line_ends() {
        let got = mbox_message(
            "a@x.org",
            DATE,
            &[
                b"Delivered-To: b@y.org\r\n",
                b"Subject: s\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\nFrom\r\n Fro",
                b"m split\r\nlast",
            ],
        );
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "From a@x.org  Thu Jan  1 00:00:00 1970\nDelivered-To: b@y.org\nSubject: s\n\n\
             >From here\n>>From there\n>>>From x\nFrom\n From split\nlast\n\n"
        );
        let null = mbox_message("", DATE, &[b"x\n"]);
        assert!(null.starts_with(b"From MAILER-DAEMON  Thu"));
    }

    #[test]
    fn appends_and_releases_the_dot_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = Mbox::new(dir.path().join("alice"));
        mbox.deliver("a@x.org", DATE, &[b"one\r\n"]).unwrap();
        let n = mbox.deliver("", DATE, &[b"two\r\n"]).unwrap();
        let text = fs::read_to_string(mbox.path()).unwrap();
        assert_eq!(
            text,
            format!("From a@x.org  {DATE}\none\n\nFrom MAILER-DAEMON  {DATE}\ntwo\n\n")
        );
        assert_eq!(
            n as usize,
            format!("From MAILER-DAEMON  {DATE}\ntwo\n\n").len()
        );
        assert!(!dir.path().join("alice.lock").exists());
        let mode = fs::metadata(mbox.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_live_dot_lock_makes_it_wait_then_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice");
        fs::write(dir.path().join("alice.lock"), b"").unwrap();
        let mbox = Mbox::new(&path).with_lock_wait(Duration::from_millis(300));
        let err = mbox.deliver("a@x.org", DATE, &[b"x"]).unwrap_err();
        assert!(matches!(err, MboxError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("unable to lock"), "{err}");
        // Someone else's lock is left alone.
        assert!(dir.path().join("alice.lock").exists());
    }

    #[test]
    fn a_stale_dot_lock_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("alice.lock");
        let file = File::create(&lock).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let mbox = Mbox::new(dir.path().join("alice")).with_lock_wait(Duration::ZERO);
        mbox.deliver("a@x.org", DATE, &[b"x"]).unwrap();
        assert!(!lock.exists());
    }

    #[test]
    fn fcntl_lock_of_another_process_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice");
        fs::write(&path, b"").unwrap();
        // flock(1) cannot take fcntl locks; Python's fcntl.lockf does.
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(3)",
            ])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        let mbox = Mbox::new(&path).with_lock_wait(Duration::from_millis(300));
        let err = mbox.deliver("a@x.org", DATE, &[b"x"]).unwrap_err();
        assert!(err.to_string().contains("fcntl"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"");
        child.kill().unwrap();
        child.wait().unwrap();
        mbox.deliver("a@x.org", DATE, &[b"x"]).unwrap();
    }

    #[test]
    fn symlinks_and_hard_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
        let err = Mbox::new(dir.path().join("link"))
            .deliver("", DATE, &[b"x"])
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        fs::hard_link(&target, dir.path().join("hard")).unwrap();
        let err = Mbox::new(dir.path().join("hard"))
            .deliver("", DATE, &[b"x"])
            .unwrap_err();
        assert!(err.to_string().contains("hard link"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"");
    }
}
