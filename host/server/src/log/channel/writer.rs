//! The session process's end of the channel: its log formatter's writer,
//! one datagram a line, never waiting for the daemon.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::net::{SendFlags, send};
use tracing_subscriber::fmt::MakeWriter;

use super::MAX_LINE;

/// The session process's log writer: each line one datagram on the
/// channel (its standard error), sent without waiting; a full channel
/// drops the line, and the next line that goes through is preceded by a
/// drop notice ([`super::DROP_NOTICE`]) that says how many were lost: the
/// daemon counts them and logs the warning.
#[derive(Debug)]
pub struct SessionWriter {
    channel: OwnedFd,
    /// Lines dropped: the channel was full, or the daemon gone.
    dropped: AtomicU64,
    /// Dropped lines already reported.
    reported: AtomicU64,
}

impl SessionWriter {
    /// A writer on `channel`.
    pub fn new(channel: OwnedFd) -> SessionWriter {
        SessionWriter {
            channel,
            dropped: AtomicU64::new(0),
            reported: AtomicU64::new(0),
        }
    }
}

impl<'a> MakeWriter<'a> for SessionWriter {
    type Writer = Datagram<'a>;

    fn make_writer(&'a self) -> Datagram<'a> {
        Datagram {
            to: self,
            buf: Vec::with_capacity(256),
        }
    }
}

/// One line being formatted; sent when dropped, so that however the
/// formatter splits its writes, one event is one datagram.
#[derive(Debug)]
pub struct Datagram<'a> {
    to: &'a SessionWriter,
    buf: Vec<u8>,
}

impl io::Write for Datagram<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Datagram<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let fd = self.to.channel.as_fd();
        let dropped = self.to.dropped.load(Ordering::Relaxed);
        let reported = self.to.reported.load(Ordering::Relaxed);
        if dropped > reported {
            let mut notice = super::DROP_NOTICE.to_vec();
            notice.extend_from_slice((dropped - reported).to_string().as_bytes());
            if send_line(fd, &notice) {
                self.to.reported.store(dropped, Ordering::Relaxed);
            }
        }
        self.buf.truncate(MAX_LINE);
        if !send_line(fd, &self.buf) {
            self.to.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends one datagram without waiting (a full channel, or a daemon that
/// is gone, is a `false`) and without SIGPIPE.
pub(super) fn send_line(fd: BorrowedFd<'_>, line: &[u8]) -> bool {
    loop {
        match send(fd, line, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use rustix::net::RecvFlags;

    use super::*;

    /// A session process never waits for its log: with nobody reading,
    /// its lines are dropped and counted, and the count is told (a drop
    /// notice) once lines go through again.
    #[test]
    fn a_session_process_drops_rather_than_waits() {
        use std::io::Write;
        let (ours, theirs) = super::super::pair().unwrap();
        let writer = SessionWriter::new(theirs);
        let start = Instant::now();
        for n in 0..10_000 {
            let mut w = writer.make_writer();
            writeln!(w, "postern/pop3[1]: line {n}").unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let dropped = writer.dropped.load(Ordering::Relaxed);
        assert!(dropped > 0 && dropped < 10_000, "{dropped}");
        let mut buf = [0u8; 256];
        let mut read = 0;
        while rustix::net::recv(&ours, &mut buf, RecvFlags::DONTWAIT).is_ok() {
            read += 1;
        }
        assert_eq!(read + dropped, 10_000);
        let mut w = writer.make_writer();
        w.write_all(b"postern/pop3[1]: again\n").unwrap();
        drop(w);
        let n = rustix::net::recv(&ours, &mut buf, RecvFlags::empty())
            .unwrap()
            .0;
        assert_eq!(
            &buf[..n],
            format!("\0dropped {dropped}").as_bytes(),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        assert_eq!(super::super::notice(&buf[..n]), Some(dropped));
        let n = rustix::net::recv(&ours, &mut buf, RecvFlags::empty())
            .unwrap()
            .0;
        assert_eq!(&buf[..n], b"postern/pop3[1]: again\n");
    }
}
