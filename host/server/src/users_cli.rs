//! `postern user add|passwd|del|list`: Dovecot's `doveadm pw` and an
//! editor for the users file in one. The file named by `[auth]
//! users_file` is rewritten atomically (temporary file, fsync, rename),
//! keeping comments and the other users' lines. A running server is then
//! told to re-read the file (the control socket's `users`, which swaps in
//! the users and nothing else of the config), so that a user added logs
//! in and gets mail at once, as Dovecot notices a changed passwd-file; a
//! hand edit of the file takes `postern reload`.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use postern_auth::{Scheme, UserDb, edit};

use crate::config::Config;

/// What `postern user` does.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from the first line of stdin.
    Add {
        /// `name@domain`, or a name for the local namespace.
        name: String,
        /// Read the password from stdin (the default; for scripts that
        /// want to say so).
        #[arg(long)]
        password_stdin: bool,
        /// ARGON2ID (default), SHA512-CRYPT, BLF-CRYPT or PLAIN.
        #[arg(long, default_value = "ARGON2ID")]
        scheme: String,
    },
    /// Change a user's password, read from the first line of stdin.
    Passwd {
        /// The user.
        name: String,
        /// Read the password from stdin (the default).
        #[arg(long)]
        password_stdin: bool,
        /// ARGON2ID (default), SHA512-CRYPT, BLF-CRYPT or PLAIN.
        #[arg(long, default_value = "ARGON2ID")]
        scheme: String,
    },
    /// Remove a user (its mailbox stays).
    Del {
        /// The user.
        name: String,
    },
    /// List the users, one a line.
    List,
}

/// Runs `command` on the users file of `config`.
pub fn run(config: &Config, command: UserCommand) -> anyhow::Result<ExitCode> {
    let Some(path) = &config.users_file else {
        bail!("no users file: set users_file in the [auth] section");
    };
    let origin = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {origin}")),
    };
    let new = match command {
        UserCommand::List => {
            let db = UserDb::parse(&text, &origin)?;
            let mut out = String::new();
            for user in db.iter() {
                out.push_str(&user.full_name());
                out.push('\n');
            }
            std::io::stdout()
                .write_all(out.as_bytes())
                .context("cannot write to stdout")?;
            return Ok(ExitCode::SUCCESS);
        }
        UserCommand::Add { name, scheme, .. } => {
            let field = hash(&scheme)?;
            edit::add(&text, &name, &field, &origin)?
        }
        UserCommand::Passwd { name, scheme, .. } => {
            let field = hash(&scheme)?;
            edit::set_password(&text, &name, &field, &origin)?
        }
        UserCommand::Del { name } => edit::remove(&text, &name, &origin)?,
    };
    write(path, &new)?;
    Ok(tell_the_server(config, &origin))
}

/// Asks a running server to re-read the users file just written, and says
/// what came of it. No server running is no error: it reads the file when
/// it starts.
fn tell_the_server(config: &Config, origin: &str) -> ExitCode {
    let timeout = std::time::Duration::from_secs(60);
    match crate::control::request(&config.main.queue_directory, "users", timeout) {
        Ok(Ok(count)) => {
            let count = count.trim();
            eprintln!("postern: the running server re-read {origin}: {count} users");
            ExitCode::SUCCESS
        }
        Ok(Err(message)) => {
            eprintln!(
                "postern: {origin} is written, but the running server keeps the users it had:"
            );
            for line in message.lines() {
                eprintln!("postern: {line}");
            }
            ExitCode::FAILURE
        }
        Err(crate::control::ClientError::NotRunning { .. }) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "postern: {origin} is written; run `postern reload` to put it in force ({e})"
            );
            ExitCode::FAILURE
        }
    }
}

/// The password from stdin's first line, hashed with `scheme`.
fn hash(scheme: &str) -> anyhow::Result<String> {
    let Some(scheme) = Scheme::from_name(scheme) else {
        bail!(
            "unknown password scheme {scheme:?} (expected ARGON2ID, SHA512-CRYPT, BLF-CRYPT or PLAIN)"
        );
    };
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("empty password: give it on stdin");
    }
    Ok(scheme.hash(password)?)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    // Password hashes: readable by the owner only, as Dovecot advises.
    crate::tls::write_atomic(path, text.as_bytes(), 0o600)
}
