//! POP3 and IMAP as the mailbox's owner after the privilege drop
//! (Dovecot's process per login): started as root with `mail_owner` a
//! test user, the daemon checks a system account's password, then hands
//! the login to a `postern mail-session` process the root helper starts
//! as the account, and relays the bytes. Python's poplib and imaplib read,
//! delete, flag, expunge and append as ever; the session process is a
//! child of the helper running as the account's uid (no supplementary
//! group, no root ids left) and is gone after QUIT or LOGOUT; a second
//! POP3 login to the same mailbox gets `-ERR [IN-USE]` (the lock is an
//! flock in the Maildir, seen across processes); every file in the
//! Maildir stays the account's. pop3s and imaps keep their TLS in the
//! daemon; a killed session process ends its client's connection with an
//! error reply and releases the lock; `postern stop` says BYE through the
//! session processes; with one session slot a second client waits, with
//! no process, until the first session ends. Needs root (useradd, chown):
//! skipped with a message otherwise. The helper's refusal of forged
//! session requests (uid 0, a Maildir outside the home, no socket, not a
//! socket) is unit-tested in host/privsep.

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub(crate) use crate::privileges::skip_unless_root;
use crate::privileges::{accounts, helper_pid, mail_to, system_config};
use crate::support::*;
use crate::system_accounts::{Account, tree};

/// Where `service` listens, from its `listening on` line wherever the
/// log goes: the port.
fn port(server: &Running, service: &str) -> String {
    let log = server.wait_log(&format!("listening on {service} "));
    let addr = listening_in(&log, service).unwrap();
    addr.port().to_string()
}

/// The Python clients, one function a test, with what they share (the
/// logins, the helper's children from /proc).
const CLIENTS: &str = include_str!("privileges_mail.py");

/// The account's password.
const PASSWORD: &str = "Session-Test-1";

/// The server, and where the test reads its log.
pub(crate) enum Running {
    /// Its stderr (the default `log_output`).
    Stderr(Server),
    /// The file `maillog_file` names.
    File(Process, PathBuf),
    /// A test-owned syslog socket (`log_output = "syslog"`), and what it
    /// received so far.
    Syslog(Process, UnixDatagram, Mutex<String>),
}

impl Running {
    /// Everything logged where the test reads the log.
    pub(crate) fn log(&self) -> String {
        match self {
            Running::Stderr(server) => server.log(),
            Running::File(_, path) => std::fs::read_to_string(path).unwrap_or_default(),
            Running::Syslog(_, socket, got) => {
                let mut got = got.lock().unwrap();
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = socket.recv(&mut buf) {
                    got.push_str(&String::from_utf8_lossy(&buf[..n]));
                    got.push('\n');
                }
                got.clone()
            }
        }
    }

    /// Waits until the log contains `needle`; the log then.
    pub(crate) fn wait_log(&self, needle: &str) -> String {
        if let Running::Stderr(server) = self {
            return server.wait_log(needle);
        }
        let start = std::time::Instant::now();
        while start.elapsed() < WAIT {
            match self.log() {
                log if log.contains(needle) => return log,
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        panic!("log never showed {needle:?}:\n{}", self.log())
    }

    /// The server's pid.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Running::Stderr(s) => s.pid(),
            Running::File(p, _) | Running::Syslog(p, _, _) => p.0.id(),
        }
    }
}

/// A root start with `mail_owner` a new account, pop3, imap, pop3s and
/// imaps services, and a system account with a password and two messages
/// in its Maildir.
pub(crate) struct Setup {
    pub(crate) server: Running,
    pub(crate) user: Account,
    pop: String,
    imap: String,
    pop3s: String,
    imaps: String,
    helper: String,
    pub(crate) maildir: PathBuf,
    // Dropped last: the accounts, then their homes.
    _owner: Account,
    pub(crate) tmp: tempfile::TempDir,
}

fn start() -> Setup {
    start_with("")
}

/// [`start`] with `extra` main.cf lines, logging to stderr.
fn start_with(extra: &str) -> Setup {
    start_logging(extra, |dir| Running::Stderr(Server::start_in(dir)))
}

