//! The AUTHORIZATION state (RFC 1939 §4): CAPA, STLS, USER/PASS and
//! AUTH (RFC 5034), until a login takes the mailbox's lock.

use postern_auth::owner::as_owner;
use postern_auth::{Check, Credentials, Exchange, Mechanism, SaslError, Step};
use std::path::PathBuf;

use postern_mailbox::Maildir;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Context;
use super::handover::Handed;
use super::io::{Input, Io, Stop};
use super::lock::{Guard, lock_file};
use crate::codec::{Command, response};
use postern_tls::relay::Protocol;

/// Dovecot's reply when `disable_plaintext_auth` refuses a password.
pub(crate) const PLAINTEXT_DISALLOWED: &str =
    "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
/// RFC 2449 §8.1.1 `[IN-USE]`: another session has the mailbox.
pub(crate) const IN_USE: &str = "[IN-USE] Mailbox is locked by another POP3 session.";
const AUTH_FAILED: &str = "[AUTH] Authentication failed.";

/// The SASL mechanisms offered.
const MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// How the AUTHORIZATION state ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `+OK Begin TLS negotiation now.` was queued: hand the socket over.
    StartTls,
    /// A user logged in and holds the mailbox.
    Login(Login),
    /// A user logged in whose mailbox another uid owns: the session goes
    /// on in a process of theirs ([`super::handover`]).
    Handover(Handed),
    /// QUIT.
    Quit,
}

/// A logged-in user with their mailbox locked.
#[derive(Debug)]
pub(crate) struct Login {
    /// The canonical login name (`alice@example.org`).
    pub(crate) user: String,
    /// The Maildir.
    pub(crate) maildir: Maildir,
    /// Held until the UPDATE state is done (or the session ends).
    pub(crate) lock: Option<Guard>,
    /// Who the Maildir is touched as ([`super::Mailboxes::owner`]).
    pub(crate) owner: Option<(u32, u32)>,
}

/// The CAPA response (RFC 2449 §5) for the state the session is in.
pub(crate) fn capa(ctx: Context<'_>, logged_in: bool) -> Vec<u8> {
    let mut caps = vec![
        "CAPA",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
    ];
    let sasl;
    if !logged_in {
        if ctx.can_stls() {
            caps.push("STLS");
        }
        if ctx.secured() {
            caps.push("USER");
            let names: Vec<&str> = MECHANISMS.iter().map(|m| m.name()).collect();
            sasl = format!("SASL {}", names.join(" "));
            caps.push(&sasl);
        }
    }
    let mut out = response::ok("");
    response::lines(&mut out, caps);
    out
}

/// Runs the state until it ends.
pub(crate) async fn run<S>(io: &mut Io<S>, ctx: Context<'_>) -> Result<Outcome, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut user: Option<String> = None;
    let mut bad = 0u32;
    loop {
        let line = match io.next_line().await? {
            Input::Line(line) => line,
            Input::TooLong => {
                io.send(&response::err("Input line too long."));
                bad += 1;
                if bad >= ctx.settings.max_bad_commands {
                    return Err(Stop::Kicked);
                }
                continue;
            }
        };
        let command = match Command::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                io.send(&response::err(&e.to_string()));
                bad += 1;
                if bad >= ctx.settings.max_bad_commands {
                    return Err(Stop::Kicked);
                }
                continue;
            }
        };
        match command {
            Command::Capa => io.send(&capa(ctx, false)),
            Command::Quit => {
                io.send(&response::ok("Logging out"));
                return Ok(Outcome::Quit);
            }
            Command::Stls if ctx.tls => io.send(&response::err("TLS is already active.")),
            Command::Stls if !ctx.can_stls() => {
                io.send(&response::err("TLS support isn't enabled."));
            }
            Command::Stls => {
                io.send(&response::ok("Begin TLS negotiation now."));
                return Ok(Outcome::StartTls);
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } if !ctx.secured() => {
                io.send(&response::err(PLAINTEXT_DISALLOWED));
            }
            Command::User(name) => {
                user = Some(name);
                io.send(&response::ok(""));
            }
            Command::Pass(password) => {
                let Some(username) = user.take() else {
                    io.send(&response::err("No username given."));
                    continue;
                };
                let credentials = Credentials {
                    authzid: None,
                    username,
                    password,
                };
                if let Some(outcome) = login(io, ctx, credentials, Mechanism::Plain).await? {
                    return Ok(outcome);
                }
            }
            Command::AuthList => {
                let mut out = response::ok("");
                response::lines(&mut out, MECHANISMS.iter().map(|m| m.name()));
                io.send(&out);
            }
            Command::Auth { mechanism, initial } => {
                let Some(mechanism) =
                    Mechanism::from_name(&mechanism).filter(|m| MECHANISMS.contains(m))
                else {
                    io.send(&response::err("Unsupported authentication mechanism."));
                    continue;
                };
                let Some(credentials) = sasl(io, mechanism, initial.as_deref()).await? else {
                    continue;
                };
                if let Some(outcome) = login(io, ctx, credentials, mechanism).await? {
                    return Ok(outcome);
                }
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_) => io.send(&response::err("Unknown command.")),
        }
    }
}

