//! Logging to the local syslog daemon, as Postfix does by default: one
//! RFC 3164 datagram per line on the Unix socket `syslog_socket`
//! (`/dev/log`, where rsyslog's imuxsock and systemd-journald listen),
//! shaped as glibc's syslog(3) writes it:
//! `<22>Nov 30 02:53:55 postern/smtpd[1234]: 3F2A1B: client=...`.
//!
//! The server never waits for syslog. A line goes into a bounded queue
//! that one thread empties onto the socket; when the queue is full (the
//! daemon is slow or stuck), or the socket is missing (the daemon is
//! restarting), the line is dropped and counted, and once lines flow
//! again a warning says how many were lost. A send that fails because the
//! daemon went away (ECONNREFUSED: it restarted and bound a new socket)
//! reconnects and sends again.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Postfix's `syslog_facility` names (syslog(3)) and their codes.
pub const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Lines waiting for the socket: a burst of a few thousand lines (a
/// reload, a flood of rejections) rides out a syslog daemon's pause; at
/// about 200 bytes a line it holds under 2 MB.
const QUEUE: usize = 8192;

/// How long one send may wait for room in the daemon's socket buffer
/// before the line is dropped: a stuck daemon costs one line a second,
/// and the queue in front of it fills and drops instead of blocking.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest datagram sent; longer lines are cut (rsyslog's default
/// maximum message size is 8 KiB).
const MAX_LINE: usize = 8192;

/// Lines dropped since start-up: the queue was full or the socket absent.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines dropped so far because syslog was slow or unavailable (for a
/// metric; the log itself says so once syslog takes lines again).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Counts `n` lines dropped elsewhere (the session processes' channel,
/// [`super::channel`]) with those syslog dropped: one metric for lost lines.
pub(crate) fn count_dropped(n: u64) {
    DROPPED.fetch_add(n, Ordering::Relaxed);
}

/// Counts a dropped line, process-wide and for one writer.
fn drop_line(count: &AtomicU64) {
    count.fetch_add(1, Ordering::Relaxed);
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// The code of a facility name, as `syslog_facility` spells it.
pub fn facility(name: &str) -> Option<u8> {
    FACILITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(_, code)| *code)
}

/// The syslog severity of a tracing level: err, warning, info, debug
/// (RFC 5424 section 6.2.1), as Postfix's msg_error, msg_warn, msg_info.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The writer the maillog formatter writes each line to.
#[derive(Debug)]
pub struct Syslog {
    facility: u8,
    queue: SyncSender<Vec<u8>>,
    /// Lines this writer dropped.
    dropped: Arc<AtomicU64>,
}

impl Syslog {
    /// Starts the thread that writes to `socket`. `name` (syslog_name)
    /// tags its own warnings about lost lines.
    pub fn start(socket: &Path, facility: u8, name: &str) -> io::Result<Syslog> {
        Syslog::with_queue(socket, facility, name, QUEUE)
    }

    fn with_queue(socket: &Path, facility: u8, name: &str, size: usize) -> io::Result<Syslog> {
        let (queue, lines) = std::sync::mpsc::sync_channel(size);
        let dropped = Arc::new(AtomicU64::new(0));
        let sender = Sender {
            dropped: dropped.clone(),
            path: socket.to_owned(),
            socket: None,
            facility,
            tag: format!("{name}/postlogd[{}]", std::process::id()),
            reported: 0,
            complained: false,
        };
        std::thread::Builder::new()
            .name("syslog".to_owned())
            .spawn(move || sender.run(lines))?;
        Ok(Syslog {
            facility,
            queue,
            dropped,
        })
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        self.line(6)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        self.line(severity(meta.level()))
    }
}

impl Syslog {
    fn line(&self, severity: u8) -> Line<'_> {
        let mut buf = Vec::with_capacity(256);
        header(&mut buf, self.facility, severity, SystemTime::now());
        let header = buf.len();
        Line {
            to: self,
            buf,
            header,
        }
    }
}

/// One line being formatted; sent (queued) when dropped, so that
/// however the formatter splits its writes, one event is one datagram.
#[derive(Debug)]
pub struct Line<'a> {
    to: &'a Syslog,
    buf: Vec<u8>,
    /// The length of `<PRI>TIMESTAMP `: nothing written, nothing sent.
    header: usize,
}

impl io::Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.buf.len() == self.header {
            return;
        }
        let mut line = std::mem::take(&mut self.buf);
        while line.last() == Some(&b'\n') {
            line.pop();
        }
        line.truncate(MAX_LINE);
        match self.to.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                drop_line(&self.to.dropped);
            }
        }
    }
}

/// `<PRI>Mmm dd hh:mm:ss `: RFC 3164 section 4.1.1 and 4.1.2, with no
/// HOSTNAME, as syslog(3) sends to the local socket (the daemon adds the
/// host). The time is UTC: rsyslog and journald stamp local messages
/// with their own clock by default.
fn header(buf: &mut Vec<u8>, facility: u8, severity: u8, now: SystemTime) {
    use std::io::Write as _;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (_, month, day) = civil(secs / 86_400);
    let t = secs % 86_400;
    let month = MONTHS
        .get(month.saturating_sub(1) as usize)
        .unwrap_or(&"Jan");
    let _ = write!(
        buf,
        "<{}>{month} {day:>2} {:02}:{:02}:{:02} ",
        u32::from(facility) * 8 + u32::from(severity),
        t / 3600,
        t / 60 % 60,
        t % 60
    );
}

