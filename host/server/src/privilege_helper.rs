//! The privileged helper's process (`postern privsep-helper`, started only
//! by the daemon, see [`crate::privilege`]): stays root, reads requests
//! from its standard input (one end of a socket pair), checks each
//! against the policy given on its command line and carries it out as the
//! uid it names, with the same code a root daemon runs
//! ([`postern_delivery::local_privsep::execute`],
//! [`postern_auth::SystemAccounts::check`]), and starts the POP3 and
//! IMAP session processes of mailbox owners ([`crate::mail_session`]). It
//! exits when the daemon's end closes.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use postern_privsep::{MailSession, Policy, Request, Response};

/// The helper's policy from its command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HelperArgs {
    /// A mail root (virtual_mailbox_base, mail_spool_directory).
    #[arg(long = "root")]
    roots: Vec<PathBuf>,
    /// A users-file entry's `UID:HOME`.
    #[arg(long = "home")]
    homes: Vec<String>,
    /// A uid below UID_MIN that may receive mail (default_privs, users-file uids).
    #[arg(long = "uid")]
    uids: Vec<u32>,
    /// The longest request frame (refreshed from the config at each
    /// reload, with `message_size_limit`).
    #[arg(long, default_value_t = postern_privsep::MAX_FRAME)]
    max_frame: usize,
    /// The most session processes at once: the daemon's POP3 and IMAP
    /// session slots (refreshed from the config at each reload).
    #[arg(long, default_value_t = postern_privsep::MAX_SESSIONS)]
    max_sessions: usize,
    /// The root-owned config file, re-read for file requests and refreshes
    /// (none: the embedded default). Not `--config`, the global option.
    #[arg(long)]
    trusted_config: Option<PathBuf>,
}

/// The handler: deliveries to the delivery crate, passwords to auth.
struct Helper(crate::privilege_files::HelperFiles);

impl postern_privsep::serve::Handler for Helper {
    fn handle(&self, request: Request) -> Response {
        match request {
            Request::Password { login, password } => {
                let (code, text) = postern_auth::SystemAccounts::new(Vec::new())
                    .check(&login, &password)
                    .to_code();
                Response::Password(code, text)
            }
            r @ (Request::ReadFile { .. } | Request::Forward { .. }) => self.0.read(r),
            other => postern_delivery::local_privsep::execute(other),
        }
    }

    fn refused(&self, why: &str) {
        crate::log::channel::helper_warning(&format!("refused a request: {why}"));
    }

    fn session(&self, session: MailSession, socket: OwnedFd) -> Response {
        start_session(&session, socket, self.0.max_sessions())
    }

    fn refresh(&self) -> Result<Policy, String> {
        self.0.refresh()
    }
}

/// Session processes running now, at most the policy's `max_sessions`.
static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// Starts `postern mail-session` as the session's owner over `socket`
/// (its standard input and output), and a thread that reaps it: the
/// request loop never waits for a session. The child gets no other
/// descriptor (everything else here is close-on-exec), no environment,
/// and `/` as its directory; std's `uid` drops the supplementary groups,
/// then sets gid and uid (real, effective and saved) before `exec`, so
/// the child cannot get root back.
fn start_session(session: &MailSession, socket: OwnedFd, max: usize) -> Response {
    if SESSIONS.fetch_add(1, Ordering::AcqRel) >= max {
        SESSIONS.fetch_sub(1, Ordering::AcqRel);
        return Response::Failed(format!(
            "too many session processes (at most {max}, the POP3 and IMAP session slots)"
        ));
    }
    let started = spawn_session(session, socket);
    match started {
        Ok(mut child) => {
            let pid = child.id();
            let reaper = std::thread::Builder::new()
                .name(format!("session-{pid}"))
                .spawn(move || {
                    let _ = child.wait();
                    SESSIONS.fetch_sub(1, Ordering::AcqRel);
                });
            if reaper.is_err() {
                // Left to be reaped when the helper exits; still counted.
                crate::log::channel::helper_warning(&format!(
                    "no thread to reap session process {pid}"
                ));
            }
            Response::Started(pid)
        }
        Err(e) => {
            SESSIONS.fetch_sub(1, Ordering::AcqRel);
            Response::Failed(format!("cannot start the session process: {e}"))
        }
    }
}

