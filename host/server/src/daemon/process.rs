//! The commands that act on the daemon from outside, through its pid file
//! and signals: `postern start` without `--foreground`, `stop`, `abort`
//! and `status`. Apart because they run in the CLI's process, not the
//! daemon's.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::{STOP_GRACE, pid_file};
use crate::config::Config;

/// `postern start` without `--foreground`: runs this binary again in the
/// foreground in its own process group, logging to
/// `$data_directory/postern.log`, and waits until it serves or fails.
pub fn detach(config: &Config, path: Option<&Path>) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let log_path = config.main.data_directory.join("postern.log");
    std::fs::create_dir_all(&config.main.data_directory)
        .with_context(|| format!("cannot create {}", config.main.data_directory.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let pid_path = pid_file(config);
    let _ = std::fs::remove_file(&pid_path);
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["start", "--foreground"]);
    if let Some(p) = path {
        cmd.arg("--config").arg(p);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the server process")?;
    for _ in 0..200 {
        if let Some(status) = child.try_wait()? {
            eprintln!(
                "postern: the server exited ({status}); see {}",
                log_path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        if pid_path.exists() {
            eprintln!(
                "postern: started, pid {}, logging to {}",
                child.id(),
                log_path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "postern: the server has not started after 10 s; see {}",
        log_path.display()
    );
    Ok(ExitCode::FAILURE)
}

fn running_pid(config: &Config) -> Option<rustix::process::Pid> {
    let text = std::fs::read_to_string(pid_file(config)).ok()?;
    let pid = rustix::process::Pid::from_raw(text.trim().parse().ok()?)?;
    rustix::process::test_kill_process(pid).ok().map(|()| pid)
}

/// `postern stop`: SIGTERM, then wait (bounded) until the server is gone.
/// The server stops accepting, lets sessions finish their transaction
/// (up to [`STOP_GRACE`]) and the delivery loop its attempts (10 s).
pub fn stop(config: &Config) -> anyhow::Result<ExitCode> {
    signal_and_wait(
        config,
        rustix::process::Signal::TERM,
        STOP_GRACE + Duration::from_secs(20),
    )
}

/// `postern abort`: SIGQUIT, and the server exits at once, cutting
/// sessions and deliveries short (nothing acknowledged is lost: it is on
/// disk, and a delivery cut short is tried again).
pub fn abort(config: &Config) -> anyhow::Result<ExitCode> {
    signal_and_wait(
        config,
        rustix::process::Signal::QUIT,
        Duration::from_secs(10),
    )
}

fn signal_and_wait(
    config: &Config,
    signal: rustix::process::Signal,
    bound: Duration,
) -> anyhow::Result<ExitCode> {
    let Some(pid) = running_pid(config) else {
        eprintln!("postern: the mail system is not running");
        return Ok(ExitCode::FAILURE);
    };
    rustix::process::kill_process(pid, signal).context("cannot signal the server")?;
    eprintln!("postern: stopping the mail system");
    let start = std::time::Instant::now();
    let pid_path = pid_file(config);
    while start.elapsed() < bound {
        // The server removes its pid file last thing before it exits (a
        // process that is gone but not yet reaped still answers kill 0).
        if rustix::process::test_kill_process(pid).is_err() || !pid_path.exists() {
            eprintln!(
                "postern: the mail system is stopped ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "postern: the server (pid {}) did not stop within {} s",
        pid.as_raw_nonzero(),
        bound.as_secs()
    );
    Ok(ExitCode::FAILURE)
}

/// `postern status`: Postfix's line on stderr, then what the daemon says
/// of itself on stdout ([`crate::status`]): listeners, uptime, queue
/// sizes, plugin set digest, last reload.
#[allow(clippy::print_stdout, reason = "the command answers on stdout")]
pub fn status(config: &Config) -> anyhow::Result<ExitCode> {
    match running_pid(config) {
        Some(pid) => {
            eprintln!(
                "postern: the mail system is running: PID: {}",
                pid.as_raw_nonzero()
            );
            match crate::control::request(
                &config.main.queue_directory,
                "status",
                Duration::from_secs(10),
            ) {
                Ok(Ok(text)) => print!("{text}"),
                Ok(Err(e)) => eprintln!("postern: the daemon gave no status: {e}"),
                Err(e) => eprintln!("postern: no details: {e}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("postern: the mail system is not running");
            Ok(ExitCode::FAILURE)
        }
    }
}
