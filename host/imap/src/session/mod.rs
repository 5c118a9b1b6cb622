//! An IMAP session over a socket (RFC 3501 §3): not authenticated, then
//! authenticated, then (with a mailbox selected) selected, until LOGOUT.
//!
//! STARTTLS (RFC 3501 §6.2.1) is taken only before login; the TLS session
//! then starts over with nothing kept from before. imaps starts with the
//! handshake (RFC 8314).
//!
//! When the server stops ([`Settings::stop`]), a session waiting for
//! input (a command, IDLE's DONE, the rest of a literal) is told
//! `* BYE Server shutting down.` (RFC 3501 §7.1.5) and closed, as Dovecot
//! does; a command already read is carried out and answered first.

pub mod handover;
pub(crate) mod io;
pub mod limits;
pub(crate) mod view;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_auth::Authenticator;
use postern_mailbox::Store;
use postern_tls::TlsConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::codec::response::{tagged, untagged};
use crate::codec::{Frame, Framer, Request};
use io::{Io, Stop};
use view::Selected;

/// Where a user's mail is: the server maps a login name to its Maildir
/// the way local delivery does, so IMAP reads where SMTP delivered.
pub trait Mailboxes: Send + Sync + fmt::Debug {
    /// The root Maildir (the INBOX) of `login`, if the user has one here.
    fn maildir(&self, login: &str) -> Option<PathBuf>;

    /// The uid and gid that own `login`'s mail (a system account, a
    /// users-file entry with a uid): a root server touches the store as
    /// them from the login on (`postern_auth::owner`), as Dovecot's imap
    /// runs as its user. `None`: as the server.
    fn owner(&self, _login: &str) -> Option<(u32, u32)> {
        None
    }
}

/// What every session of one IMAP service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The greeting text after `* OK`.
    pub greeting: String,
    /// How long a client may stay silent. RFC 3501 §5.4: the autologout
    /// timer is at least 30 minutes once logged in.
    pub command_timeout: Duration,
    /// Before login a silent client is dropped sooner (Dovecot's
    /// imap-login gives up on an idle client after minutes, not half an hour).
    pub login_timeout: Duration,
    /// Sessions of one user from one address (Dovecot's
    /// `mail_max_userip_connections`, 10).
    pub max_userip_connections: usize,
    /// The sessions per user and address, shared by imap and imaps.
    pub userip: Arc<limits::UserIp>,
    /// How often an IDLE session looks at its mailbox for changes.
    pub idle_poll: Duration,
    /// The longest command text, literals excluded (Dovecot's
    /// `imap_max_line_length`, 64 KiB).
    pub max_line: usize,
    /// The largest literal, and so the largest APPEND.
    pub max_literal: usize,
    /// Bad commands after which the client is dropped (Dovecot's 20).
    pub max_bad_commands: u32,
    /// The certificate for STARTTLS and imaps; `None` offers no STARTTLS.
    pub tls: Option<Arc<TlsConfig>>,
    /// imaps: the session starts with the TLS handshake.
    pub implicit_tls: bool,
    /// The password database with its failure delays.
    pub auth: Arc<Authenticator>,
    /// Login name to Maildir.
    pub mailboxes: Arc<dyn Mailboxes>,
    /// The server's stop signal: `true` ends every session at its next
    /// wait for input. `None`: sessions end only by themselves.
    pub stop: Option<watch::Receiver<bool>>,
    /// Where logins of mailboxes that other uids own go on (a process of
    /// the owner's); `None`: here.
    pub handover: Option<Arc<dyn handover::Handover>>,
}