/// Runs a SASL exchange (RFC 5034 §4: `+ challenge` lines, `*` cancels);
/// `None` when it ended without credentials (the reply is queued).
async fn sasl<S>(
    io: &mut Io<S>,
    mechanism: Mechanism,
    initial: Option<&str>,
) -> Result<Option<Credentials>, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut step = Exchange::start(mechanism, initial);
    loop {
        let (mut exchange, next) = match step {
            Ok(pair) => pair,
            Err(e) => {
                io.send(&response::err(sasl_error(&e)));
                return Ok(None);
            }
        };
        match next {
            Step::Done(credentials) => return Ok(Some(credentials)),
            Step::Challenge(challenge) => {
                io.send(format!("+ {challenge}\r\n").as_bytes());
                let line = match io.next_line().await? {
                    Input::Line(line) => line,
                    Input::TooLong => {
                        io.send(&response::err("Input line too long."));
                        return Ok(None);
                    }
                };
                let line = String::from_utf8_lossy(&line);
                step = exchange.step(&line).map(|s| (exchange, s));
            }
        }
    }
}

fn sasl_error(e: &SaslError) -> &'static str {
    match e {
        SaslError::Cancelled => "Authentication aborted by client.",
        SaslError::BadBase64 => "Invalid base64 data in continued response.",
        _ => AUTH_FAILED,
    }
}

/// Checks `credentials` (off the async workers), then locks the mailbox,
/// or hands the login over when another uid owns it. `None` when the
/// login failed; its reply is queued.
async fn login<S>(
    io: &mut Io<S>,
    ctx: Context<'_>,
    credentials: Credentials,
    mechanism: Mechanism,
) -> Result<Option<Outcome>, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let auth = ctx.settings.auth.clone();
    let client = ctx.conn.peer.ip();
    let username = credentials.username.clone();
    let check = tokio::task::spawn_blocking(move || auth.check(&credentials))
        .await
        .unwrap_or(Check::Failure);
    let user = match check {
        Check::Success(user) => user,
        other => {
            if let Check::Broken { user, line, error } = &other {
                tracing::warn!(target: "postern/pop3", "user {user} (users file line {line}): {error}");
            }
            let penalty = ctx.settings.auth.failed(client);
            tracing::info!(target: "postern/pop3", "Authentication failed: user=<{username}>, method={mechanism}, {}", ctx.log_fields());
            tokio::time::sleep(penalty.delay).await;
            io.send(&response::err(AUTH_FAILED));
            if penalty.disconnect {
                return Err(Stop::Kicked);
            }
            return Ok(None);
        }
    };
    // Also records the address for POP-before-SMTP (postern_auth::Ledger).
    ctx.settings.auth.mailbox_login(client);
    let Some(path) = ctx.settings.mailboxes.maildir(&user) else {
        tracing::warn!(target: "postern/pop3", "user=<{user}>: no mailbox for this user");
        io.send(&response::err("[SYS/PERM] No mailbox for this user."));
        return Ok(None);
    };
    let owner = ctx.settings.mailboxes.owner(&user);
    if let Some(ids) = owner
        && ctx
            .settings
            .handover
            .as_ref()
            .is_some_and(|h| h.wanted(owner))
    {
        return Ok(Some(Outcome::Handover(Handed {
            user,
            maildir: path,
            owner: ids,
            peer: ctx.conn.peer,
            local: ctx.conn.local,
            tls: ctx.tls,
            mechanism: mechanism.to_string(),
            timeout: ctx.settings.command_timeout,
            max_line: ctx.settings.max_line,
            protocol: Protocol::Pop3,
        })));
    }
    let login = open(io, ctx, user, path, owner, &mechanism.to_string()).await;
    Ok(login.map(Outcome::Login))
}

/// Locks and opens the Maildir of `user`, who has logged in: `None` when
/// another session has it or it cannot be opened (the reply is queued).
/// Also where a session handed to the owner's process starts.
pub(crate) async fn open<S>(
    io: &mut Io<S>,
    ctx: Context<'_>,
    user: String,
    path: PathBuf,
    owner: Option<(u32, u32)>,
    mechanism: &str,
) -> Option<Login>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let in_use = |io: &mut Io<S>, user: &str| {
        tracing::info!(target: "postern/pop3", "Login refused, mailbox in use: user=<{user}>, method={mechanism}, {}", ctx.log_fields());
        io.send(&response::err(IN_USE));
    };
    let Some(mut lock) = ctx.settings.locks.try_lock(&path) else {
        in_use(io, &user);
        return None;
    };
    let open = move || {
        as_owner(owner, move || {
            let maildir = Maildir::create(path)?;
            let file = lock_file(maildir.path())?;
            Ok((maildir, file))
        })
    };
    let (maildir, file) = match tokio::task::spawn_blocking(open).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            tracing::warn!(target: "postern/pop3", "user=<{user}>: cannot open the Maildir: {e}");
            io.send(&response::err("[SYS/TEMP] Couldn't open INBOX."));
            return None;
        }
        Err(_) => {
            io.send(&response::err("[SYS/TEMP] Couldn't open INBOX."));
            return None;
        }
    };
    let Some(file) = file else {
        in_use(io, &user);
        return None;
    };
    lock.hold(file);
    tracing::info!(target: "postern/pop3", "Login: user=<{user}>, method={mechanism}, rip={}, lip={}, mpid={}{}", ctx.conn.peer.ip(), ctx.conn.local.ip(), std::process::id(), ctx.security());
    Some(Login {
        user,
        maildir,
        lock: Some(lock),
        owner,
    })
}
