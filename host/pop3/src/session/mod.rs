//! A POP3 session over a socket (RFC 1939 §3): the AUTHORIZATION state
//! ([`authorization`]), then TRANSACTION and UPDATE ([`transaction`]).
//!
//! STLS (RFC 2595 §4) is taken only in AUTHORIZATION; the TLS session then
//! starts over in AUTHORIZATION with nothing kept from before (the `USER`
//! given, say). pop3s starts with the handshake (RFC 8314).
//!
//! When the server stops ([`Settings::stop`]), a session waiting for a
//! command is told `-ERR [SYS/TEMP] Server shutting down.` and closed, as
//! Dovecot does: without QUIT there is no UPDATE state, so messages marked
//! with DELE stay (RFC 1939 §6). A command in progress is answered first.

mod authorization;
pub mod handover;
pub(crate) mod io;
pub mod lock;
mod transaction;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_auth::Authenticator;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::TlsConfig;
use crate::codec::response;
use io::{Io, Stop};
use lock::Locks;

/// Where a user's mail is: the server maps a login name (as the users
/// file writes it, `alice@example.org`) to its Maildir the way local
/// delivery does, so POP3 reads where SMTP delivered.
pub trait Mailboxes: Send + Sync + fmt::Debug {
    /// The Maildir directory of `login`, if the user has one here.
    fn maildir(&self, login: &str) -> Option<PathBuf>;

    /// The uid and gid that own `login`'s mail (a system account, a
    /// users-file entry with a uid): a root server opens, scans and
    /// updates the Maildir as them (`postern_auth::owner`), as Dovecot's
    /// pop3 runs as its user. `None`: as the server.
    fn owner(&self, _login: &str) -> Option<(u32, u32)> {
        None
    }
}

/// What every session of one POP3 service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The greeting text after `+OK` (Dovecot: `Dovecot ready.`).
    pub greeting: String,
    /// How long a read or a write may wait. RFC 1939 §3: an autologout
    /// timer of at least 10 minutes.
    pub command_timeout: Duration,
    /// The longest command line accepted. RFC 2449 §4 caps commands at
    /// 255 octets; AUTH responses (base64 of a long password) need more.
    pub max_line: usize,
    /// Unknown or malformed commands after which the client is dropped
    /// (Dovecot's 20, a scanner's limit).
    pub max_bad_commands: u32,
    /// The certificate for STLS and pop3s; `None` offers no STLS.
    pub tls: Option<Arc<TlsConfig>>,
    /// pop3s: the session starts with the TLS handshake.
    pub implicit_tls: bool,
    /// The password database with its failure delays.
    pub auth: Arc<Authenticator>,
    /// Login name to Maildir.
    pub mailboxes: Arc<dyn Mailboxes>,
    /// The mailboxes that have a session; shared by pop3 and pop3s.
    pub locks: Arc<Locks>,
    /// The server's stop signal: `true` ends every session between
    /// commands. `None`: sessions end only by themselves.
    pub stop: Option<watch::Receiver<bool>>,
    /// Where logins of mailboxes that other uids own go on (a process of
    /// the owner's); `None`: here.
    pub handover: Option<Arc<dyn handover::Handover>>,
}

impl Settings {
    /// Settings with Dovecot's defaults for everything but the parts only
    /// the server knows.
    pub fn new(auth: Arc<Authenticator>, mailboxes: Arc<dyn Mailboxes>) -> Settings {
        Settings {
            greeting: "Postern ready.".to_owned(),
            command_timeout: Duration::from_secs(600),
            max_line: 4096,
            max_bad_commands: 20,
            tls: None,
            implicit_tls: false,
            auth,
            mailboxes,
            locks: Arc::new(Locks::new()),
            stop: None,
            handover: None,
        }
    }
}

/// The connection a session serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The client's address.
    pub peer: SocketAddr,
    /// Ours.
    pub local: SocketAddr,
}

