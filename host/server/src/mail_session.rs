//! POP3 and IMAP as the mailbox's owner after the privilege drop:
//! Dovecot's model of a process per login. The daemon (now `mail_owner`)
//! still accepts, speaks TLS and checks the password; when the mailbox
//! belongs to another uid (a system account's `~/Maildir`), the login is
//! handed over ([`SessionHandover`]): a socket pair is made, one end goes
//! to the root helper with [`Request::Session`], and the helper starts
//! `postern mail-session` ([`run`]) as the owner on it. The daemon's
//! session then only relays bytes, and the child runs the protocol
//! crate's authenticated state with the service's timeouts and limits,
//! its first reply ending the login (so the reply still says whether the
//! mailbox could be opened). Mailboxes the daemon owns itself (virtual
//! mailboxes under `virtual_mailbox_base`) are served in the daemon as
//! before.
//!
//! A session process logs through the daemon: its standard error is the
//! daemon's log channel (host/server/src/log/channel.rs), so its `Login:`
//! and `Disconnected:` lines, tagged with its own pid, go wherever the
//! daemon's lines go (stderr, `maillog_file`, syslog). Its environment is
//! cleared, so the daemon's log filter (`POSTERN_LOG`) comes with the
//! request and reaches it as `--log-filter`: a daemon logging at debug
//! gets its sessions' debug lines too.
//!
//! The number of session processes follows the service's session limit:
//! each one is relayed by a session of the daemon, which holds a slot of
//! that service for as long.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use postern_privsep::{Ids, MailSession, Request, Response};
use postern_tls::relay::{Handed, Protocol};

/// Hands logins of other uids' mailboxes to the root helper, which
/// starts their session processes.
#[derive(Debug, Default)]
pub struct SessionHandover;

impl SessionHandover {
    /// Whether a login whose mail `owner` owns goes to a process of
    /// theirs: when a helper is installed (the daemon dropped its
    /// privileges) and the owner is not the daemon itself.
    fn hands_over(owner: Option<(u32, u32)>) -> bool {
        let me = rustix::process::geteuid().as_raw();
        postern_privsep::installed().is_some() && owner.is_some_and(|(uid, _)| uid != me)
    }

    /// Asks the helper for the session process; its socket and pid.
    fn start_process(session: MailSession) -> io::Result<(UnixStream, u32)> {
        let Some(helper) = postern_privsep::installed() else {
            return Err(io::Error::other("no privileged helper"));
        };
        let (ours, theirs) = UnixStream::pair()?;
        let request = Request::Session(session);
        let answer = helper.call_with_fd(&request, theirs.as_fd())?;
        // The child has its own copy now; ours would keep its input open.
        drop(theirs);
        match answer {
            Response::Started(pid) => Ok((ours, pid)),
            Response::Refused(why) | Response::Failed(why) => Err(io::Error::other(why)),
            other => Err(io::Error::other(format!(
                "unexpected answer from the helper: {other:?}"
            ))),
        }
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX)
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl postern_tls::relay::Handover for SessionHandover {
    fn wanted(&self, owner: Option<(u32, u32)>) -> bool {
        SessionHandover::hands_over(owner)
    }

    fn start(&self, h: &Handed) -> io::Result<(UnixStream, u32)> {
        let (tag, max_literal) = match &h.protocol {
            Protocol::Pop3 => (String::new(), 0),
            Protocol::Imap { tag, max_literal } => (tag.clone(), clamp(*max_literal)),
        };
        SessionHandover::start_process(MailSession {
            ids: Ids {
                uid: h.owner.0,
                gid: h.owner.1,
            },
            protocol: h.protocol.name().to_owned(),
            login: h.user.clone(),
            maildir: h.maildir.clone(),
            peer: h.peer.to_string(),
            local: h.local.to_string(),
            tls: h.tls,
            tag,
            mechanism: h.mechanism.clone(),
            timeout: secs(h.timeout),
            max_line: clamp(h.max_line),
            max_literal,
            log_filter: crate::log::session_filter().to_owned(),
        })
    }
}

/// The session process's command line, written by the helper
/// (host/server/src/privilege_helper.rs) from a checked request.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionArgs {
    /// `pop3` or `imap`.
    #[arg(long)]
    protocol: String,
    /// The login name.
    #[arg(long)]
    login: String,
    /// The Maildir.
    #[arg(long)]
    maildir: PathBuf,
    /// The client's address.
    #[arg(long)]
    peer: SocketAddr,
    /// Ours.
    #[arg(long)]
    local: SocketAddr,
    /// The client's connection is TLS.
    #[arg(long)]
    tls: bool,
    /// IMAP: the tag of the login to complete.
    #[arg(long, default_value = "")]
    tag: String,
    /// The login's SASL mechanism, as logged.
    #[arg(long)]
    mechanism: String,
    /// The service's command timeout, in seconds.
    #[arg(long)]
    timeout: u64,
    /// The longest command line.
    #[arg(long)]
    max_line: usize,
    /// IMAP: the largest literal.
    #[arg(long, default_value_t = 0)]
    max_literal: usize,
    /// The daemon's log filter (its `POSTERN_LOG`); empty for `info`.
    #[arg(long, default_value = "")]
    log_filter: String,
}

