//! The command line's side of the control socket: [`request`] sends one
//! command and reads the answer, [`reload_command`] is `postern reload`.
//! Apart from the daemon's side because it runs in another process.

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::socket_path;
use crate::config::Config;

/// Why the command line got no answer from a daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket: no daemon runs for this queue
    /// directory (or it is too old to have a control socket).
    #[error("the mail system is not running (no control socket at {}: {source})", path.display())]
    NotRunning {
        /// The socket path tried.
        path: PathBuf,
        /// Why the connection failed.
        source: io::Error,
    },
    /// The daemon accepted but the exchange failed or timed out.
    #[error("control socket {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The daemon answered something other than `ok` or `error`.
    #[error("control socket {}: unexpected answer {answer:?}", path.display())]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// The first line of the answer.
        answer: String,
    },
}

/// Sends `command` to the daemon of `queue_directory` and waits up to
/// `timeout` for its answer: `Ok(Ok(body))` for `ok`, `Ok(Err(message))`
/// for `error`.
pub fn request(
    queue_directory: &Path,
    command: &str,
    timeout: Duration,
) -> Result<Result<String, String>, ClientError> {
    let path = socket_path(queue_directory);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|source| {
        ClientError::NotRunning {
            path: path.clone(),
            source,
        }
    })?;
    let io = |source| ClientError::Io {
        path: path.clone(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(io)?;
    let mut answer = String::new();
    // The answers are small; a daemon gone mad cannot fill memory.
    stream
        .take(16 << 20)
        .read_to_string(&mut answer)
        .map_err(io)?;
    let (status, body) = answer.split_once('\n').unwrap_or((answer.as_str(), ""));
    match status {
        "ok" => Ok(Ok(body.to_owned())),
        "error" => Ok(Err(body.trim_end().to_owned())),
        other => Err(ClientError::Protocol {
            path: path.clone(),
            answer: other.chars().take(80).collect(),
        }),
    }
}
/// `postern reload`: asks the daemon to reload and prints why it did not.
pub fn reload_command(config: &Config) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    // Compiling changed plugins takes seconds in a debug build.
    match request(
        &config.main.queue_directory,
        "reload",
        Duration::from_secs(300),
    ) {
        Ok(Ok(restart)) => {
            eprintln!("postern: refreshing the mail system");
            for line in restart.lines().filter(|l| !l.is_empty()) {
                eprintln!("postern: warning: {line}: takes effect at the next start");
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(message)) => {
            eprintln!("postern: reload failed, the running configuration is kept:");
            for line in message.lines() {
                eprintln!("postern: {line}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e @ ClientError::NotRunning { .. }) => {
            eprintln!("postern: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("cannot ask the server to reload"),
    }
}
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn no_daemon_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let e = request(dir.path(), "plugins", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ClientError::NotRunning { .. }), "{e}");
        assert!(e.to_string().contains("not running"), "{e}");
    }
}
