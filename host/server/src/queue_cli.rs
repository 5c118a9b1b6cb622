//! `postern queue ...`, `postern flush` and `postern aliases`: Postfix's
//! newaliases, mailq, postcat -q,
//! postsuper and `postqueue -f`, working on the queue directory itself
//! (with the queue's own rename-based moves) so that they work whether or
//! not the daemon runs. After a release, requeue or flush they wake a
//! running daemon over `$queue_directory/public/qmgr`, so the message is
//! tried at once rather than at the next `queue_run_delay` scan.
//!
//! As Postfix's showq and flush are public services, `postern queue
//! list` and `postern flush` are every local user's: a user who may not
//! read the queue directory (anyone but root and the queue's owner) asks
//! the running daemon over its public socket (`public/pickup`, see
//! [`postern_queue::pickup`]), which answers with the listing or starts
//! a queue run and logs the caller's uid. `show`, `delete`, `hold`,
//! `release` and `requeue` stay root's (and the owner's), refused with
//! `EX_NOPERM` (77), as the control socket's `reload` stays behind mode
//! 0600.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use postern_mail::QueueId;
use postern_queue::pickup::{self, Request};
use postern_queue::{Queue, mailq, trigger};

use crate::config::Config;

/// What `postern queue` does; `list` when nothing is named.
#[derive(Debug, Clone, Subcommand)]
pub enum QueueCommand {
    /// List the queued messages in mailq format.
    List,
    /// Print one message: envelope, recipient states and content.
    Show {
        /// The queue id.
        id: String,
    },
    /// Delete a message (no bounce is sent), or ALL of them.
    Delete {
        /// The queue id, or ALL.
        id: String,
    },
    /// Put a message on hold, or ALL of them: not delivered until
    /// released.
    Hold {
        /// The queue id, or ALL.
        id: String,
    },
    /// Release a held message for delivery now, or ALL of them.
    Release {
        /// The queue id, or ALL.
        id: String,
    },
    /// Try a deferred message again now, or ALL of them.
    Requeue {
        /// The queue id, or ALL.
        id: String,
    },
}

/// sysexits(3): the daemon is not there to ask.
const EX_UNAVAILABLE: u8 = 69;
/// sysexits(3): not this user's to do.
const EX_NOPERM: u8 = 77;

/// Whether this user works on the queue files themselves: root and the
/// queue directory's owner (the mail system's user). Others go through
/// the daemon, for what it lets every user do.
pub(crate) fn owns_queue(dir: &Path) -> bool {
    let euid = rustix::process::geteuid().as_raw();
    // A queue not made yet: whoever makes it will own it.
    euid == 0 || std::fs::metadata(dir).map_or(true, |m| m.uid() == euid)
}