/// Year, month (1-12) and day of a day count since 1970-01-01 (Howard
/// Hinnant's civil_from_days).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The thread's end of the queue: the socket, reconnected as needed.
struct Sender {
    dropped: Arc<AtomicU64>,
    path: PathBuf,
    socket: Option<UnixDatagram>,
    facility: u8,
    tag: String,
    /// Dropped lines already reported in a warning.
    reported: u64,
    /// Whether the socket's absence was said on stderr (once per outage).
    complained: bool,
}

impl Sender {
    fn run(mut self, lines: Receiver<Vec<u8>>) {
        for line in lines {
            if !self.send(&line) {
                drop_line(&self.dropped);
                continue;
            }
            let dropped = self.dropped.load(Ordering::Relaxed);
            if dropped > self.reported {
                let mut warning = Vec::new();
                header(&mut warning, self.facility, 4, SystemTime::now());
                warning.extend_from_slice(
                    format!(
                        "{}: warning: {} log lines dropped: syslog at {} was slow or unavailable",
                        self.tag,
                        dropped - self.reported,
                        self.path.display()
                    )
                    .as_bytes(),
                );
                if self.send(&warning) {
                    self.reported = dropped;
                }
            }
        }
    }

    /// Sends one datagram; reconnects once if the daemon went away.
    fn send(&mut self, line: &[u8]) -> bool {
        for _ in 0..2 {
            let Some(socket) = self.connected() else {
                return false;
            };
            match socket.send(line) {
                Ok(_) => return true,
                // Slow: the daemon's buffer stayed full.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                // Gone (restarted: ECONNREFUSED, ENOTCONN): connect anew.
                Err(_) => self.socket = None,
            }
        }
        false
    }

    fn connected(&mut self) -> Option<&UnixDatagram> {
        if self.socket.is_none() {
            match connect(&self.path) {
                Ok(s) => {
                    self.socket = Some(s);
                    self.complained = false;
                }
                Err(e) => {
                    if !self.complained {
                        // Logging cannot log its own failure: stderr
                        // (the journal, or the detached server's log).
                        eprintln!(
                            "postern: warning: syslog: cannot send to {}: {e}; dropping log lines until it can",
                            self.path.display()
                        );
                        self.complained = true;
                    }
                    return None;
                }
            }
        }
        self.socket.as_ref()
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    Ok(socket)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_rfc_3164s() {
        let mut buf = Vec::new();
        // 2026-11-30T02:53:05Z
        let t = UNIX_EPOCH + Duration::from_secs(1_796_007_185);
        header(&mut buf, 2, 6, t);
        assert_eq!(String::from_utf8(buf).unwrap(), "<22>Nov 30 02:53:05 ");
        let mut buf = Vec::new();
        // 2024-03-01T00:00:00Z, after a leap day; local7.err
        header(
            &mut buf,
            23,
            3,
            UNIX_EPOCH + Duration::from_secs(1_709_251_200),
        );
        assert_eq!(String::from_utf8(buf).unwrap(), "<187>Mar  1 00:00:00 ");
    }

    #[test]
    fn facilities_by_name() {
        assert_eq!(facility("mail"), Some(2));
        assert_eq!(facility("LOCAL3"), Some(19));
        assert_eq!(facility("mial"), None);
    }

    #[test]
    fn lines_go_out_whole_and_come_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        daemon
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let syslog = Syslog::start(&path, 2, "postern").unwrap();
        let send = |text: &str| {
            let mut w = syslog.make_writer();
            io::Write::write_all(&mut w, text.as_bytes()).unwrap();
        };
        let recv = |d: &UnixDatagram| {
            let mut buf = [0u8; 1024];
            let n = d.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        send("postern/smtpd[1]: hello\n");
        let got = recv(&daemon);
        assert!(got.starts_with("<22>"), "{got}");
        assert!(got.ends_with(" postern/smtpd[1]: hello"), "{got}");
        // The daemon restarts: a new socket at the same path.
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        send("postern/smtpd[1]: lost\n");
        let start = std::time::Instant::now();
        while syslog.dropped.load(Ordering::Relaxed) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never dropped");
            std::thread::sleep(Duration::from_millis(10));
        }
        let daemon = UnixDatagram::bind(&path).unwrap();
        daemon
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        send("postern/smtpd[1]: again\n");
        let got = recv(&daemon);
        assert!(got.ends_with("postern/smtpd[1]: again"), "{got}");
        let got = recv(&daemon);
        assert!(
            got.starts_with("<20>")
                && got.contains("postern/postlogd[")
                && got.contains("warning: 1 log lines dropped"),
            "{got}"
        );
    }

    #[test]
    fn a_stuck_daemon_costs_dropped_lines_not_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        // Bound, never read until the end.
        let daemon = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::with_queue(&path, 2, "postern", 4).unwrap();
        let start = std::time::Instant::now();
        for n in 0..5000 {
            let mut w = syslog.make_writer();
            io::Write::write_all(&mut w, format!("postern/smtpd[1]: line {n}\n").as_bytes())
                .unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        let dropped = syslog.dropped.load(Ordering::Relaxed);
        assert!(dropped > 0, "nothing dropped");
        // The daemon catches up: the lines that got through, then the
        // count of those lost.
        daemon
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 1024];
        loop {
            let n = daemon.recv(&mut buf).unwrap();
            let got = String::from_utf8_lossy(&buf[..n]).into_owned();
            if got.contains("log lines dropped") {
                assert!(got.starts_with("<20>"), "{got}");
                break;
            }
            assert!(got.contains("postern/smtpd[1]: line "), "{got}");
        }
    }
}