impl Connection {
    /// Dovecot's `disable_plaintext_auth`: a password may travel in the
    /// clear only over loopback.
    fn loopback(&self) -> bool {
        match self.peer.ip() {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

/// What a session knows about its own security.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) conn: Connection,
    /// TLS is active.
    pub(crate) tls: bool,
}

impl Context<'_> {
    /// Passwords may be sent: over TLS, or on loopback.
    pub(crate) fn secured(&self) -> bool {
        self.tls || self.conn.loopback()
    }

    /// STLS can be offered: a certificate, and no TLS yet.
    pub(crate) fn can_stls(&self) -> bool {
        !self.tls && self.settings.tls.is_some()
    }

    /// `, TLS` or `, secured` (loopback), as Dovecot ends its log lines.
    pub(crate) fn security(&self) -> &'static str {
        if self.tls {
            ", TLS"
        } else if self.secured() {
            ", secured"
        } else {
            ""
        }
    }

    /// `rip=.., lip=..` and the security word, as Dovecot logs them.
    pub(crate) fn log_fields(&self) -> String {
        format!(
            "rip={}, lip={}{}",
            self.conn.peer.ip(),
            self.conn.local.ip(),
            self.security()
        )
    }
}

/// Serves one connection until QUIT, the client leaves, a timeout, or an
/// error. Never panics on anything the client sends.
pub async fn serve<S>(stream: S, conn: Connection, settings: Arc<Settings>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let tls = settings.tls.as_ref().filter(|_| settings.implicit_tls);
    match tls {
        Some(tls) => match tls.acceptor().accept(stream).await {
            Ok(stream) => run(stream, conn, &settings, true).await,
            Err(e) => {
                tracing::info!(target: "postern/pop3", "Disconnected (TLS handshaking: {e}): rip={}, lip={}", conn.peer.ip(), conn.local.ip());
            }
        },
        None => run(stream, conn, &settings, false).await,
    }
}

/// One session on `stream`, which is TLS already when `tls`.
async fn run<S>(stream: S, conn: Connection, settings: &Settings, tls: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut io = Io::new(stream, settings.max_line, settings.command_timeout)
        .with_stop(settings.stop.clone());
    let ctx = Context {
        settings,
        conn,
        tls,
    };
    io.send(&response::ok(&settings.greeting));
    match authorization::run(&mut io, ctx).await {
        Ok(authorization::Outcome::StartTls) => {
            let Some(config) = settings.tls.as_ref() else {
                return;
            };
            let Ok(plain) = io.into_stream().await else {
                return;
            };
            match config.acceptor().accept(plain).await {
                Ok(stream) => {
                    let mut io = Io::new(stream, settings.max_line, settings.command_timeout)
                        .with_stop(settings.stop.clone());
                    let ctx = Context { tls: true, ..ctx };
                    // No greeting after STLS (RFC 2595 §4).
                    after_tls(&mut io, ctx).await;
                }
                Err(e) => {
                    tracing::info!(target: "postern/pop3", "Disconnected (TLS handshaking: {e}): {}", ctx.log_fields());
                }
            }
        }
        Ok(authorization::Outcome::Login(login)) => {
            transaction::run(&mut io, ctx, login).await;
        }
        Ok(authorization::Outcome::Handover(handed)) => {
            handover::run(&mut io, ctx, handed).await;
        }
        Ok(authorization::Outcome::Quit) => io.shutdown().await,
        Err(stop) => end_before_login(&mut io, ctx, stop).await,
    }
}

/// Serves a login that another process checked (the server's session
/// process of a mailbox's owner, `postern mail-session`): the TRANSACTION
/// state of `user` on `maildir`, whose first reply ends the login: `+OK
/// Logged in.` once the maildrop is locked and scanned, or `-ERR
/// [IN-USE]` and the end of the session.
pub async fn serve_handed<S>(
    stream: S,
    conn: Connection,
    settings: Arc<Settings>,
    tls: bool,
    user: String,
    maildir: PathBuf,
    mechanism: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut io = Io::new(stream, settings.max_line, settings.command_timeout)
        .with_stop(settings.stop.clone());
    let ctx = Context {
        settings: &settings,
        conn,
        tls,
    };
    match authorization::open(&mut io, ctx, user, maildir, None, mechanism).await {
        Some(login) => transaction::run(&mut io, ctx, login).await,
        None => io.shutdown().await,
    }
}

