//! The harness: a `postern` server in a temporary directory, a line-level
//! SMTP client, and bounded waits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        std::fs::write(tmp.path().join("users"), USERS).unwrap();
        std::fs::write(
            tmp.path().join("postern.toml"),
            config_text(tmp.path(), extra),
        )
        .unwrap();
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
        let mut child = Command::new(POSTERN)
            .args(["start", "--foreground", "--config"])
            .arg(dir.join("postern.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn postern");
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

/// The messages in a Maildir `new/`, sorted by name.
pub fn messages(new: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(new) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
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

/// A line-level SMTP client over a plain socket, for byte-exact tests.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects from 127.0.0.1 (trusted in the test config).
    pub fn connect(server: SocketAddr) -> Client {
        Client::connect_from(server, "127.0.0.1")
    }

    /// Connects from a chosen loopback source address (127.0.0.2 is
    /// outside the test mynetworks).
    pub fn connect_from(server: SocketAddr, source: &str) -> Client {
        let stream = bind_connect(server, source);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Client {
            stream,
            buf: Vec::new(),
        };
        let greeting = c.reply();
        assert!(greeting.starts_with("220 "), "greeting: {greeting}");
        c
    }

    /// Connects from `source` without reading the greeting (which may be
    /// a refusal, or may not come at all).
    pub fn connect_raw(server: SocketAddr, source: &str) -> Client {
        let stream = bind_connect(server, source);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sets how long a read may wait (reads give an empty reply after).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a command line and returns the whole reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Reads one complete (possibly multi-line) reply; empty on EOF.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return out;
            }
            out.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return out;
            }
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    return String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads everything until the server closes the connection.
    pub fn rest(&mut self) -> String {
        let mut out = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
        let mut all = Vec::new();
        let _ = self.stream.read_to_end(&mut all);
        out.push_str(&String::from_utf8_lossy(&all));
        out
    }
}

fn bind_connect(server: SocketAddr, source: &str) -> TcpStream {
    // std has no bind-before-connect; a tokio TcpSocket does it, driven by
    // a throwaway current-thread runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source: std::net::IpAddr = source.parse().unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let stream = tokio::time::timeout(WAIT, socket.connect(server))
            .await
            .unwrap()
            .unwrap();
        stream.into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Runs a Python 3 script with `args`; returns stdout, panics with stderr
/// on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `postern check` on the config file `config`: whether it passed,
/// and its stderr.
pub fn postern_check(config: &Path) -> (bool, String) {
    let out = Command::new(POSTERN)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A transaction from `from` to `rcpts` with `body` (already CRLF, not
/// dot-stuffed: this stuffs it), returning the final reply.
pub fn send_message(c: &mut Client, from: &str, rcpts: &[&str], body: &str) -> String {
    let r = c.cmd("EHLO client.test.example");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    assert!(r.starts_with("250"), "{r}");
    for rcpt in rcpts {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(r.starts_with("250"), "{r}");
    }
    let r = c.cmd("DATA");
    assert!(r.starts_with("354"), "{r}");
    let mut stuffed = String::new();
    for line in body.split_inclusive("\r\n") {
        if line.starts_with('.') {
            stuffed.push('.');
        }
        stuffed.push_str(line);
    }
    c.send(stuffed.as_bytes());
    c.send(b".\r\n");
    c.reply()
}