/// Runs one session on standard input and output (one end of a socket
/// pair) as the user the helper made this process. Never as root: a
/// session process that could get root back is refused.
pub fn run(args: SessionArgs) -> anyhow::Result<ExitCode> {
    if rustix::process::geteuid().is_root() || rustix::process::getuid().is_root() {
        bail!("a mail session process never runs as root");
    }
    // To the daemon's log, over the channel the helper made our stderr.
    crate::log::init_session(&args.log_filter);
    crate::log::panic::install();
    tracing::debug!(
        target: "postern/mail-session",
        "{}({}): session process of uid {} on {}",
        args.protocol,
        args.login,
        rustix::process::getuid().as_raw(),
        args.maildir.display()
    );
    let fd: OwnedFd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("no standard input")?;
    let socket = UnixStream::from(fd);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(socket, args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(socket: UnixStream, a: SessionArgs) -> anyhow::Result<()> {
    socket.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(socket)?;
    // The password was checked by the daemon: this process holds no
    // user database and answers no login of its own.
    let auth = Arc::new(postern_auth::Authenticator::new(
        Arc::new(postern_auth::UserDb::new()),
        postern_auth::FailurePolicy {
            delay: Duration::from_secs(1),
            limit: 1,
        },
    ));
    let timeout = Duration::from_secs(a.timeout.max(1));
    match a.protocol.as_str() {
        "pop3" => {
            let mut settings = postern_pop3::Settings::new(auth, Arc::new(NoMailboxes));
            settings.command_timeout = timeout;
            settings.max_line = a.max_line;
            let conn = postern_pop3::Connection {
                peer: a.peer,
                local: a.local,
            };
            postern_pop3::serve_handed(
                stream,
                conn,
                Arc::new(settings),
                a.tls,
                a.login,
                a.maildir,
                &a.mechanism,
            )
            .await;
        }
        "imap" => {
            let mut settings = postern_imap::Settings::new(auth, Arc::new(NoMailboxes));
            settings.command_timeout = timeout;
            settings.max_line = a.max_line;
            if a.max_literal > 0 {
                settings.max_literal = a.max_literal;
            }
            let conn = postern_imap::Connection {
                peer: a.peer,
                local: a.local,
            };
            postern_imap::serve_handed(
                stream,
                conn,
                Arc::new(settings),
                a.tls,
                a.login,
                a.maildir,
                &a.tag,
                &a.mechanism,
            )
            .await;
        }
        other => bail!("no session protocol {other:?}"),
    }
    Ok(())
}

/// A session process knows one mailbox, given on its command line.
#[derive(Debug)]
struct NoMailboxes;

impl postern_pop3::Mailboxes for NoMailboxes {
    fn maildir(&self, _login: &str) -> Option<PathBuf> {
        None
    }
}

impl postern_imap::Mailboxes for NoMailboxes {
    fn maildir(&self, _login: &str) -> Option<PathBuf> {
        None
    }
}
