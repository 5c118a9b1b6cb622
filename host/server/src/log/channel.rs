//! The log channel of the session processes: the lines of a POP3 or IMAP
//! session served by a process of the mailbox's owner (`postern
//! mail-session`, [`crate::mail_session`]) reach the daemon's own log
//! output, wherever it goes (stderr, `maillog_file`, syslog), as Dovecot's
//! processes write to its `log` process rather than to a destination of
//! their own (which a process running as a mail user could not open, nor
//! should).
//!
//! The channel is one datagram socket pair made before the privilege
//! drop: the daemon keeps the reading end ([`open`] starts the thread
//! that reads it); the root helper gets the other as its standard output
//! and gives it to every session process as standard error. The child's
//! log formatter sends each line as one datagram ([`SessionWriter`]), so
//! a child that dies mid-line loses only that line and lines of
//! different children never interleave.
//!
//! The daemon trusts none of it. The kernel says who sent a datagram
//! (SCM_CREDENTIALS), and that pid is the one logged; the program is one a
//! session process logs as (else `mail-session`); the line is cut at
//! [`MAX_LINE`], control characters are escaped, and each process may log
//! at most [`PER_PROCESS`] lines a second, all of them [`ALL`]: beyond,
//! lines are dropped and counted (`postern_log_lines_dropped_total`), and
//! a warning says how many once the second is over. Memory stays one
//! buffer; a child that floods fills its own socket buffer and loses its
//! lines (it never waits: [`SessionWriter`] sends with MSG_DONTWAIT).
//! It tells how many once a line goes through again, with a drop notice
//! ([`DROP_NOTICE`]) that the daemon counts in the same metric (at most
//! [`MAX_NOTICE`] a notice, a notice a line against the caps) and logs
//! as its own warning.
//!
//! Here: the channel and the daemon's reader with its caps; in `line`,
//! [`Relayed`], a line as the daemon takes and logs it; in `writer`,
//! the session process's [`SessionWriter`].

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags, SocketType,
    recvmsg, socketpair, sockopt,
};

mod line;
mod writer;

pub use line::Relayed;
pub(crate) use line::printable;
pub use writer::SessionWriter;

/// The longest line taken from a session process (as sent: tag and
/// text); the rest is cut. Session lines are a few hundred bytes.
pub const MAX_LINE: usize = 2048;

/// Lines one session process may log in a second: a session logs a
/// handful (Login, Disconnected, a warning), so only a broken or hostile
/// one reaches it.
pub const PER_PROCESS: u32 = 50;

/// Lines all session processes together may log in a second, so that
/// thousands of them cannot flood the daemon's log either.
pub const ALL: u32 = 2000;

/// A session process's drop notice ([`SessionWriter`]): this, then how
/// many lines it dropped because the channel was full, in decimal, alone
/// in a datagram. No formatted line begins with a NUL; a datagram that
/// begins so but is not exactly a notice is taken as a line (its NUL
/// escaped).
pub const DROP_NOTICE: &[u8] = b"\0dropped ";

/// The most lines one drop notice is believed for: a process that
/// claims more is counted this many (a child's drops between two lines
/// that go through are a flood's, thousands; the metric should not be
/// a number any child may write).
pub const MAX_NOTICE: u64 = 100_000;

/// The programs a session process logs as (its tracing targets and
/// crates); any other tag is shown as `mail-session`, so that a process
/// running as a mail user cannot write `smtpd` or `qmgr` lines. The
/// helper (root) also logs as `privsep` ([`helper_warning`]).
const PROGRAMS: &[&str] = &["pop3", "imap", "mailbox", "auth", "mail-session"];

/// A warning of the root helper, `postern/privsep[PID]: warning: TEXT`:
/// sent to the daemon over the channel (the helper's standard output) so
/// that it reaches the daemon's log destination; on the helper's stderr
/// where there is no channel, or it is full.
pub fn helper_warning(text: &str) {
    helper_line("warning", text);
}

/// A line of the root helper at `severity` (`warning`, `panic`):
/// `postern/privsep[PID]: SEVERITY: TEXT`, as [`helper_warning`] sends it.
pub fn helper_line(severity: &str, text: &str) {
    use std::os::fd::AsFd as _;
    let line = format!(
        "postern/privsep[{}]: {severity}: {text}\n",
        std::process::id()
    );
    let out = io::stdout();
    if !(is_channel(out.as_fd()) && writer::send_line(out.as_fd(), line.as_bytes())) {
        eprint!("{line}");
    }
}

/// Makes the channel and starts the daemon's thread that reads it; the
/// end the session processes write to, for the helper.
pub fn open() -> io::Result<OwnedFd> {
    let (ours, theirs) = pair()?;
    std::thread::Builder::new()
        .name("session-log".to_owned())
        .spawn(move || {
            Reader::new(ours, Limits::default()).run(|line| line.emit());
        })?;
    Ok(theirs)
}

