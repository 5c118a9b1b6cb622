//! The not-authenticated state (RFC 3501 §6.2): STARTTLS, LOGIN and
//! AUTHENTICATE PLAIN with SASL-IR (RFC 4959). Passwords are taken only
//! over TLS or on loopback, as Dovecot's `disable_plaintext_auth`.

use std::path::PathBuf;

use postern_auth::{Check, Credentials, Exchange, Mechanism, SaslError, Step};
use postern_mailbox::Store;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Done;
use crate::codec::Frame;
use crate::session::handover::Handed;
use crate::session::io::Stop;
use crate::session::view::blocking;
use crate::session::{Flow, Session};
use postern_tls::relay::Protocol;

const AUTH_FAILED: &str = "[AUTHENTICATIONFAILED] Authentication failed.";
const PLAINTEXT: &str =
    "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";

pub(crate) fn starttls<S>(s: &mut Session<'_, S>) -> Done {
    if s.ctx.tls {
        return Done::bad("TLS is already active.");
    }
    if s.ctx.settings.tls.is_none() {
        return Done::no("TLS support isn't enabled.");
    }
    if s.user.is_some() {
        return Done::bad("STARTTLS can't be used after login.");
    }
    Done::ok("Begin TLS negotiation now.")
        .sync(super::Sync::Skip)
        .flow(Flow::StartTls)
}

pub(crate) async fn login<S>(
    s: &mut Session<'_, S>,
    user: String,
    password: String,
) -> Result<Done, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    if !s.ctx.secured() {
        return Ok(Done::no(PLAINTEXT));
    }
    let credentials = Credentials {
        authzid: None,
        username: user,
        password,
    };
    check(s, credentials, Mechanism::Plain).await
}

pub(crate) async fn authenticate<S>(
    s: &mut Session<'_, S>,
    mechanism: &str,
    initial: Option<String>,
) -> Result<Done, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(mechanism) = Mechanism::from_name(mechanism).filter(|m| *m == Mechanism::Plain) else {
        return Ok(Done::no("Unsupported authentication mechanism."));
    };
    if !s.ctx.secured() {
        return Ok(Done::no(PLAINTEXT));
    }
    let mut step = Exchange::start(mechanism, initial.as_deref());
    let credentials = loop {
        let (mut exchange, next) = match step {
            Ok(pair) => pair,
            Err(SaslError::Cancelled) => return Ok(Done::bad("Authentication aborted by client.")),
            Err(SaslError::BadBase64) => {
                return Ok(Done::bad("Invalid base64 data in continued response."));
            }
            Err(_) => return failed(s, "", mechanism).await,
        };
        match next {
            Step::Done(c) => break c,
            Step::Challenge(text) => {
                // RFC 3501 §6.2.2: `+ challenge`, the response is a line.
                s.io.send(format!("+ {text}\r\n").as_bytes());
                let line = match s.io.next().await? {
                    Frame::Command(line) => line,
                    _ => return Ok(Done::bad("Authentication response too long.")),
                };
                let line = String::from_utf8_lossy(&line).into_owned();
                step = exchange.step(&line).map(|st| (exchange, st));
            }
        }
    };
    check(s, credentials, mechanism).await
}

/// Checks the password off the async workers, then opens the mailboxes.
async fn check<S>(
    s: &mut Session<'_, S>,
    credentials: Credentials,
    mechanism: Mechanism,
) -> Result<Done, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let auth = s.ctx.settings.auth.clone();
    let username = credentials.username.clone();
    let check = tokio::task::spawn_blocking(move || auth.check(&credentials))
        .await
        .unwrap_or(Check::Failure);
    let user = match check {
        Check::Success(user) => user,
        other => {
            if let Check::Broken { user, line, error } = &other {
                tracing::warn!(target: "postern/imap", "user {user} (users file line {line}): {error}");
            }
            return failed(s, &username, mechanism).await;
        }
    };
    let client = s.ctx.conn.peer.ip();
    let settings = s.ctx.settings;
    let Some(slot) = settings
        .userip
        .enter(&user, client, settings.max_userip_connections)
    else {
        tracing::info!(target: "postern/imap", "Login refused, too many sessions: user=<{user}>, {}", s.ctx.log_fields());
        return Ok(Done::no(format!(
            "[LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections={})",
            settings.max_userip_connections
        )));
    };
    settings.auth.mailbox_login(client);
    let Some(root) = s.ctx.settings.mailboxes.maildir(&user) else {
        tracing::warn!(target: "postern/imap", "user=<{user}>: no mailbox for this user");
        return Ok(Done::no("[UNAVAILABLE] No mailbox for this user."));
    };
    let owner = settings.mailboxes.owner(&user);
    if let Some(ids) = owner
        && settings.handover.as_ref().is_some_and(|h| h.wanted(owner))
    {
        s.slot = Some(slot);
        s.handover = Some(Handed {
            user,
            maildir: root,
            owner: ids,
            peer: s.ctx.conn.peer,
            local: s.ctx.conn.local,
            tls: s.ctx.tls,
            mechanism: mechanism.to_string(),
            timeout: settings.command_timeout,
            max_line: settings.max_line,
            // The tag is the command's, set as it completes (dispatch).
            protocol: Protocol::Imap {
                tag: String::new(),
                max_literal: settings.max_literal,
            },
        });
        return Ok(Done::ok("").flow(Flow::Handover));
    }
    let done = open(s, user, root, owner, &mechanism.to_string()).await;
    if s.user.is_some() {
        s.slot = Some(slot);
    }
    Ok(done)
}

/// Opens the mailboxes of `user`, who has logged in, at `root`, as
/// `owner`: the login's completion. Also where a session handed to the
/// owner's process starts.
pub(crate) async fn open<S>(
    s: &mut Session<'_, S>,
    user: String,
    root: PathBuf,
    owner: Option<(u32, u32)>,
    mechanism: &str,
) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let settings = s.ctx.settings;
    // From here on the store is touched as its owner.
    let _ = crate::session::view::OWNER.try_with(|o| o.set(owner));
    let store = blocking(move || {
        let store = Store::open(root)?;
        // New users get Drafts, Sent, Trash and Junk (RFC 6154).
        store.create_special().map_err(std::io::Error::other)?;
        Ok(store)
    })
    .await;
    let store = match store {
        Ok(store) => store,
        Err(e) => {
            tracing::warn!(target: "postern/imap", "user=<{user}>: cannot open the Maildir: {e}");
            return Done::no("[UNAVAILABLE] Couldn't open the mailbox.");
        }
    };
    tracing::info!(target: "postern/imap", "Login: user=<{user}>, method={mechanism}, {}, mpid={}", s.ctx.log_fields(), std::process::id());
    s.user = Some((user, store));
    s.io.set_timeout(settings.command_timeout);
    let caps = super::any::capabilities(s);
    Done::ok(format!("[CAPABILITY {caps}] Logged in"))
}

async fn failed<S>(
    s: &mut Session<'_, S>,
    username: &str,
    mechanism: Mechanism,
) -> Result<Done, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let penalty = s.ctx.settings.auth.failed(s.ctx.conn.peer.ip());
    tracing::info!(target: "postern/imap", "Authentication failed: user=<{username}>, method={mechanism}, {}", s.ctx.log_fields());
    tokio::time::sleep(penalty.delay).await;
    if penalty.disconnect {
        s.io.send(format!("* BYE {AUTH_FAILED}\r\n").as_bytes());
        return Err(Stop::Kicked("Too many failed logins"));
    }
    Ok(Done::no(AUTH_FAILED))
}
