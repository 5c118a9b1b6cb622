//! The daemon's half of a POP3 or IMAP login continued in another
//! process: after the password, a session whose mailbox another uid owns
//! is served by a `postern mail-session` process running as that uid, and
//! the daemon copies the client's bytes to it and back. The TLS of the
//! client's connection stays here, so the process behind the socket never
//! holds the server's key: Dovecot's `login-common`, shared by
//! `imap-login` and `pop3-login`, which likewise keeps the TLS and proxies
//! the plaintext to the post-login process.
//!
//! Why in this crate: it is the TLS termination both protocol crates
//! already share, and already brings tokio (through tokio-rustls). The
//! privsep crate, where the session request lives, is synchronous and
//! shared with the root helper, which should not grow a runtime; and the
//! protocol crates do not know privsep at all (their `Handover` trait
//! hides it).
//!
//! What both protocols share lives here: the [`Handover`] trait the server
//! implements, the [`Handed`] login (with the [`Protocol`]'s own extras),
//! and [`hand_over`], which starts the process and relays until the end.
//! Each protocol keeps what is its own: its last words to the client for
//! each [`End`], its log lines, and how a clean end reads in the tail of
//! what the process said (POP3's `+OK Logging out.`, IMAP's `* BYE`).

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

mod handover;

pub use handover::{End, Handed, Handover, Protocol, hand_over};

/// How much of the end of a process's output is kept: enough for its
/// last reply line.
pub const TAIL: usize = 256;

/// Why the relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The process closed its side after it had spoken: the end of what
    /// it said (at most [`TAIL`] bytes), to tell a clean end from a death.
    Closed(Vec<u8>),
    /// The process closed (or died) without a byte: it never answered
    /// the login.
    Silent,
    /// The server is stopping: the process was told the client left and
    /// has finished.
    Stopped,
    /// The client left, or stopped reading.
    ClientGone,
}

/// Runs `start` (a blocking request to the privilege separation, which
/// answers with the process's socket and pid) off the runtime, and makes
/// the socket one the runtime can poll.
pub async fn start_child<F>(start: F) -> io::Result<(UnixStream, u32)>
where
    F: FnOnce() -> io::Result<(StdUnixStream, u32)> + Send + 'static,
{
    let (socket, pid) = tokio::task::spawn_blocking(start)
        .await
        .map_err(io::Error::other)??;
    socket.set_nonblocking(true)?;
    Ok((UnixStream::from_std(socket)?, pid))
}