/// The socket pair, the reading end told the sender of each datagram.
fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (ours, theirs) = socketpair(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_passcred(&ours, true)?;
    Ok((ours, theirs))
}

/// The count of a drop notice ([`DROP_NOTICE`]), at most [`MAX_NOTICE`];
/// None for anything that is not exactly a notice of at least one line.
fn notice(datagram: &[u8]) -> Option<u64> {
    let digits = datagram.strip_prefix(DROP_NOTICE)?;
    // u64::MAX has 20 digits; a sign or a space is not a count.
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let lost: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (lost > 0).then_some(lost.min(MAX_NOTICE))
}

/// Whether `fd` is a channel's writing end (a datagram socket), as the
/// helper's standard output and a session process's standard error are
/// when the daemon made the channel.
pub fn is_channel(fd: BorrowedFd<'_>) -> bool {
    matches!(sockopt::socket_type(fd), Ok(SocketType::DGRAM))
}

/// The rates, a field so that tests can make the second longer.
#[derive(Debug, Clone, Copy)]
struct Limits {
    per_process: u32,
    all: u32,
    window: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_process: PER_PROCESS,
            all: ALL,
            window: Duration::from_secs(1),
        }
    }
}

/// The daemon's end: reads datagrams, counts them per sender and window.
struct Reader {
    socket: OwnedFd,
    limits: Limits,
    window: Instant,
    /// Lines per pid in this window (at most the processes that logged
    /// in it; cleared with it).
    counts: HashMap<u32, u32>,
    total: u32,
    /// Dropped and not yet reported.
    dropped: u64,
}

impl Reader {
    fn new(socket: OwnedFd, limits: Limits) -> Reader {
        Reader {
            socket,
            limits,
            window: Instant::now(),
            counts: HashMap::new(),
            total: 0,
            dropped: 0,
        }
    }

