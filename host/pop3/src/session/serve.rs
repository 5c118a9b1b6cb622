//! The course of one session over its stream: the TLS handshake first
//! (pop3s) or on STLS, AUTHORIZATION, then TRANSACTION here or a handover
//! to the owner's process, and the goodbye when it ends before a login.
//! Apart from the settings and types every state shares.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::io::{Io, Stop};
use super::{Connection, Context, Settings, authorization, handover, transaction};
use crate::codec::response;

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