fn spawn_session(s: &MailSession, socket: OwnedFd) -> std::io::Result<std::process::Child> {
    let output = socket.try_clone()?;
    let mut maildir = OsString::from("--maildir=");
    maildir.push(s.maildir.as_os_str());
    // The helper's own binary, even when the file was replaced since (an
    // upgrade): the session process speaks the helper's version of its
    // command line.
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("postern")
        .arg("mail-session")
        .arg(format!("--protocol={}", s.protocol))
        .arg(format!("--login={}", s.login))
        .arg(maildir)
        .arg(format!("--peer={}", s.peer))
        .arg(format!("--local={}", s.local))
        .arg(format!("--mechanism={}", s.mechanism))
        .arg(format!("--timeout={}", s.timeout))
        .arg(format!("--max-line={}", s.max_line))
        .arg(format!("--max-literal={}", s.max_literal));
    if !s.tag.is_empty() {
        cmd.arg(format!("--tag={}", s.tag));
    }
    if s.tls {
        cmd.arg("--tls");
    }
    if !s.log_filter.is_empty() {
        cmd.arg(format!("--log-filter={}", s.log_filter));
    }
    cmd.env_clear()
        .current_dir("/")
        .stdin(Stdio::from(socket))
        .stdout(Stdio::from(output))
        .stderr(session_log())
        .gid(s.ids.gid)
        .uid(s.ids.uid)
        .spawn()
}

/// A session process's standard error: the daemon's log channel, which
/// is the helper's standard output (host/server/src/log/channel.rs), so
/// that its lines reach the daemon's log destination; the helper's own
/// standard error where there is no channel.
fn session_log() -> Stdio {
    let out = std::io::stdout();
    if !crate::log::channel::is_channel(out.as_fd()) {
        return Stdio::inherit();
    }
    out.as_fd()
        .try_clone_to_owned()
        .map_or_else(|_| Stdio::inherit(), Stdio::from)
}

/// Runs the helper until the daemon goes away.
pub fn run(args: HelperArgs) -> anyhow::Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        bail!("the privileged helper runs only as root, started by the daemon");
    }
    crate::log::panic::install_for_helper();
    let mut homes = Vec::new();
    for h in &args.homes {
        let Some((uid, home)) = h.split_once(':') else {
            bail!("--home {h}: not UID:HOME");
        };
        homes.push((
            uid.parse().context("--home: a bad uid")?,
            PathBuf::from(home),
        ));
    }
    let policy = Policy {
        roots: args.roots,
        homes,
        uids: args.uids,
        first_uid: first_uid(),
        max_sessions: args.max_sessions,
        max_frame: args.max_frame,
        ..Policy::new()
    };
    let stream = UnixStream::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("no standard input")?,
    );
    let files = crate::privilege_files::HelperFiles::new(
        crate::privilege_files::RootConfig {
            // Without a config file, the daemon's reload looks for the
            // default one (control.rs): so does the helper.
            default: args
                .trusted_config
                .is_none()
                .then(|| PathBuf::from(crate::config::DEFAULT_PATH)),
            path: args.trusted_config,
            first_uid: policy.first_uid,
        },
        policy.clone(),
    );
    postern_privsep::serve(stream, policy, Arc::new(Helper(files))).context("privileged helper")?;
    Ok(ExitCode::SUCCESS)
}

/// useradd's UID_MIN from /etc/login.defs (1000 without one): accounts
/// below it are the system's daemons, which get no mail through here.
fn first_uid() -> u32 {
    std::fs::read_to_string("/etc/login.defs")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("UID_MIN"))
                    .then(|| words.next()?.parse().ok())
                    .flatten()
            })
        })
        .unwrap_or(1000)
}
