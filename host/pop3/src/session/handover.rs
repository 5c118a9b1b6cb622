//! A login continued in another process: Dovecot's `pop3-login` checks
//! the password and hands the connection to a `pop3` process running as
//! the mailbox's owner. Here the session, once the password is right and
//! the mailbox belongs to another uid, asks its [`Handover`] (the server's
//! privilege separation) for a socket to such a process, then relays bytes
//! both ways until either side closes: TLS stays with this process, and
//! the process behind the socket runs the TRANSACTION state
//! ([`super::serve_handed`]), its first reply ending the login.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::io::{Io, stopping};
use super::{Connection, Context};
use crate::codec::response;

/// Starts session processes for logins whose mailbox another uid owns.
pub trait Handover: Send + Sync + std::fmt::Debug {
    /// Whether a login whose mail `owner` owns is handed over.
    fn wanted(&self, owner: Option<(u32, u32)>) -> bool;

    /// Starts the process for `login`; its socket and pid. Blocking.
    fn start(&self, login: &Handed) -> io::Result<(StdUnixStream, u32)>;
}

/// A login to continue elsewhere.
#[derive(Debug, Clone)]
pub struct Handed {
    /// The canonical login name.
    pub user: String,
    /// The Maildir.
    pub maildir: PathBuf,
    /// Its owner, whom the process runs as.
    pub owner: (u32, u32),
    /// The client's connection.
    pub conn: Connection,
    /// Whether it is TLS.
    pub tls: bool,
    /// The login's mechanism, as logged.
    pub mechanism: String,
    /// The service's command timeout.
    pub timeout: Duration,
    /// The service's longest command line.
    pub max_line: usize,
}

/// Why the relay ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
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

/// Hands the logged-in session over and relays until it ends.
pub(crate) async fn run<S>(io: &mut Io<S>, ctx: Context<'_>, handed: Handed)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    const UNAVAILABLE: &str = "[SYS/TEMP] Couldn't open INBOX.";
    let Some(handover) = ctx.settings.handover.clone() else {
        return;
    };
    let user = handed.user.clone();
    let started = tokio::task::spawn_blocking(move || handover.start(&handed)).await;
    let child = match started {
        Ok(Ok((socket, pid))) => socket
            .set_nonblocking(true)
            .and_then(|()| UnixStream::from_std(socket))
            .map(|s| (s, pid)),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(io::Error::other(e)),
    };
    let (child, pid) = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(target: "postern/pop3", "pop3({user}): cannot start the session process: {e}");
            io.send(&response::err(UNAVAILABLE));
            io.shutdown().await;
            return;
        }
    };
    tracing::debug!(target: "postern/pop3", "pop3({user}): session process {pid}");
    let stop = ctx.settings.stop.clone();
    let Ok((stream, leftover)) = io.take_stream().await else {
        return;
    };
    let ended = relay(stream, &leftover, child, ctx.settings.command_timeout, stop).await;
    match ended {
        Ended::ClientGone => {}
        // A session ends after `+OK Logging out.` or an `-ERR` (a
        // timeout, IN-USE); anything else means the process died.
        Ended::Closed(tail) => {
            let last = tail.strip_suffix(b"\r\n").unwrap_or(&tail);
            let last = last.rsplit(|b| *b == b'\n').next().unwrap_or(last);
            if !(last.starts_with(b"+OK Logging out") || last.starts_with(b"-ERR")) {
                tracing::warn!(target: "postern/pop3", "pop3({user}): session process {pid} ended in the middle of the session");
                io.send(&response::err("[SYS/TEMP] Internal error occurred."));
            }
        }
        Ended::Silent => {
            tracing::warn!(target: "postern/pop3", "pop3({user}): session process {pid} ended without answering");
            io.send(&response::err(UNAVAILABLE));
        }
        Ended::Stopped => io.send(&response::err(super::SHUTTING_DOWN)),
    }
    io.shutdown().await;
}

/// How much of the end of a process's output is kept.
const TAIL: usize = 256;

