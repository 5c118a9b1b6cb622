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
//! The trait, the login and the relay are [`postern_tls::relay`]'s,
//! shared with POP3; what is IMAP's own is told here: the replies to a
//! process that could not start or died, and what a clean end looks like
//! (`clean_end`).

use postern_tls::relay::{End, Protocol, hand_over};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::io::stopping;
use crate::codec::response::untagged;

pub use postern_tls::relay::{Handed, Handover};

/// Hands the logged-in session over and relays until it ends.
pub(crate) async fn run<S>(s: &mut Session<'_, S>, handed: Handed)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let settings = s.ctx.settings;
    let Some(handover) = settings.handover.clone() else {
        return;
    };
    let user = handed.user.clone();
    let tag = match &handed.protocol {
        Protocol::Imap { tag, .. } => tag.clone(),
        Protocol::Pop3 => String::new(),
    };
    let mut stop = settings.stop.clone();
    let io = &mut s.io;
    let take = async { io.take_stream().await.ok() };
    let end = hand_over(handover, handed, take, stopping(&mut stop), clean_end).await;
    if let Some(warning) = end.warning() {
        tracing::warn!(target: "postern/imap", "imap({user}): {warning}");
    }
    match end {
        End::NotStarted(_) => s.reply(&tag, "NO", UNAVAILABLE),
        End::Died(_) => s.io.send(&untagged("BYE Internal error occurred.")),
        End::Silent(_) => {
            s.reply(&tag, "NO", UNAVAILABLE);
            s.io.send(&untagged("BYE Internal error occurred."));
        }
        End::Stopped => s.io.send(&untagged("BYE Server shutting down.")),
        End::Clean | End::ClientGone => {}
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
    use super::*;
    use crate::session::{Connection, serve_handed};

    /// The session process's side: the login's tag completed with the
    /// capabilities of the authenticated state, then commands as usual.
    #[tokio::test]
    async fn a_handed_login_completes_its_tag() {
        let dir = tempfile::tempdir().unwrap();
        let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
        md.deliver(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        // The Maildir comes with the session, not from the settings.
        let settings = crate::session::tests::settings(dir.path());
        let conn = Connection {
            peer: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:143".parse().unwrap(),
        };
        let root = md.path().to_owned();
        let go = |io| {
            serve_handed(
                io,
                conn,
                settings,
                false,
                "alice".into(),
                root,
                "a1",
                "PLAIN",
            )
        };
        let input = b"a2 SELECT INBOX\r\na3 LOGOUT\r\n";
        let out = crate::session::tests::exchange(go, input).await;
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