    /// Reads for as long as the daemon runs (a datagram socket sees no
    /// end when its writers close), giving each accepted line to `emit`.
    fn run(mut self, mut emit: impl FnMut(Relayed)) {
        // One byte more than a line: a longer one is cut (MSG_TRUNC).
        let mut buf = vec![0u8; MAX_LINE + 1];
        loop {
            let (n, pid, root) = match self.recv(&mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(target: "postern/postlogd", "the session log channel failed: {e}");
                    return;
                }
            };
            let now = Instant::now();
            if now.duration_since(self.window) >= self.limits.window {
                self.window = now;
                self.counts.clear();
                self.total = 0;
                if self.dropped > 0 {
                    emit(Relayed {
                        program: "postlogd",
                        pid: std::process::id(),
                        level: tracing::Level::WARN,
                        panic: false,
                        text: format!(
                            "{} log lines of session processes dropped: more than {} a second from one, or {} from all",
                            self.dropped, self.limits.per_process, self.limits.all
                        ),
                    });
                    self.dropped = 0;
                }
            }
            let datagram = buf.get(..n.min(MAX_LINE)).unwrap_or_default();
            self.take(datagram, pid, root, &mut emit);
        }
    }

    /// One datagram of `pid`: a drop notice, or lines.
    fn take(&mut self, datagram: &[u8], pid: u32, root: bool, emit: &mut impl FnMut(Relayed)) {
        if let Some(lost) = notice(datagram) {
            // A notice is a line against the caps: a child cannot flood
            // the log, or the metric, with notices either.
            if self.admit(pid) {
                super::syslog::count_dropped(lost);
                emit(Relayed {
                    program: "postlogd",
                    pid: std::process::id(),
                    level: tracing::Level::WARN,
                    panic: false,
                    text: format!(
                        "{lost} log lines of session process {pid} dropped: its log channel was full"
                    ),
                });
            } else {
                self.dropped += 1;
                super::syslog::count_dropped(1);
            }
            return;
        }
        for line in datagram.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if self.admit(pid) {
                emit(Relayed::parse(line, pid, root));
            } else {
                self.dropped += 1;
                super::syslog::count_dropped(1);
            }
        }
    }

    /// Whether one more line of `pid` fits this window.
    fn admit(&mut self, pid: u32) -> bool {
        if self.total >= self.limits.all {
            return false;
        }
        let count = self.counts.entry(pid).or_insert(0);
        if *count >= self.limits.per_process {
            return false;
        }
        *count += 1;
        self.total += 1;
        true
    }

    /// One datagram: its length, its sender's pid, and whether the sender
    /// is root (the helper; a session process never is). A datagram
    /// without credentials (none should come) is logged as pid 0.
    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, u32, bool)> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = recvmsg(
            self.socket.as_fd(),
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        let (mut pid, mut root) = (0, false);
        // Room for the credentials only: descriptors a hostile sender
        // attaches do not fit and are closed by the kernel (MSG_CTRUNC),
        // and any that came would be closed with their message here.
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmCredentials(cred) = message {
                pid = u32::try_from(cred.pid.as_raw_nonzero().get()).unwrap_or(0);
                root = cred.uid.is_root();
            }
        }
        Ok((got.bytes, pid, root))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::writer::send_line;
    use super::*;

    /// Lines go through whole with their sender's pid; a flood from one
    /// process is cut at the per-process cap, and the rest counted and
    /// reported once the window is over; the writer never waits; a line
    /// longer than the cap is cut, and a second line in one datagram
    /// (written raw) is a line of its own.
    #[test]
    fn a_flood_is_capped_dropped_and_counted() {
        let (ours, theirs) = pair().unwrap();
        let limits = Limits {
            per_process: 10,
            all: 1000,
            window: Duration::from_secs(2),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            Reader::new(ours, limits).run(|line| tx.send(line).unwrap());
        });
        let start = Instant::now();
        let mut sent = 0;
        for n in 0..20_000 {
            if send_line(
                theirs.as_fd(),
                format!("postern/pop3[1]: line {n}\n").as_bytes(),
            ) {
                sent += 1;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(sent >= 10, "{sent}");
        std::thread::sleep(Duration::from_millis(2100));
        let long = format!("postern/imap[1]: {}\nsecond\n", "x".repeat(3 * MAX_LINE));
        assert!(send_line(theirs.as_fd(), long.as_bytes()));
        assert!(send_line(theirs.as_fd(), b"postern/imap[1]: a\nsecond\n"));
        drop(theirs);
        let mut got = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
            got.push(line);
            if got.last().is_some_and(|l: &Relayed| l.text == "second") {
                break;
            }
        }
        let me = std::process::id();
        let lines: Vec<&Relayed> = got.iter().filter(|l| l.program == "pop3").collect();
        assert_eq!(lines.len(), 10, "{got:?}");
        assert!(lines.iter().all(|l| l.pid == me), "{got:?}");
        assert_eq!(lines[0].text, "line 0");
        let report = got.iter().find(|l| l.program == "postlogd").unwrap();
        let dropped: usize = report.text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(dropped, sent - 10, "{report:?}");
        let cut = got.iter().find(|l| l.program == "imap").unwrap();
        assert_eq!(cut.text.len(), MAX_LINE - "postern/imap[1]: ".len());
        // The cut line's rest (`second`) is gone with the cut; the last
        // datagram's second line stands alone.
        let tail: Vec<&str> = got.iter().rev().take(2).map(|l| l.text.as_str()).collect();
        assert_eq!(tail, ["second", "a"]);
        drop(rx);
        drop(reader);
    }

    /// A child's drop notice is counted in the daemon's metric and logged
    /// as the daemon's warning naming the child; a claim beyond the cap
    /// counts the cap; anything not exactly a notice is a line; notices
    /// count against the per-process cap as lines do.
    #[test]
    fn drop_notices_are_counted_capped_and_strict() {
        let (ours, _theirs) = pair().unwrap();
        let limits = Limits {
            per_process: 2,
            all: 1000,
            window: Duration::from_secs(3600),
        };
        let mut reader = Reader::new(ours, limits);
        let mut got = Vec::new();
        let before = crate::log::syslog::dropped();
        let huge = format!("\0dropped {}", u64::MAX);
        for datagram in [b"\0dropped 7".as_slice(), huge.as_bytes()] {
            reader.take(datagram, 41, false, &mut |l| got.push(l));
        }
        let me = std::process::id();
        let texts: Vec<&str> = got.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "7 log lines of session process 41 dropped: its log channel was full",
                "100000 log lines of session process 41 dropped: its log channel was full",
            ]
        );
        assert!(
            got.iter()
                .all(|l| (l.program, l.pid, l.level) == ("postlogd", me, tracing::Level::WARN))
        );
        // Other tests count too: at least these.
        assert!(crate::log::syslog::dropped() - before >= 7 + MAX_NOTICE);
        got.clear();
        for bad in [
            "\0dropped ",
            "\0dropped 0",
            "\0dropped +3",
            "\0dropped 3\n",
            "\0dropped 99999999999999999999999",
            "\0dropped 1 2",
        ] {
            assert_eq!(notice(bad.as_bytes()), None, "{bad:?}");
        }
        // Taken as a line, its NUL escaped.
        reader.take(b"\0dropped x", 42, false, &mut |l| got.push(l));
        assert_eq!(got[0].program, "mail-session");
        assert_eq!(got[0].text, "\\u{0}dropped x");
        // 41 used its 2 lines on notices: two more are a dropped line
        // each (reported with the window), whatever they claim.
        for _ in 0..2 {
            reader.take(b"\0dropped 5", 41, false, &mut |l| got.push(l));
        }
        reader.take(b"\0dropped 5", 43, false, &mut |l| got.push(l));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(reader.dropped, 2);
        assert!(got[1].text.starts_with("5 log lines of session process 43"));
    }

    #[test]
    fn a_channel_is_told_from_a_file() {
        let (ours, _theirs) = pair().unwrap();
        assert!(is_channel(ours.as_fd()));
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(!is_channel(file.as_fd()));
    }
}