/// [`start`] with `extra` main.cf lines (which may send the log
/// elsewhere; `{dir}` in them is the test's directory), the server
/// started by `run` in that directory.
pub(crate) fn start_logging(extra: &str, run: impl FnOnce(&Path) -> Running) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let extra = extra.replace("{dir}", &dir.display().to_string());
    let (owner, user) = accounts(dir, PASSWORD);
    let main = format!(
        "mail_owner = \"{}\"\n\
         local_recipient_maps = \"unix:passwd.byname\"\n\
         auth_failure_delay = \"0s\"\n{extra}",
        owner.name
    );
    system_config(dir, &main, &["pop3", "imap", "pop3s", "imaps"]);
    let server = run(dir);
    let log = server.wait_log("running as mail_owner");
    let helper = helper_pid(&log);
    let (pop, imap) = (port(&server, "pop3"), port(&server, "imap"));
    let (pop3s, imaps) = (port(&server, "pop3s"), port(&server, "imaps"));
    let smtp: u16 = port(&server, "smtp").parse().unwrap();
    for subject in ["first", "second"] {
        mail_to(([127, 0, 0, 1], smtp).into(), &user, subject);
    }
    let maildir = dir.join("home/Maildir");
    wait_messages(&maildir.join("new"), 2);
    Setup {
        server,
        user,
        pop,
        imap,
        pop3s,
        imaps,
        helper,
        maildir,
        _owner: owner,
        tmp,
    }
}

impl Setup {
    /// The arguments of the Python client `scenario` (one of
    /// privileges_mail.py's functions).
    fn args<'a>(&'a self, scenario: &'a str) -> [&'a str; 8] {
        [
            scenario,
            &self.pop,
            &self.imap,
            &self.pop3s,
            &self.imaps,
            &self.user.name,
            PASSWORD,
            &self.helper,
        ]
    }

    /// Runs the Python client `scenario` to its end; what it printed.
    pub(crate) fn run(&self, scenario: &str) -> String {
        python(CLIENTS, &self.args(scenario))
    }
}

/// The value of `key` in `out`, the `key value` lines a client printed
/// (`log` for the message when there is none).
pub(crate) fn field(out: &str, key: &str, log: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} in\n{out}\nlog:\n{log}"))
        .to_owned()
}

/// The whole conversation (privileges_mail.py's `clients`), with a look at
/// the helper's children (their `Uid:`, `Gid:` and `Groups:` lines, whether
/// they are session processes) while each session is open and after it
/// ended.
#[test]
fn pop3_and_imap_run_as_the_mailbox_owner_after_the_drop() {
    if skip_unless_root() {
        return;
    }
    // Fields drop in their order: the server before the accounts.
    let setup = start();
    let (server, user) = (&setup.server, &setup.user);
    let out = setup.run("clients");
    let log = server.log();
    // Real, effective, saved and file system ids the account's; no
    // supplementary group at all (std's Command drops them before setuid).
    let session = format!(
        "['uid={0} {0} {0} {0} gid={1} {1} {1} {1} groups= session=True']",
        user.uid, user.gid
    );
    let is_session = |line: &str| line == session;
    let field = |key: &str| field(&out, key, &log);
    assert_eq!(field("pop-stat"), "2", "{out}\n{log}");
    assert!(is_session(&field("pop-children")), "{out}");
    assert!(field("second").starts_with("-ERR [IN-USE]"), "{out}");
    assert_eq!(field("pop-retr"), "Subject: first", "{out}");
    assert!(field("pop-quit").starts_with("+OK"), "{out}");
    assert_eq!(field("pop-after"), "gone", "{out}");
    // The message is really gone.
    assert_eq!(field("pop-stat-again"), "1", "{out}");
    assert_eq!(field("imap-login"), "OK True", "{out}");
    assert!(is_session(&field("imap-children")), "{out}");
    assert_eq!(field("imap-exists"), "1", "{out}");
    assert_eq!(field("imap-fetch"), "Subject: second", "{out}");
    assert_eq!(field("imap-expunge"), "[b'1']", "{out}");
    assert_eq!(field("imap-append"), "OK", "{out}");
    assert_eq!(field("imap-exists-after"), "1", "{out}");
    assert_eq!(field("imap-logout"), "BYE", "{out}");
    assert_eq!(field("imap-after"), "gone", "{out}");

    // The sessions' log lines name the session process, not the daemon.
    let login = format!("Login: user=<{}>, method=PLAIN", user.name);
    assert!(log.contains(&login), "{log}");
    let mpids: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&login))
        .filter_map(|l| l.split("mpid=").nth(1))
        .map(|rest| rest.split(',').next().unwrap_or(rest).trim())
        .collect();
    assert_eq!(mpids.len(), 3, "{log}");
    let daemon = server.pid().to_string();
    assert!(
        !mpids.contains(&daemon.as_str()),
        "a session ran in the daemon:\n{log}"
    );
    assert!(!log.contains("refused a request"), "{log}");
    // Everything the sessions made is the account's.
    for path in tree(&setup.maildir) {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid), "{path:?}");
    }
}

