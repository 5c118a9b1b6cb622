//! A login continued in another process: Dovecot's `pop3-login` checks
//! the password and hands the connection to a `pop3` process running as
//! the mailbox's owner. Here the session, once the password is right and
//! the mailbox belongs to another uid, asks its [`Handover`] (the server's
//! privilege separation) for a socket to such a process, then relays bytes
//! both ways until either side closes: TLS stays with this process, and
//! the process behind the socket runs the TRANSACTION state
//! ([`super::serve_handed`]), its first reply ending the login.
//!
//! The trait, the login and the relay are [`postern_tls::relay`]'s,
//! shared with IMAP; what is POP3's own is told here: the replies to a
//! process that could not start or died, and what a clean end looks like
//! (`clean_end`).

use postern_tls::relay::{End, hand_over};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Context;
use super::io::{Io, stopping};
use crate::codec::response;

pub use postern_tls::relay::{Handed, Handover};

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
    let mut stop = ctx.settings.stop.clone();
    let take = async { io.take_stream().await.ok() };
    let end = hand_over(handover, handed, take, stopping(&mut stop), clean_end).await;
    if let Some(warning) = end.warning() {
        tracing::warn!(target: "postern/pop3", "pop3({user}): {warning}");
    }
    match end {
        End::NotStarted(_) | End::Silent(_) => io.send(&response::err(UNAVAILABLE)),
        End::Died(_) => io.send(&response::err("[SYS/TEMP] Internal error occurred.")),
        End::Stopped => io.send(&response::err(super::SHUTTING_DOWN)),
        End::Clean | End::ClientGone => {}
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
    use std::time::Duration;

    use super::*;
    use crate::session::{Connection, serve_handed};

    async fn handed(maildir: &std::path::Path, input: &[u8]) -> String {
        // The Maildir comes with the session, not from the settings.
        let settings = crate::session::tests::settings(maildir, Duration::from_secs(5));
        let conn = Connection {
            peer: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:110".parse().unwrap(),
        };
        let maildir = maildir.to_owned();
        let go = |io| serve_handed(io, conn, settings, false, "alice".into(), maildir, "PLAIN");
        crate::session::tests::exchange(go, input).await
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