impl Settings {
    /// Settings with Dovecot's defaults for all but what only the server
    /// knows.
    pub fn new(auth: Arc<Authenticator>, mailboxes: Arc<dyn Mailboxes>) -> Settings {
        Settings {
            greeting: "Postern ready.".to_owned(),
            command_timeout: Duration::from_secs(30 * 60),
            login_timeout: Duration::from_secs(3 * 60),
            max_userip_connections: 10,
            userip: Arc::new(limits::UserIp::new()),
            idle_poll: Duration::from_secs(1),
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_bad_commands: 20,
            tls: None,
            implicit_tls: false,
            auth,
            mailboxes,
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

/// What a session knows about its own security.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) conn: Connection,
    pub(crate) tls: bool,
}

impl Context<'_> {
    /// Passwords may be sent: over TLS, or on loopback (Dovecot's
    /// `disable_plaintext_auth`).
    pub(crate) fn secured(&self) -> bool {
        let loopback = match self.conn.peer.ip() {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        self.tls || loopback
    }

    /// `rip=.., lip=..` and the security word, as Dovecot logs them.
    pub(crate) fn log_fields(&self) -> String {
        let security = if self.tls {
            ", TLS"
        } else if self.secured() {
            ", secured"
        } else {
            ""
        };
        format!(
            "rip={}, lip={}{security}",
            self.conn.peer.ip(),
            self.conn.local.ip()
        )
    }
}

/// What a command leaves the session to do.
#[derive(Debug)]
pub(crate) enum Flow {
    /// Read the next command.
    Continue,
    /// LOGOUT was answered: close.
    Logout,
    /// `OK Begin TLS negotiation now.` was queued: hand the socket over.
    StartTls,
    /// A login to go on in another process ([`Session::handover`]): no
    /// reply here, the process gives it.
    Handover,
}

/// One session's state.
#[derive(Debug)]
pub(crate) struct Session<'a, S> {
    pub(crate) io: Io<S>,
    pub(crate) ctx: Context<'a>,
    /// The logged-in user and their mailboxes.
    pub(crate) user: Option<(String, Store)>,
    /// The selected mailbox.
    pub(crate) selected: Option<Selected>,
    /// This session's place under `max_userip_connections`.
    pub(crate) slot: Option<limits::Slot>,
    /// Bad commands so far.
    pub(crate) bad: u32,
    /// A CONDSTORE enabling command was given (RFC 7162 §3.1): every
    /// untagged FETCH carries MODSEQ from then on.
    pub(crate) condstore: bool,
    /// QRESYNC was enabled (RFC 7162 §3.2.3): VANISHED, not EXPUNGE.
    pub(crate) qresync: bool,
    /// A login handed to a process of the mailbox's owner, its tag set
    /// by dispatch.
    pub(crate) handover: Option<handover::Handed>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<'_, S> {
    /// Queues `tag status text`.
    pub(crate) fn reply(&mut self, tag: &str, status: &str, text: &str) {
        self.io.send(&tagged(tag, status, text));
    }

    /// Queues a tagged (or, without a tag, untagged) BAD; counts it.
    pub(crate) fn bad(&mut self, tag: Option<&str>, text: &str) -> Result<Flow, Stop> {
        self.io.send(&tagged(tag.unwrap_or("*"), "BAD", text));
        self.bad += 1;
        if self.bad >= self.ctx.settings.max_bad_commands {
            self.io
                .send(&untagged("BYE Too many invalid IMAP commands."));
            return Err(Stop::Kicked("Too many invalid IMAP commands"));
        }
        Ok(Flow::Continue)
    }
}

/// Serves one connection until LOGOUT, the client leaves, a timeout, or
/// an error. Never panics on anything the client sends.
pub async fn serve<S>(stream: S, conn: Connection, settings: Arc<Settings>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // Who this session's store work runs as, set at login.
    view::OWNER
        .scope(std::cell::Cell::new(None), serve_as(stream, conn, settings))
        .await;
}

async fn serve_as<S>(stream: S, conn: Connection, settings: Arc<Settings>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let tls = settings.tls.as_ref();
    if settings.implicit_tls {
        let Some(tls) = tls else {
            return;
        };
        match tls.acceptor().accept(stream).await {
            Ok(stream) => {
                run(stream, conn, &settings, true, true).await;
            }
            Err(e) => {
                tracing::info!(target: "postern/imap", "Disconnected (TLS handshaking: {e}): rip={}, lip={}", conn.peer.ip(), conn.local.ip());
            }
        }
        return;
    }
    let Some(plain) = run(stream, conn, &settings, false, true).await else {
        return;
    };
    let Some(tls) = tls else {
        return;
    };
    match tls.acceptor().accept(plain).await {
        // No second greeting after STARTTLS (RFC 3501 §6.2.1).
        Ok(stream) => {
            run(stream, conn, &settings, true, false).await;
        }
        Err(e) => {
            tracing::info!(target: "postern/imap", "Disconnected (TLS handshaking: {e}): rip={}, lip={}", conn.peer.ip(), conn.local.ip());
        }
    }
}

/// One session on `stream` (TLS already when `tls`); gives the stream
/// back when the client asked for STARTTLS.
async fn run<S>(
    stream: S,
    conn: Connection,
    settings: &Settings,
    tls: bool,
    greet: bool,
) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut s = Session::new(stream, conn, settings, tls);
    if greet {
        let caps = crate::command::any::capabilities(&s);
        s.io.send(&untagged(&format!(
            "OK [CAPABILITY {caps}] {}",
            settings.greeting
        )));
    }
    commands(s).await
}

