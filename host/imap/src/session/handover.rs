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
//! The relay itself is [`postern_tls::relay`], shared with POP3; what a
//! clean end of an IMAP session looks like (`clean_end`) is told here.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::time::Duration;

use postern_tls::relay::{Ended, relay, start_child};
use tokio::io::{AsyncRead, AsyncWrite};

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
    let (child, pid) = match start_child(move || handover.start(&handed)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(target: "postern/imap", "imap({user}): cannot start the session process: {e}");
            s.reply(&tag, "NO", UNAVAILABLE);
            s.io.shutdown().await;
            return;
        }
    };
    tracing::debug!(target: "postern/imap", "imap({user}): session process {pid}");
    let mut stop = settings.stop.clone();
    let Ok((stream, leftover)) = s.io.take_stream().await else {
        return;
    };
    let timeout = settings.command_timeout;
    let ended = relay(stream, &leftover, child, timeout, stopping(&mut stop)).await;
    match ended {
        Ended::ClientGone => {}
        Ended::Closed(tail) => {
            if !clean_end(&tail) {
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

/// Whether `tail`, the end of what a session process said, holds the
/// `* BYE` a server sends before it closes (RFC 3501 §3.4, §7.1.5: at
/// LOGOUT, an autologout, a shutdown); without one the process died.
fn clean_end(tail: &[u8]) -> bool {
    tail.windows(6).any(|w| w == b"* BYE ")
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

    /// The relay's own tests are with it, in `postern_tls::relay`.
    #[test]
    fn a_session_ends_cleanly_after_bye_only() {
        assert!(clean_end(
            b"* BYE Logging out\r\na3 OK Logout completed.\r\n"
        ));
        assert!(clean_end(b"* BYE Disconnected for inactivity.\r\n"));
        assert!(!clean_end(
            b"* 1 EXISTS\r\na2 OK [READ-WRITE] Select completed.\r\n"
        ));
        assert!(!clean_end(b"a1 NO BYE\r\n"));
        assert!(!clean_end(b""));
    }
}
