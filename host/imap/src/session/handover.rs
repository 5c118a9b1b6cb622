//! A login continued in another process: Dovecot's `imap-login` checks
//! the password and hands the connection to an `imap` process running as
//! the mailbox's owner. Here the session, once the password is right and
//! the mailbox belongs to another uid, asks its [`Handover`] (the server's
//! privilege separation) for a socket to such a process, then relays bytes
//! both ways until either side closes: TLS stays with this process, and
//! the process behind the socket runs the authenticated state
//! ([`super::serve_handed`]), its tagged OK (with the CAPABILITY code) or
//! NO ending the LOGIN or AUTHENTICATE.
//!
//! The relay is the POP3 crate's; a crate of its own for forty lines
//! would cost more than the copy.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::io::stopping;
use super::{Connection, Session};
use crate::codec::response::untagged;

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
    /// The service's largest literal.
    pub max_literal: usize,
    /// The tag of the LOGIN or AUTHENTICATE the process completes.
    pub tag: String,
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
pub(crate) async fn run<S>(s: &mut Session<'_, S>, handed: Handed)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let settings = s.ctx.settings;
    let Some(handover) = settings.handover.clone() else {
        return;
    };
    let (user, tag) = (handed.user.clone(), handed.tag.clone());
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
            tracing::warn!(target: "postern/imap", "imap({user}): cannot start the session process: {e}");
            s.reply(&tag, "NO", UNAVAILABLE);
            s.io.shutdown().await;
            return;
        }
    };
    tracing::debug!(target: "postern/imap", "imap({user}): session process {pid}");
    let stop = settings.stop.clone();
    let Ok((stream, leftover)) = s.io.take_stream().await else {
        return;
    };
    let ended = relay(stream, &leftover, child, settings.command_timeout, stop).await;
    match ended {
        Ended::ClientGone => {}
        // RFC 3501 §3.4: the server says BYE before it closes; without
        // one the process died.
        Ended::Closed(tail) => {
            if !tail.windows(6).any(|w| w == b"* BYE ") {
                tracing::warn!(target: "postern/imap", "imap({user}): session process {pid} ended in the middle of the session");
                s.io.send(&untagged("BYE Internal error occurred."));
            }
        }
        Ended::Silent => {
            tracing::warn!(target: "postern/imap", "imap({user}): session process {pid} ended without answering");
            s.reply(&tag, "NO", UNAVAILABLE);
            s.io.send(&untagged("BYE Internal error occurred."));
        }
        Ended::Stopped => s.io.send(&untagged("BYE Server shutting down.")),
    }
    s.io.shutdown().await;
}

/// The NO of a login whose session process could not start or died
/// before it answered.
const UNAVAILABLE: &str = "[UNAVAILABLE] Couldn't open the mailbox.";

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

    #[derive(Debug)]
    struct NoMailboxes;

    impl crate::Mailboxes for NoMailboxes {
        fn maildir(&self, _login: &str) -> Option<PathBuf> {
            None
        }
    }

    /// The session process's side: the login's tag completed with the
    /// capabilities of the authenticated state, then commands as usual.
    #[tokio::test]
    async fn a_handed_login_completes_its_tag() {
        use postern_auth::{Authenticator, FailurePolicy, UserDb};
        let dir = tempfile::tempdir().unwrap();
        let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
        md.deliver(b"Subject: x\r\n\r\nbody\r\n").unwrap();
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
            local: "127.0.0.1:143".parse().unwrap(),
        };
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let session = super::super::serve_handed(
            server,
            conn,
            settings,
            false,
            "alice".into(),
            md.path().to_owned(),
            "a1",
            "PLAIN",
        );
        let task = tokio::spawn(session);
        client
            .write_all(b"a2 SELECT INBOX\r\na3 LOGOUT\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        task.await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("a1 OK [CAPABILITY IMAP4rev1 "), "{out}");
        assert!(out.contains("* 1 EXISTS\r\n"), "{out}");
        assert!(out.contains("a2 OK [READ-WRITE]"), "{out}");
        assert!(out.ends_with("a3 OK Logout completed.\r\n"), "{out}");
    }

    #[tokio::test]
    async fn a_silent_death_is_told() {
        let (_client, mut server) = tokio::io::duplex(1 << 16);
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let ended = relay(&mut server, b"", ours, Duration::from_secs(5), None).await;
        assert_eq!(ended, Ended::Silent);
    }
}