/// Runs a queue command against the queue directory of `config`.
pub fn run(config: &Config, command: Option<QueueCommand>) -> anyhow::Result<ExitCode> {
    let dir = &config.main.queue_directory;
    let command = command.unwrap_or(QueueCommand::List);
    if !owns_queue(dir) {
        return match command {
            QueueCommand::List => list_through_daemon(dir),
            other => {
                eprintln!(
                    "postern: fatal: `postern queue {}` is for root and the mail system's owner only; every user may run `postern queue list` and `postern flush`",
                    verb(&other)
                );
                Ok(ExitCode::from(EX_NOPERM))
            }
        };
    }
    let queue = Queue::attach(dir)?;
    let id_of = |id: &str| QueueId::parse(id).with_context(|| format!("{id:?} is not a queue id"));
    match command {
        QueueCommand::List => {
            let entries = queue.list()?;
            write_out(mailq::render_list(&entries).as_bytes())?;
        }
        QueueCommand::Show { id } => {
            let (q, message) = queue.read(&id_of(&id)?)?;
            write_out(&mailq::render_message(q, &message))?;
        }
        QueueCommand::Delete { id } if id == "ALL" => {
            let n = queue.delete_all()?;
            eprintln!("postern/postsuper: Deleted: {n} message{}", plural(n));
        }
        QueueCommand::Delete { id } => {
            queue.delete(&id_of(&id)?)?;
            eprintln!("postern/postsuper: {id}: removed");
            eprintln!("postern/postsuper: Deleted: 1 message");
        }
        QueueCommand::Hold { id } if id == "ALL" => {
            let n = queue.hold_all()?;
            eprintln!(
                "postern/postsuper: Placed on hold: {n} message{}",
                plural(n)
            );
        }
        QueueCommand::Release { id } if id == "ALL" => {
            let n = queue.release_all()?;
            eprintln!(
                "postern/postsuper: Released from hold: {n} message{}",
                plural(n)
            );
            wake(config, "release");
        }
        QueueCommand::Requeue { id } if id == "ALL" => {
            let n = queue.requeue_all()?;
            eprintln!("postern/postsuper: Requeued: {n} message{}", plural(n));
            wake(config, "requeue");
        }
        QueueCommand::Hold { id } => {
            queue.hold(&id_of(&id)?)?;
            eprintln!("postern/postsuper: {id}: placed on hold");
            eprintln!("postern/postsuper: Placed on hold: 1 message");
        }
        QueueCommand::Release { id } => {
            queue.release(&id_of(&id)?)?;
            eprintln!("postern/postsuper: {id}: released from hold");
            eprintln!("postern/postsuper: Released from hold: 1 message");
            wake(config, "release");
        }
        QueueCommand::Requeue { id } => {
            queue.requeue(&id_of(&id)?)?;
            eprintln!("postern/postsuper: {id}: requeued");
            eprintln!("postern/postsuper: Requeued: 1 message");
            wake(config, "requeue");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The listing from the running daemon, for a user who may not read the
/// queue: mailq's `postqueue: fatal: Queue report unavailable - mail
/// system is down` (exit 69) without one.
fn list_through_daemon(dir: &Path) -> anyhow::Result<ExitCode> {
    match pickup::ask(dir, Request::Mailq) {
        Ok(listing) => {
            write_out(&listing)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if pickup::unreachable(&e) => {
            eprintln!(
                "postern: fatal: queue report unavailable: the mail system is down, and only root may read {}",
                dir.display()
            );
            Ok(ExitCode::from(EX_UNAVAILABLE))
        }
        Err(e) => Err(e).context("cannot ask the mail system for the queue listing"),
    }
}

/// The command's word, for messages.
fn verb(command: &QueueCommand) -> &'static str {
    match command {
        QueueCommand::List => "list",
        QueueCommand::Show { .. } => "show",
        QueueCommand::Delete { .. } => "delete",
        QueueCommand::Hold { .. } => "hold",
        QueueCommand::Release { .. } => "release",
        QueueCommand::Requeue { .. } => "requeue",
    }
}

/// `postern flush`: every queued message is tried now by the running
/// daemon. Fails when no daemon listens, as `postqueue -f` does. A user
/// who does not own the queue asks over the public socket (the daemon
/// logs `flush requested by uid=N`).
pub fn flush(config: &Config) -> anyhow::Result<ExitCode> {
    let dir = &config.main.queue_directory;
    if !owns_queue(dir) {
        return match pickup::ask(dir, Request::Flush) {
            Ok(answer) if answer.starts_with(b"ok") => Ok(ExitCode::SUCCESS),
            Ok(answer) => {
                eprintln!(
                    "postern: fatal: the mail system answered {:?}",
                    String::from_utf8_lossy(&answer).trim_end()
                );
                Ok(ExitCode::FAILURE)
            }
            Err(e) if pickup::unreachable(&e) => {
                eprintln!("postern: fatal: the mail system is not running");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e).context("cannot ask the mail system for a queue run"),
        };
    }
    let reached = trigger::send(dir, "flush")
        .with_context(|| format!("cannot reach the queue manager under {}", dir.display()))?;
    if reached {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("postern: fatal: the mail system is not running");
        Ok(ExitCode::FAILURE)
    }
}

/// `postern aliases` (newaliases): reads every `alias_maps` file and
/// prints each problem as `file:line: what is wrong`. There is no
/// database to build: the server reads the files at start-up.
pub fn aliases(config: &Config) -> anyhow::Result<ExitCode> {
    let files = &config.main.alias_maps;
    if files.is_empty() {
        eprintln!("postern: alias_maps is empty; no aliases to check");
        return Ok(ExitCode::SUCCESS);
    }
    match postern_delivery::AliasMap::load(files) {
        Ok(map) => {
            for f in files {
                eprintln!("postern: {}: ok", f.display());
            }
            eprintln!("postern: {} aliases", map.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Tells a running daemon to look at the queue now; without one, the
/// next start picks the message up.
fn wake(config: &Config, word: &str) {
    match trigger::send(&config.main.queue_directory, word) {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "postern: the mail system is not running; the message waits for the next start"
        ),
        Err(e) => eprintln!("postern: warning: cannot wake the queue manager: {e}"),
    }
}

fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