/// The AUTHORIZATION state again, over TLS.
async fn after_tls<S>(io: &mut Io<S>, ctx: Context<'_>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match authorization::run(io, ctx).await {
        Ok(authorization::Outcome::Login(login)) => transaction::run(io, ctx, login).await,
        Ok(authorization::Outcome::Handover(handed)) => handover::run(io, ctx, handed).await,
        // STLS is refused once TLS is active, so a second upgrade
        // cannot be asked for.
        Ok(authorization::Outcome::StartTls | authorization::Outcome::Quit) => io.shutdown().await,
        Err(stop) => end_before_login(io, ctx, stop).await,
    }
}

/// What a session waiting for a command is told when the server stops
/// (Dovecot's words).
pub(crate) const SHUTTING_DOWN: &str = "[SYS/TEMP] Server shutting down.";

async fn end_before_login<S>(io: &mut Io<S>, ctx: Context<'_>, stop: Stop)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let why = match stop {
        Stop::Timeout => {
            io.send(&response::err("Disconnected for inactivity."));
            io.shutdown().await;
            "Inactivity".to_owned()
        }
        Stop::Kicked => {
            io.shutdown().await;
            "Too many invalid commands or failed logins".to_owned()
        }
        Stop::Shutdown => {
            io.send(&response::err(SHUTTING_DOWN));
            io.shutdown().await;
            "Server shutting down".to_owned()
        }
        Stop::Eof => "Connection closed".to_owned(),
        Stop::Io(e) => format!("Connection closed: {e}"),
    };
    tracing::info!(target: "postern/pop3", "Disconnected ({why}): {}", ctx.log_fields());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_auth::{FailurePolicy, UserDb};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::watch;

    #[derive(Debug)]
    struct Fixed(PathBuf);

    impl Mailboxes for Fixed {
        fn maildir(&self, _login: &str) -> Option<PathBuf> {
            Some(self.0.clone())
        }
    }

    /// Also the settings of the handed-over session's tests (handover.rs).
    pub(super) fn settings(dir: &std::path::Path, timeout: Duration) -> Arc<Settings> {
        let users = UserDb::parse("alice@example.org:{PLAIN}secret::::\n", "users").unwrap();
        let auth = Arc::new(Authenticator::new(
            Arc::new(users),
            FailurePolicy {
                delay: Duration::from_millis(1),
                limit: 5,
            },
        ));
        let mut s = Settings::new(auth, Arc::new(Fixed(dir.join("Maildir"))));
        s.max_line = 64;
        s.command_timeout = timeout;
        Arc::new(s)
    }

    /// Runs a session from `peer`, sends `input`, returns all it answered.
    async fn talk(peer: &str, dir: &std::path::Path, input: &[u8]) -> String {
        talk_with(peer, dir, input, Duration::from_secs(5)).await
    }

    async fn talk_with(
        peer: &str,
        dir: &std::path::Path,
        input: &[u8],
        timeout: Duration,
    ) -> String {
        let conn = Connection {
            peer: peer.parse().unwrap(),
            local: "192.0.2.1:110".parse().unwrap(),
        };
        let settings = settings(dir, timeout);
        exchange(|server| serve(server, conn, settings), input).await
    }

    /// Runs the session `start` makes of one end of a pipe, sends `input`
    /// to it, returns all it answered; also for the handed-over session
    /// (handover.rs).
    pub(super) async fn exchange<F>(start: impl FnOnce(DuplexStream) -> F, input: &[u8]) -> String
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(start(server));
        client.write_all(input).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        task.await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn plaintext_refused_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let out = talk(
            "198.51.100.7:40000",
            dir.path(),
            b"CAPA\r\nUSER alice@example.org\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\nQUIT\r\n",
        )
        .await;
        assert_eq!(
            out,
            "+OK Postern ready.\r\n\
             +OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n.\r\n\
             -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n\
             -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n\
             +OK Logging out\r\n"
        );
    }

    #[tokio::test]
    async fn auth_plain_and_malformed_commands_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("NOOP {}\r\n", "x".repeat(100));
        let input = format!(
            "STAT\r\nPASS secret\r\nAUTH CRAM-MD5\r\nAUTH PLAIN\r\n*\r\n\
             AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n\r\n\
             AUTH PLAIN\r\nAGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n\
             STAT\r\nRETR 1\r\nLIST 0\r\nDELE x\r\nTOP 1\r\nBOGUS\r\n{long}STLS\r\nQUIT\r\n"
        );
        let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(
            lines,
            [
                "+OK Postern ready.",
                "-ERR Unknown command.",
                "-ERR No username given.",
                "-ERR Unsupported authentication mechanism.",
                "+ ",
                "-ERR Authentication aborted by client.",
                "-ERR [AUTH] Authentication failed.",
                "+ ",
                "+OK Logged in.",
                "+OK 0 0",
                "-ERR There's no message 1.",
                "-ERR Invalid message number: 0",
                "-ERR Invalid message number: x",
                "-ERR TOP: Missing line count.",
                "-ERR Unknown command: BOGUS",
                "-ERR Input line too long.",
                "-ERR Unknown command.",
                "+OK Logging out.",
                "",
            ]
        );
    }

    /// RETR sets \Seen at QUIT, as Dovecot does; TOP does not, nor does
    /// a RETR in a session that ends without QUIT.
    #[tokio::test]
    async fn retr_sets_seen_at_quit() {
        let dir = tempfile::tempdir().unwrap();
        let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
        for body in ["one", "two", "three"] {
            md.deliver(format!("Subject: {body}\r\n\r\n{body}\r\n").as_bytes())
                .unwrap();
        }
        let login = "USER alice@example.org\r\nPASS secret\r\n";
        let out = talk_with(
            "127.0.0.1:40000",
            dir.path(),
            format!("{login}RETR 1\r\n").as_bytes(),
            Duration::from_millis(100),
        )
        .await;
        assert!(out.contains("one\r\n.\r\n"), "{out}");
        let seen = |md: &postern_mailbox::Maildir| -> Vec<bool> {
            md.scan()
                .unwrap()
                .iter()
                .map(|e| e.path.to_str().unwrap().ends_with(":2,S"))
                .collect()
        };
        assert_eq!(seen(&md), [false, false, false], "no QUIT, no UPDATE");
        let input = format!("{login}RETR 1\r\nTOP 2 0\r\nRETR 3\r\nDELE 3\r\nQUIT\r\n");
        let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
        assert!(out.ends_with("+OK Logging out.\r\n"), "{out}");
        assert_eq!(seen(&md), [true, false]);
    }

    #[tokio::test]
    async fn idle_client_is_logged_out_and_marks_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
        md.deliver(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        let out = talk_with(
            "127.0.0.1:40000",
            dir.path(),
            b"USER alice@example.org\r\nPASS secret\r\nDELE 1\r\n",
            Duration::from_millis(100),
        )
        .await;
        assert!(
            out.ends_with("+OK Marked to be deleted.\r\n-ERR Disconnected for inactivity.\r\n"),
            "{out}"
        );
        // No QUIT, no UPDATE state: the message stays.
        assert_eq!(md.scan().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn stop_closes_the_session_and_keeps_marked_messages() {
        let dir = tempfile::tempdir().unwrap();
        let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
        md.deliver(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        let (tx, rx) = watch::channel(false);
        let mut s = (*settings(dir.path(), Duration::from_secs(5))).clone();
        s.stop = Some(rx);
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let conn = Connection {
            peer: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:110".parse().unwrap(),
        };
        let task = tokio::spawn(serve(server, conn, Arc::new(s)));
        client
            .write_all(b"USER alice@example.org\r\nPASS secret\r\nDELE 1\r\n")
            .await
            .unwrap();
        let want = "+OK Marked to be deleted.\r\n";
        let mut out = Vec::new();
        while !String::from_utf8_lossy(&out).ends_with(want) {
            let mut chunk = [0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&chunk[..n]);
        }
        tx.send(true).unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rest, b"-ERR [SYS/TEMP] Server shutting down.\r\n");
        task.await.unwrap();
        assert_eq!(md.scan().unwrap().len(), 1);
    }
}
