//! The harness: a `postern` server in a temporary directory with the
//! test config, bounded waits, and (re-exported from its two parts) an
//! SMTP client and the commands tests run.
//!
//! # Layout
//! - this file: the test config, [`Server`] and [`Process`], waits for
//!   delivered messages and files;
//! - `client`: [`Client`], the transactions tests repeat, loopback ports;
//! - `commands`: `postern check`/`reload`/`flush`/any command on a config,
//!   Python scripts, programs fed on stdin.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod client;
mod commands;

pub use client::*;
pub use commands::*;

/// The binary under test.
pub const POSTERN: &str = env!("CARGO_BIN_EXE_postern");

/// How long any single wait may take before the test fails: generous,
/// because a loaded 2-core CI machine runs many servers at once; a
/// passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(60);

/// The users every test server knows.
pub const USERS: &str = "alice@example.org:{PLAIN}secret::::\nbob@example.org:{PLAIN}secret::::\n";

/// A compile cache shared by every test server: each plugin is compiled
/// once per machine rather than at every server start (seconds in a debug
/// build on a loaded machine). wasmtime's cache keys on the component's
/// bytes and the engine, and writes through a rename, so servers may
/// share it.
pub const SHARED_CACHE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/test-plugin-cache"
);

/// A test config: `mydestination` has example.org, `mynetworks` only
/// 127.0.0.1 (so 127.0.0.2 is an untrusted client), data under `dir`.
/// Run as root, the server stays root (`mail_owner = "root"`, warned
/// about) unless `extra` sets `mail_owner`: tests/all/privileges.rs does.
/// That line takes the place of `queue_directory`, whose default
/// (`$data_directory/queue`) is the same, so that the config lines tests
/// name in expected errors stay where they are.
pub fn config_text(dir: &Path, extra: &str) -> String {
    let d = dir.display();
    let queue_or_owner = if extra.contains("mail_owner") {
        format!("queue_directory = \"{d}/queue\"")
    } else {
        "mail_owner = \"root\"".to_owned()
    };
    format!(
        "plugin_cache_directory = \"{SHARED_CACHE}\"\n\
         myhostname = \"mx.test.example\"\n\
         mydestination = \"$myhostname, localhost, example.org\"\n\
         mynetworks = \"127.0.0.1/32\"\n\
         data_directory = \"{d}\"\n\
         {queue_or_owner}\n\
         virtual_mailbox_base = \"{d}/mail\"\n\
         message_size_limit = 100000\n\
         {extra}\n\
         [auth]\n\
         users_file = \"{d}/users\"\n\
         [[service]]\n\
         name = \"smtp\"\n\
         listen = \"127.0.0.1:0\"\n"
    )
}

/// Writes the test config with `extra` ([`config_text`]) to
/// `dir/postern.toml`, and the test users beside it; the config's path.
pub fn test_config(dir: &Path, extra: &str) -> PathBuf {
    std::fs::write(dir.join("users"), USERS).unwrap();
    let config = dir.join("postern.toml");
    std::fs::write(&config, config_text(dir, extra)).unwrap();
    config
}

/// The command that runs the server on `config` in the foreground, its
/// log on a piped stderr; callers add to it (an environment, another
/// stderr) before they spawn it.
pub fn foreground(config: &Path) -> Command {
    let mut command = Command::new(POSTERN);
    command
        .args(["start", "--foreground", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A running server; killed (SIGKILL) when dropped.
pub struct Server {
    pub dir: PathBuf,
    pub smtp: SocketAddr,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a server in a fresh temporary directory with the test config
    /// plus `extra` main.cf lines.
    pub fn start(extra: &str) -> (Server, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        test_config(tmp.path(), extra);
        let server = Server::start_in(tmp.path());
        (server, tmp)
    }

    /// Starts a server on the config already in `dir/postern.toml`
    /// (given `mail_owner = "root"` at the top when it names no
    /// `mail_owner`, as [`config_text`] does).
    pub fn start_in(dir: &Path) -> Server {
        let file = dir.join("postern.toml");
        if let Ok(text) = std::fs::read_to_string(&file)
            && !text.contains("mail_owner")
        {
            std::fs::write(&file, format!("mail_owner = \"root\"\n{text}")).unwrap();
        }
        Server::spawn(dir, foreground(&file))
    }

    /// Runs `command` (a [`foreground`] one, with whatever a test added
    /// to it, e.g. an environment) as the server of `dir`, and waits
    /// until it listens on smtp.
    pub fn spawn(dir: &Path, mut command: Command) -> Server {
        let mut child = command.spawn().expect("spawn postern");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on smtp ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(WAIT) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log:\n{}", log.lock().unwrap());
            }
        };
        Server {
            dir: dir.to_owned(),
            smtp: addr.parse().unwrap(),
            child,
            log,
        }
    }

    /// Where `service` listens, from its `listening on` line.
    pub fn listening(&self, service: &str) -> SocketAddr {
        let log = self.wait_log(&format!("listening on {service} "));
        listening_in(&log, service).unwrap()
    }

    /// Waits until the server exits (as a test that kills it from inside
    /// expects); how it ended.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// The server's process id (for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < WAIT,
                "log never showed {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle` `n` times, and returns it.
    pub fn wait_log_count(&self, needle: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.matches(needle).count() >= n {
                return log;
            }
            assert!(
                start.elapsed() < WAIT,
                "log never showed {needle:?} {n} times:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The Maildir/new of a user at example.org.
    pub fn new_dir(&self, user: &str) -> PathBuf {
        self.dir
            .join("mail/example.org")
            .join(user)
            .join("Maildir/new")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `service` listens, from the first `listening on` line in `log`
/// (a server's stderr, a log file, syslog).
pub fn listening_in(log: &str, service: &str) -> Option<SocketAddr> {
    let needle = format!("listening on {service} ");
    let line = log.lines().find_map(|l| l.split(&needle).nth(1))?;
    line.trim().parse().ok()
}

/// A `postern` process where [`Server`] does not fit: its log goes to
/// syslog or a file rather than stderr, or it is meant to stop at
/// start-up. Killed (SIGKILL) when dropped.
pub struct Process(pub Child);

impl Process {
    /// Starts the server on `dir/postern.toml` ([`foreground`]).
    pub fn start(dir: &Path) -> Process {
        Process(foreground(&dir.join("postern.toml")).spawn().unwrap())
    }

    /// Kills the server (if it still runs) and returns what it wrote on
    /// stderr.
    pub fn stderr(mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut text = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The messages in a Maildir `new/`, sorted by name.
pub fn messages(new: &Path) -> Vec<Vec<u8>> {
    let paths = message_files(new);
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The files in a Maildir `new/` (or `cur/`), sorted by name.
pub fn message_files(new: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(new) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    paths
}

/// Waits until `new` holds `n` messages, then a moment more to see that
/// no extra one arrives.
pub fn wait_messages(new: &Path, n: usize) -> Vec<Vec<u8>> {
    let start = Instant::now();
    while messages(new).len() < n {
        assert!(
            start.elapsed() < WAIT,
            "only {} of {n} messages arrived in {}",
            messages(new).len(),
            new.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let m = messages(new);
    assert_eq!(
        m.len(),
        n,
        "more messages than expected in {}",
        new.display()
    );
    m
}

/// Waits until a delivery wrote the file at `path` (a command's output,
/// a file alias) up to a final newline, then a moment more for a second
/// write; its text.
pub fn wait_file(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            std::thread::sleep(Duration::from_millis(100));
            return std::fs::read_to_string(path).unwrap();
        }
        assert!(start.elapsed() < WAIT, "{} never written", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}
