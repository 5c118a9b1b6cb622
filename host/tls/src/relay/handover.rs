//! The login handed over: the [`Handover`] trait the server implements,
//! the [`Handed`] login with its [`Protocol`]'s extras, and [`hand_over`],
//! which starts the login's process and relays ([`super::relay`]) until
//! the [`End`], told to the protocol for its last words and log line.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Ended, relay, start_child};

/// Starts session processes for logins whose mailbox another uid owns:
/// the server's privilege separation, hidden behind this trait so that
/// the protocol crates do not know it.
pub trait Handover: Send + Sync + std::fmt::Debug {
    /// Whether a login whose mail `owner` owns is handed over.
    fn wanted(&self, owner: Option<(u32, u32)>) -> bool;

    /// Starts the process for `login`; its socket and pid. Blocking.
    fn start(&self, login: &Handed) -> io::Result<(StdUnixStream, u32)>;
}

/// A login to continue elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    /// The canonical login name.
    pub user: String,
    /// The Maildir (IMAP: the INBOX, folders beside it).
    pub maildir: PathBuf,
    /// Its owner, whom the process runs as.
    pub owner: (u32, u32),
    /// The client's address.
    pub peer: SocketAddr,
    /// Ours.
    pub local: SocketAddr,
    /// Whether the client's connection is TLS.
    pub tls: bool,
    /// The login's mechanism, as logged.
    pub mechanism: String,
    /// The service's command timeout; also bounds the relay's waits.
    pub timeout: Duration,
    /// The service's longest command line.
    pub max_line: usize,
    /// The protocol, with what only it needs.
    pub protocol: Protocol,
}

/// The protocol of a handed login, and what only it carries over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// POP3: the process answers the login with `+OK` or `-ERR`.
    Pop3,
    /// IMAP: the process completes the login's command.
    Imap {
        /// The tag of the LOGIN or AUTHENTICATE to complete.
        tag: String,
        /// The service's largest literal (an APPEND).
        max_literal: usize,
    },
}

impl Protocol {
    /// `pop3` or `imap`, as the session process is told.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Pop3 => "pop3",
            Protocol::Imap { .. } => "imap",
        }
    }
}

/// How a handed login ended, for the protocol's last words to its client
/// (the process's own last words, when it had any, were relayed).
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The process could not be started: why.
    NotStarted(String),
    /// The process ended the session as a server does.
    Clean,
    /// The process (this pid) ended in the middle of the session.
    Died(u32),
    /// The process (this pid) ended without answering the login.
    Silent(u32),
    /// The server is stopping; the process has finished.
    Stopped,
    /// The client left, or stopped reading.
    ClientGone,
}

impl End {
    /// What the protocol logs as a warning for this end, after its own
    /// `protocol(user): ` prefix; `None` for an end that is no fault.
    pub fn warning(&self) -> Option<String> {
        match self {
            End::NotStarted(why) => Some(format!("cannot start the session process: {why}")),
            End::Died(pid) => Some(format!(
                "session process {pid} ended in the middle of the session"
            )),
            End::Silent(pid) => Some(format!("session process {pid} ended without answering")),
            End::Clean | End::Stopped | End::ClientGone => None,
        }
    }
}

/// Hands `handed` over: starts its process through `handover` (off the
/// runtime), then takes the client's stream and what it sent behind its
/// login (`take`: `None` if the stream failed while flushing) and relays
/// ([`relay`]) until the end, which `clean_end` tells from a death by the
/// tail of what the process said. `stop` completes when the server stops.
pub async fn hand_over<'a, S, T, F>(
    handover: Arc<dyn Handover>,
    handed: Handed,
    take: T,
    stop: F,
    clean_end: fn(&[u8]) -> bool,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
    T: Future<Output = Option<(&'a mut S, Vec<u8>)>>,
    F: Future<Output = ()>,
{
    let timeout = handed.timeout;
    let (child, pid) = match start_child(move || handover.start(&handed)).await {
        Ok(c) => c,
        Err(e) => return End::NotStarted(e.to_string()),
    };
    let Some((stream, leftover)) = take.await else {
        return End::ClientGone;
    };
    match relay(stream, &leftover, child, timeout, stop).await {
        Ended::Closed(tail) if clean_end(&tail) => End::Clean,
        Ended::Closed(_) => End::Died(pid),
        Ended::Silent => End::Silent(pid),
        Ended::Stopped => End::Stopped,
        Ended::ClientGone => End::ClientGone,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::future::pending;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const T: Duration = Duration::from_secs(5);

    /// A handover that starts a "process" on a thread: the other end of
    /// a socket pair, answering with `script` whatever it is sent.
    #[derive(Debug)]
    struct Scripted(&'static [u8]);

    impl Handover for Scripted {
        fn wanted(&self, owner: Option<(u32, u32)>) -> bool {
            owner.is_some()
        }

        fn start(&self, login: &Handed) -> io::Result<(StdUnixStream, u32)> {
            use std::io::{Read, Write};
            if login.user == "nobody" {
                return Err(io::Error::other("refused"));
            }
            let (ours, mut theirs) = StdUnixStream::pair()?;
            let script = self.0;
            std::thread::spawn(move || {
                let mut got = [0u8; 6];
                let _ = theirs.read_exact(&mut got);
                let _ = theirs.write_all(script);
            });
            Ok((ours, 9))
        }
    }

    fn handed(user: &str) -> Handed {
        Handed {
            user: user.into(),
            maildir: "/home/alice/Maildir".into(),
            owner: (1000, 1000),
            peer: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:110".parse().unwrap(),
            tls: false,
            mechanism: "PLAIN".into(),
            timeout: T,
            max_line: 1024,
            protocol: Protocol::Pop3,
        }
    }

    /// The end as the protocol's `clean_end` reads the tail, and a
    /// process that cannot start before the stream is taken.
    #[tokio::test]
    async fn a_handed_login_ends_as_its_process_ended() {
        let clean = |tail: &[u8]| tail.ends_with(b"bye\r\n");
        for (script, want) in [
            (&b"+OK\r\nbye\r\n"[..], End::Clean),
            (b"+OK\r\n", End::Died(9)),
            (b"", End::Silent(9)),
        ] {
            let (mut client, mut server) = tokio::io::duplex(1 << 16);
            let take = async { Some((&mut server, b"STAT\r\n".to_vec())) };
            client.write_all(b"QUIT\r\n").await.unwrap();
            let handover = Arc::new(Scripted(script));
            let end = hand_over(handover, handed("alice"), take, pending(), clean);
            assert_eq!(tokio::time::timeout(T, end).await.unwrap(), want);
            drop(server);
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.unwrap();
            assert_eq!(out, script);
        }
        let mut taken = false;
        let take = async {
            taken = true;
            None::<(&mut tokio::io::DuplexStream, Vec<u8>)>
        };
        let end = hand_over(
            Arc::new(Scripted(b"")),
            handed("nobody"),
            take,
            pending(),
            |_| true,
        );
        let end = end.await;
        assert_eq!(end, End::NotStarted("refused".into()));
        assert_eq!(
            end.warning().unwrap(),
            "cannot start the session process: refused"
        );
        assert!(!taken);
        assert_eq!(
            End::Died(9).warning().unwrap(),
            "session process 9 ended in the middle of the session"
        );
        assert_eq!(End::Clean.warning(), None);
        assert_eq!(
            Protocol::Imap {
                tag: "a1".into(),
                max_literal: 1
            }
            .name(),
            "imap"
        );
    }
}