/// Copies `client` to `child` (after `leftover`, what the client sent
/// behind its login) and back, until the child closes. A client that
/// leaves, or `stop` completing (the server stops), closes the child's
/// input; the child ends by itself then, and is waited for at most
/// `timeout`, which also bounds each write to a client that stops reading.
pub async fn relay<S, F>(
    client: &mut S,
    leftover: &[u8],
    child: UnixStream,
    timeout: Duration,
    stop: F,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = ()>,
{
    let (mut from_child, mut to_child) = child.into_split();
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let mut stop = pin!(stop);
    let stopped = AtomicBool::new(false);
    let left = AtomicBool::new(false);
    let up = async {
        if to_child.write_all(leftover).await.is_ok() {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let read = tokio::select! {
                    biased;
                    r = from_client.read(&mut buf) => r,
                    () = stop.as_mut() => {
                        stopped.store(true, Ordering::Relaxed);
                        break;
                    }
                };
                match read {
                    Ok(0) | Err(_) => {
                        left.store(true, Ordering::Relaxed);
                        break;
                    }
                    Ok(n) => {
                        if to_child.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        let _ = to_child.shutdown().await;
        tokio::time::sleep(timeout).await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut tail = Vec::new();
        loop {
            match from_child.read(&mut buf).await {
                Ok(0) | Err(_) if tail.is_empty() => return Ended::Silent,
                Ok(0) | Err(_) => return Ended::Closed(tail),
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    tail.drain(..tail.len().saturating_sub(TAIL));
                    // Flushed at once: a TLS stream may hold what it got.
                    let write = async {
                        to_client.write_all(&buf[..n]).await?;
                        to_client.flush().await
                    };
                    if !matches!(tokio::time::timeout(timeout, write).await, Ok(Ok(()))) {
                        return Ended::ClientGone;
                    }
                }
            }
        }
    };
    let ended = tokio::select! {
        ended = down => ended,
        // The child did not end within the timeout after its input
        // closed: give up on it (its socket closes with this).
        () = up => Ended::Closed(Vec::new()),
    };
    match ended {
        Ended::ClientGone => Ended::ClientGone,
        _ if left.load(Ordering::Relaxed) => Ended::ClientGone,
        _ if stopped.load(Ordering::Relaxed) => Ended::Stopped,
        ended => ended,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::future::pending;

    use tokio::sync::oneshot;

    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn bytes_go_both_ways_and_the_childs_end_ends_it() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let child = tokio::spawn(async move {
            let mut got = [0u8; 10];
            theirs.read_exact(&mut got).await.unwrap();
            theirs.write_all(b"+OK done\r\n").await.unwrap();
            got
        });
        client.write_all(b"LIST\r\n").await.unwrap();
        let ended = relay(&mut server, b"STAT\r\n", ours, T, pending());
        let ended = tokio::time::timeout(T, ended).await.unwrap();
        assert_eq!(ended, Ended::Closed(b"+OK done\r\n".to_vec()));
        assert_eq!(&child.await.unwrap(), b"STAT\r\nLIST");
        let mut out = vec![0u8; 10];
        client.read_exact(&mut out).await.unwrap();
        assert_eq!(out, b"+OK done\r\n");
    }

    #[tokio::test]
    async fn a_silent_death_is_told() {
        let (_client, mut server) = tokio::io::duplex(1 << 16);
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let ended = relay(&mut server, b"", ours, T, pending()).await;
        assert_eq!(ended, Ended::Silent);
    }

    /// A stop is told apart from a silent death: the child spoke, then
    /// left when its input closed at the stop.
    #[tokio::test]
    async fn a_stop_is_told_apart_from_a_death() {
        let (_client, mut server) = tokio::io::duplex(1 << 16);
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let child = tokio::spawn(async move {
            theirs.write_all(b"+OK\r\n").await.unwrap();
            // The input closes at the stop; then the child leaves.
            let mut rest = Vec::new();
            theirs.read_to_end(&mut rest).await.unwrap();
        });
        let stop = async move {
            let _ = rx.await;
        };
        let task = tokio::spawn(async move { relay(&mut server, b"", ours, T, stop).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(()).unwrap();
        let ended = tokio::time::timeout(T, task).await;
        assert_eq!(ended.unwrap().unwrap(), Ended::Stopped);
        child.await.unwrap();
    }

    /// A client that never reads cannot hold the relay past the timeout.
    #[tokio::test]
    async fn a_client_that_stops_reading_is_gone() {
        let (_client, mut server) = tokio::io::duplex(64);
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let child = tokio::spawn(async move {
            let _ = theirs.write_all(&[b'x'; 4096]).await;
            theirs
        });
        let short = Duration::from_millis(200);
        let ended = relay(&mut server, b"", ours, short, pending());
        let ended = tokio::time::timeout(T, ended).await.unwrap();
        assert_eq!(ended, Ended::ClientGone);
        drop(child.await.unwrap());
    }

    #[tokio::test]
    async fn a_child_that_cannot_start_is_an_error() {
        let started = start_child(|| Err(io::Error::other("no helper"))).await;
        assert_eq!(started.unwrap_err().to_string(), "no helper");
        let (ours, _theirs) = StdUnixStream::pair().unwrap();
        let (_socket, pid) = start_child(move || Ok((ours, 7))).await.unwrap();
        assert_eq!(pid, 7);
    }
}