/// Serves a login that another process checked (the server's session
/// process of a mailbox's owner, `postern mail-session`): opens the
/// mailboxes of `user` at `root`, completes the login's `tag` (OK with
/// the CAPABILITY code, or NO and BYE), then serves the authenticated
/// state over `stream`.
#[allow(clippy::too_many_arguments)]
pub async fn serve_handed<S>(
    stream: S,
    conn: Connection,
    settings: Arc<Settings>,
    tls: bool,
    user: String,
    root: PathBuf,
    tag: &str,
    mechanism: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let session = async {
        let mut s = Session::new(stream, conn, &settings, tls);
        let done = crate::command::auth::open(&mut s, user, root, None, mechanism).await;
        s.reply(tag, done.status, &done.text);
        if s.user.is_none() {
            s.io.send(&untagged("BYE Couldn't open the mailbox."));
            s.io.shutdown().await;
            return;
        }
        commands(s).await;
    };
    view::OWNER.scope(std::cell::Cell::new(None), session).await;
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin + Send> Session<'a, S> {
    /// A session not yet logged in on `stream`.
    fn new(stream: S, conn: Connection, settings: &'a Settings, tls: bool) -> Session<'a, S> {
        let framer = Framer::new(settings.max_line, settings.max_literal);
        Session {
            io: Io::new(
                stream,
                framer,
                settings.login_timeout.min(settings.command_timeout),
            )
            .with_stop(settings.stop.clone()),
            ctx: Context {
                settings,
                conn,
                tls,
            },
            user: None,
            selected: None,
            slot: None,
            bad: 0,
            condstore: false,
            qresync: false,
            handover: None,
        }
    }
}

/// Commands until the session ends; the stream back at STARTTLS.
async fn commands<S>(mut s: Session<'_, S>) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    loop {
        let flow = match s.io.next().await {
            Ok(Frame::Command(bytes)) => match Request::parse(&bytes) {
                Ok(request) => crate::command::dispatch(&mut s, request).await,
                Err((tag, e)) => {
                    let text = match (&tag, e.0.as_str()) {
                        (Some(_), t) if t.starts_with("[BADCHARSET") => {
                            s.reply(tag.as_deref().unwrap_or("*"), "NO", t);
                            continue;
                        }
                        (None, _) => "Error in IMAP command received by server.".to_owned(),
                        (_, t) => format!("Error in IMAP command: {t}"),
                    };
                    s.bad(tag.as_deref(), &text)
                }
            },
            Ok(Frame::TooLong { tag }) => {
                s.bad(tag.as_deref(), "Error in IMAP command: Too long argument.")
            }
            Ok(Frame::LiteralTooBig { tag, synchronizing }) => {
                let tag = tag.unwrap_or_else(|| "*".to_owned());
                if synchronizing {
                    // The client waits for `+` that never comes: nothing
                    // of the literal will arrive, the session goes on.
                    s.reply(&tag, "NO", "[TOOBIG] Literal too large.");
                    Ok(Flow::Continue)
                } else {
                    // LITERAL+ octets are on their way and cannot be told
                    // from commands: RFC 7888 §4, answer and close.
                    s.reply(&tag, "BAD", "[TOOBIG] Literal too large.");
                    s.io.send(&untagged("BYE Literal too large."));
                    Err(Stop::Kicked("Literal too large"))
                }
            }
            Ok(Frame::Continue) => Ok(Flow::Continue),
            Err(stop) => Err(stop),
        };
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Logout) => {
                s.io.shutdown().await;
                log_end(&s, "Logged out");
                return None;
            }
            Ok(Flow::StartTls) => return s.io.into_stream().await.ok(),
            Ok(Flow::Handover) => {
                if let Some(handed) = s.handover.take() {
                    handover::run(&mut s, handed).await;
                }
                return None;
            }
            Err(stop) => {
                let why = match stop {
                    Stop::Timeout => {
                        s.io.send(&untagged("BYE Disconnected for inactivity."));
                        "Inactivity".to_owned()
                    }
                    Stop::Kicked(why) => why.to_owned(),
                    Stop::Shutdown => {
                        s.io.send(&untagged("BYE Server shutting down."));
                        "Server shutting down".to_owned()
                    }
                    Stop::Eof => "Connection closed".to_owned(),
                    Stop::Io(e) => format!("Connection closed: {e}"),
                };
                s.io.shutdown().await;
                log_end(&s, &why);
                return None;
            }
        }
    }
}

fn log_end<S>(s: &Session<'_, S>, why: &str) {
    match &s.user {
        Some((user, _)) => {
            tracing::info!(target: "postern/imap", "imap({user}): Disconnected: {why}");
        }
        None => {
            tracing::info!(target: "postern/imap", "Disconnected ({why}): {}", s.ctx.log_fields());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
