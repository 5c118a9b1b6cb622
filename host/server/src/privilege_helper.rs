//! The privileged helper's process (`postern privsep-helper`, started only
//! by the daemon, see [`crate::privilege`]): stays root, reads requests
//! from its standard input (one end of a socket pair), checks each
//! against the policy given on its command line and carries it out as the
//! uid it names, with the same code a root daemon runs
//! ([`postern_delivery::local_privsep::execute`],
//! [`postern_auth::SystemAccounts::check`]). It exits when the daemon's
//! end closes.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use postern_privsep::{Policy, Request, Response};

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
    /// The longest request frame.
    #[arg(long, default_value_t = 1 << 30)]
    max_frame: u64,
}

/// The handler: deliveries to the delivery crate, passwords to auth.
struct Helper;

impl postern_privsep::serve::Handler for Helper {
    fn handle(&self, request: Request) -> Response {
        match request {
            Request::Password { login, password } => {
                let (code, text) = postern_auth::SystemAccounts::new(Vec::new())
                    .check(&login, &password)
                    .to_code();
                Response::Password(code, text)
            }
            other => postern_delivery::local_privsep::execute(other),
        }
    }

    fn refused(&self, why: &str) {
        eprintln!(
            "postern/privsep[{}]: warning: refused a request: {why}",
            std::process::id()
        );
    }
}

/// Runs the helper until the daemon goes away.
pub fn run(args: HelperArgs) -> anyhow::Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        bail!("the privileged helper runs only as root, started by the daemon");
    }
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
        ..Policy::new()
    };
    let stream = UnixStream::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("no standard input")?,
    );
    let max = usize::try_from(args.max_frame).unwrap_or(usize::MAX);
    postern_privsep::serve(stream, policy, max, Arc::new(Helper)).context("privileged helper")?;
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