/// Copies `client` to `child` (after `leftover`, what the client sent
/// behind its login) and back, until the child closes. A client that
/// leaves, or a server that stops, closes the child's input; the child
/// ends by itself then, and is waited for at most `timeout`.
pub(crate) async fn relay<S>(
    client: &mut S,
    leftover: &[u8],
    child: UnixStream,
    timeout: Duration,
    mut stop: Option<watch::Receiver<bool>>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut from_child, mut to_child) = child.into_split();
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let stopped = AtomicBool::new(false);
    let left = AtomicBool::new(false);
    let up = async {
        if to_child.write_all(leftover).await.is_ok() {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let read = tokio::select! {
                    biased;
                    r = from_client.read(&mut buf) => r,
                    () = stopping(&mut stop) => {
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
    use std::sync::Arc;

    use super::*;

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
        let ended = relay(&mut server, b"STAT\r\n", ours, Duration::from_secs(5), None);
        let ended = tokio::time::timeout(Duration::from_secs(5), ended)
            .await
            .unwrap();
        assert_eq!(ended, Ended::Closed(b"+OK done\r\n".to_vec()));
        assert_eq!(&child.await.unwrap(), b"STAT\r\nLIST");
        let mut out = vec![0u8; 10];
        client.read_exact(&mut out).await.unwrap();
        assert_eq!(out, b"+OK done\r\n");
    }

    #[derive(Debug)]
    struct NoMailboxes;

    impl crate::Mailboxes for NoMailboxes {
        fn maildir(&self, _login: &str) -> Option<PathBuf> {
            None
        }
    }

    async fn handed(maildir: &std::path::Path, input: &[u8]) -> String {
        use postern_auth::{Authenticator, FailurePolicy, UserDb};
        let auth = Arc::new(Authenticator::new(
            Arc::new(UserDb::new()),
            FailurePolicy {
                delay: Duration::from_millis(1),
                limit: 5,
            },
        ));
        let settings = Arc::new(crate::Settings::new(auth, Arc::new(NoMailboxes)));
        let conn = Connection {
            peer: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:110".parse().unwrap(),
        };
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let session = super::super::serve_handed(
            server,
            conn,
            settings,
            false,
            "alice".into(),
            maildir.to_owned(),
            "PLAIN",
        );
        let task = tokio::spawn(session);
        client.write_all(input).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        task.await.unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The session process's side: its first reply ends the login, and a
    /// lock another process holds (an flock on the Maildir's lock file)
    /// is `[IN-USE]`.
    #[tokio::test]
    async fn a_handed_login_answers_for_its_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
        md.deliver(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        let held = crate::session::lock::lock_file(md.path()).unwrap().unwrap();
        let out = handed(md.path(), b"STAT\r\n").await;
        assert_eq!(
            out,
            "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
        );
        drop(held);
        let out = handed(md.path(), b"STAT\r\nQUIT\r\n").await;
        assert_eq!(out, "+OK Logged in.\r\n+OK 1 20\r\n+OK Logging out.\r\n");
    }

    #[tokio::test]
    async fn a_silent_death_and_a_stop_are_told_apart() {
        let (_client, mut server) = tokio::io::duplex(1 << 16);
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let ended = relay(&mut server, b"", ours, Duration::from_secs(5), None).await;
        assert_eq!(ended, Ended::Silent);
        let (_client, mut server) = tokio::io::duplex(1 << 16);
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let (tx, rx) = watch::channel(false);
        let child = tokio::spawn(async move {
            theirs.write_all(b"+OK\r\n").await.unwrap();
            // The input closes at the stop; then the child leaves.
            let mut rest = Vec::new();
            theirs.read_to_end(&mut rest).await.unwrap();
        });
        let task = tokio::spawn(async move {
            relay(&mut server, b"", ours, Duration::from_secs(5), Some(rx)).await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(true).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert_eq!(ended.unwrap().unwrap(), Ended::Stopped);
        child.await.unwrap();
    }
}
