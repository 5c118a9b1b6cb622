//! The control socket: how the command line talks to the running daemon
//! (DESIGN §5), as Postfix's `postfix reload` talks to `master` and
//! `postqueue` to the queue manager through sockets under the queue
//! directory.
//!
//! A unix stream socket at `$queue_directory/private/control`, mode 0600 in
//! a 0700 directory: only the mail system's own user (and root) may ask.
//! One command per connection, a line protocol a human can type with
//! `socat`:
//!
//! ```text
//! client: reload\n              client: plugins\n
//! server: ok\n                  server: ok\n
//!         PARAM = NEW (was OLD)\n        NAME calls=N failures=N p50_us=N p99_us=N verdicts=KIND:N,...\n
//!         ...(closes)                   ...(closes)
//! ```
//!
//! After a reload's `ok`, one line per changed main.cf parameter the
//! reload could not apply, which takes effect at the next start
//! ([`Running::restart_needed`]).
//!
//! A failure answers `error\n` and then the whole message, every line of
//! it. Commands: `reload` (the daemon re-reads its config, tables, plugins,
//! every SMTP service's restriction lists and settings, aliases, TLS
//! certificate, users file and routes of delivery, compiles off the async
//! workers, and swaps them in only if all of them load; see
//! [`Live::reload`]), `users` (the daemon re-reads the users file of the
//! config in force, and nothing else, answering `ok` and the number of
//! users; what `postern user add|passwd|del` sends; [`Live::reload_users`]),
//! `plugins`
//! (the live counters of the running snapshot's plugins) and `status`
//! (what `postern status` prints; [`crate::status`]).
//!
//! What this does not do: authenticate beyond the file mode, or stream;
//! every answer is small and the connection ends with it. What every
//! local user may ask (Postfix's public showq, flush and pickup: the
//! mailq listing, a queue run, a local submission) goes over the separate
//! `$queue_directory/public/pickup` socket
//! ([`postern_queue::pickup`], [`crate::queue_cli`]), so that this one
//! stays the owner's.
//!
//! This file is the daemon's socket; beside it, `live.rs` holds the
//! reloadable state a `reload` swaps ([`Live`]), `running.rs` the config
//! in force and what a reload cannot apply of a new one ([`Running`]), `client.rs` the command
//! line's side ([`request`], `postern reload`), and `stats.rs` the lines
//! of the `plugins` answer ([`LiveStats`]).

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

mod client;
mod live;
mod running;
mod stats;

pub use client::{ClientError, reload_command, request};
pub use live::Live;
pub use running::Running;
pub use stats::LiveStats;

/// The longest command line accepted: the commands are single words.
const MAX_COMMAND: u64 = 256;

/// How long a client may take to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the control socket of the daemon using `queue_directory` lives.
pub fn socket_path(queue_directory: &Path) -> PathBuf {
    queue_directory.join("private/control")
}

/// Binds the control socket of `queue_directory`, replacing a stale one
/// left by a daemon that did not shut down.
pub fn bind(queue_directory: &Path) -> io::Result<UnixListener> {
    let path = socket_path(queue_directory);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers commands on `listener` until `shutdown`, one task per
/// connection, then removes the socket.
pub async fn serve(listener: UnixListener, live: Arc<Live>, mut shutdown: watch::Receiver<bool>) {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, live.clone()));
                }
                Err(e) => {
                    tracing::warn!(target: "postern/master", "control socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}

/// Reads one command and answers it.
async fn answer(stream: UnixStream, live: Arc<Live>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_COMMAND));
    let got = tokio::time::timeout(COMMAND_TIMEOUT, reader.read_line(&mut line)).await;
    let reply = match got {
        Ok(Ok(_)) if line.ends_with('\n') => match line.trim() {
            "reload" => {
                let live = live.clone();
                match tokio::task::spawn_blocking(move || live.reload()).await {
                    // What the reload could not apply, one line each.
                    Ok(Ok(restart)) => restart
                        .iter()
                        .fold("ok\n".to_owned(), |out, line| format!("{out}{line}\n")),
                    Ok(Err(e)) => {
                        tracing::warn!(target: "postern/master", "reload failed, keeping the running policy: {e:#}");
                        format!("error\n{e:#}\n")
                    }
                    Err(e) => format!("error\nthe reload task failed: {e}\n"),
                }
            }
            "users" => {
                let live = live.clone();
                match tokio::task::spawn_blocking(move || live.reload_users()).await {
                    Ok(Ok(count)) => format!("ok\n{count}\n"),
                    Ok(Err(e)) => {
                        tracing::warn!(target: "postern/master", "users file not re-read, keeping the users in force: {e:#}");
                        format!("error\n{e:#}\n")
                    }
                    Err(e) => format!("error\nthe users task failed: {e}\n"),
                }
            }
            "plugins" => format!("ok\n{}", live.plugins()),
            "status" => {
                let live = live.clone();
                // Counting queue files reads directories: off the workers.
                match tokio::task::spawn_blocking(move || live.facts.render()).await {
                    Ok(text) => format!("ok\n{text}"),
                    Err(e) => format!("error\nthe status task failed: {e}\n"),
                }
            }
            other => format!(
                "error\nunknown command {:?} (expected reload, users, plugins or status)\n",
                other.chars().take(40).collect::<String>()
            ),
        },
        Ok(Ok(_)) => "error\nexpected one command line of at most 256 bytes\n".to_owned(),
        Ok(Err(e)) => format!("error\n{e}\n"),
        Err(_) => "error\nno command within 10 s\n".to_owned(),
    };
    let _ = write.write_all(reply.as_bytes()).await;
    let _ = write.shutdown().await;
}
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_for_the_owner_only_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        drop(bind(dir.path()).unwrap());
        let _listener = bind(dir.path()).unwrap();
        let path = socket_path(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o700);
    }
}