/// Kills the session process of an open POP3 session, then of an open
/// IMAP session: each client is told of an internal error (`-ERR`, `*
/// BYE`) as its connection ends, and the next login works (the POP3 lock
/// went with the dead process).
#[test]
fn a_killed_session_process_ends_its_connection_and_the_next_login_works() {
    if skip_unless_root() {
        return;
    }
    let setup = start();
    let out = setup.run("killed");
    let log = setup.server.log();
    assert_eq!(
        out,
        "pop-after-kill -ERR [SYS/TEMP] Internal error occurred.\npop-again 2\n\
         imap-after-kill True\nimap-again 2\n",
        "{log}"
    );
}

/// pop3s and imaps: the daemon keeps the TLS and relays the plaintext.
#[test]
fn pop3s_and_imaps_sessions_are_relayed_from_the_tls_daemon() {
    if skip_unless_root() {
        return;
    }
    let setup = start();
    let out = setup.run("tls");
    let log = setup.server.log();
    assert_eq!(out, "pop3s 2 +OK Logging out.\nimaps 2 BYE\n", "{log}");
    // The session processes know the client's connection is TLS.
    let login = format!("Login: user=<{}>, method=PLAIN", setup.user.name);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&login)).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines.iter().all(|l| l.contains(", TLS")), "{log}");
}

/// Open sessions when the server stops: told as in the daemon.
#[test]
fn a_stop_says_bye_through_the_session_processes() {
    use std::io::BufRead;
    if skip_unless_root() {
        return;
    }
    let setup = start();
    let mut script = Command::new("python3")
        .arg("-c")
        .arg(CLIENTS)
        .args(setup.args("at_stop"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(script.stdout.take().unwrap());
    let mut said = String::new();
    while !said.ends_with("ready\n") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{said}");
        said.push_str(&line);
    }
    assert_eq!(said, "select OK\ndele +OK Marked to be deleted.\nready\n");
    let stop = postern_run(&setup.tmp.path().join("postern.toml"), &["stop"]);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(script.wait().unwrap().success(), "{said}{rest}");
    assert!(stop.status.success(), "{stop:?}");
    assert_eq!(
        rest,
        "imap * BYE Server shutting down.\nimap-closed True\n\
         pop3 -ERR [SYS/TEMP] Server shutting down.\npop3-closed True\n",
        "{}",
        setup.server.log()
    );
    // No QUIT, no UPDATE: the marked message stays (in cur/ since the
    // SELECT).
    let count = |sub: &str| std::fs::read_dir(setup.maildir.join(sub)).unwrap().count();
    assert_eq!(count("new") + count("cur"), 2);
}

/// One pop3 session slot: a second client waits in the backlog, unserved
/// and without a process, until the first session ends.
#[test]
fn session_processes_stay_within_the_service_session_limit() {
    if skip_unless_root() {
        return;
    }
    let setup = start_with("default_process_limit = 1\n");
    let out = setup.run("limit");
    assert_eq!(
        out,
        "second waits\nprocesses 1\nsecond then +OK Postern ready.\n",
        "{}",
        setup.server.log()
    );
}
