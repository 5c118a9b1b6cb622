//! A login continued in another process: Dovecot's `pop3-login` checks
//! the password and hands the connection to a `pop3` process running as
//! the mailbox's owner. Here the session, once the password is right and
//! the mailbox belongs to another uid, asks its [`Handover`] (the server's
//! privilege separation) for a socket to such a process, then relays bytes
//! both ways until either side closes: TLS stays with this process, and
//! the process behind the socket runs the TRANSACTION state
//! ([`super::serve_handed`]), its first reply ending the login.
//!
//! The relay itself is [`postern_tls::relay`], shared with IMAP; what a
//! clean end of a POP3 session looks like (`clean_end`) is told here.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::time::Duration;

use postern_tls::relay::{Ended, relay, start_child};
use tokio::io::{AsyncRead, AsyncWrite};

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
    let (child, pid) = match start_child(move || handover.start(&handed)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(target: "postern/pop3", "pop3({user}): cannot start the session process: {e}");
            io.send(&response::err(UNAVAILABLE));
            io.shutdown().await;
            return;
        }
    };
    tracing::debug!(target: "postern/pop3", "pop3({user}): session process {pid}");
    let mut stop = ctx.settings.stop.clone();
    let Ok((stream, leftover)) = io.take_stream().await else {
        return;
    };
    let timeout = ctx.settings.command_timeout;
    let ended = relay(stream, &leftover, child, timeout, stopping(&mut stop)).await;
    match ended {
        Ended::ClientGone => {}
        Ended::Closed(tail) => {
            if !clean_end(&tail) {
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

/// Whether `tail`, the end of what a session process said, is a session's
/// end: its last line `+OK Logging out.` (RFC 1939 §6, QUIT) or an `-ERR`
/// (a timeout, `[IN-USE]`) after which the process closes by design;
/// anything else means the process died.
fn clean_end(tail: &[u8]) -> bool {
    let last = tail.strip_suffix(b"\r\n").unwrap_or(tail);
    let last = last.rsplit(|b| *b == b'\n').next().unwrap_or(last);
    last.starts_with(b"+OK Logging out") || last.starts_with(b"-ERR")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

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

    /// The relay's own tests are with it, in `postern_tls::relay`.
    #[test]
    fn a_session_ends_cleanly_after_quit_or_an_error_only() {
        assert!(clean_end(b"+OK 1 20\r\n+OK Logging out.\r\n"));
        assert!(clean_end(b"-ERR [IN-USE] Mailbox is locked.\r\n"));
        assert!(clean_end(b"+OK\r\n-ERR Disconnected for inactivity.\r\n"));
        assert!(!clean_end(b"+OK Logging out.\r\n+OK 1 20\r\n"));
        assert!(!clean_end(b"+OK 1 20\r\n"));
        assert!(!clean_end(b"1 20\r\n.\r\n"));
        assert!(!clean_end(b""));
    }
}
