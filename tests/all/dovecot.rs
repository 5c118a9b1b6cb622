//! A running Dovecot (Debian's `dovecot-imapd` and `dovecot-pop3d`) beside
//! a test server: its own config in a temporary directory (nothing under
//! /etc is read or touched), IMAP and POP3 on loopback ephemeral ports, the
//! same users file and the same Maildir tree as Postern.
//!
//! Dovecot will not open a mailbox as root ("Mail access not allowed for
//! root"), so when the tests run as root its mail processes run as
//! `nobody`, and the tree they share is handed to `nobody` first
//! ([`Dovecot::hand_over`]); Postern, as root, still reads and writes it.
//! As an ordinary user everything runs as that user.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{WAIT, free_port};

const DOVECOT: &str = "/usr/sbin/dovecot";
const LDA: &str = "/usr/lib/dovecot/dovecot-lda";

/// Whether Dovecot is installed; a test without it says so and passes
/// (as `imap::mbsync_round_trip` does without mbsync).
pub fn installed() -> bool {
    let ok = Path::new(DOVECOT).exists();
    if !ok {
        eprintln!(
            "skipped: dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"
        );
    }
    ok
}

/// A Dovecot master in the foreground; stopped (SIGTERM, then SIGKILL)
/// when dropped.
pub struct Dovecot {
    pub imap: SocketAddr,
    pub pop3: SocketAddr,
    conf: PathBuf,
    log: PathBuf,
    child: Child,
    /// The uid and gid mail processes run as (`nobody` under root).
    owner: (u32, u32),
}

/// A user's name, uid and gid from /etc/passwd.
fn passwd_entry(pred: impl Fn(&str, u32) -> bool) -> Option<(String, u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let uid = f.get(2)?.parse().ok()?;
        let gid = f.get(3)?.parse().ok()?;
        pred(f[0], uid).then(|| (f[0].to_owned(), uid, gid))
    })
}

impl Dovecot {
    /// Starts Dovecot with `dir` for its config, sockets and log, `users`
    /// as passdb and userdb, and Maildirs at `mail_base/<domain>/<user>/Maildir`
    /// (Postern's `virtual_mailbox_base` layout).
    pub fn start(dir: &Path, users: &Path, mail_base: &Path) -> Dovecot {
        let mut last = String::new();
        for _ in 0..3 {
            match Dovecot::try_start(dir, users, mail_base) {
                Ok(d) => return d,
                Err(e) => last = e,
            }
        }
        panic!("dovecot did not start: {last}");
    }

    fn try_start(dir: &Path, users: &Path, mail_base: &Path) -> Result<Dovecot, String> {
        let root = rustix::process::geteuid().is_root();
        let me = rustix::process::geteuid().as_raw();
        let (internal, login, mail, owner) = if root {
            let (_, uid, gid) = passwd_entry(|n, _| n == "nobody").expect("a nobody user");
            // Dovecot's Debian package creates `dovecot` and `dovenull`.
            ("dovecot".to_owned(), "dovenull".to_owned(), uid, (uid, gid))
        } else {
            let (name, uid, gid) = passwd_entry(|_, u| u == me).expect("my passwd entry");
            (name.clone(), name, uid, (uid, gid))
        };
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let (imap, pop3) = (free_port(), free_port());
        let conf = dir.join("dovecot.conf");
        let log = dir.join("dovecot.log");
        let text = format!(
            "base_dir = {run}\n\
             state_dir = {run}/state\n\
             instance_name = postern-test-{imap}\n\
             protocols = imap pop3\n\
             listen = 127.0.0.1\n\
             log_path = {log}\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             default_internal_user = {internal}\n\
             default_login_user = {login}\n\
             mail_uid = {mail}\n\
             mail_gid = {gid}\n\
             first_valid_uid = 1\n\
             mail_location = maildir:{base}/%d/%n/Maildir\n\
             passdb {{\n  driver = passwd-file\n  args = username_format=%u {users}\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {users}\n  \
               default_fields = home={base}/%d/%n\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
               inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  chroot =\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  \
               inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            run = run.display(),
            log = log.display(),
            gid = owner.1,
            base = mail_base.display(),
            users = users.display(),
        );
        std::fs::write(&conf, text).unwrap();
        if root {
            // The auth process (user `dovecot`) reads the users file and the
            // mail processes (`nobody`) walk down to the Maildirs: every
            // directory above them must be searchable.
            let mut p = mail_base.to_owned();
            while p.pop() && p.starts_with(std::env::temp_dir()) && p != std::env::temp_dir() {
                chmod(&p, 0o711);
            }
            chmod(dir, 0o711);
        }
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dovecot");
        let mut d = Dovecot {
            imap: SocketAddr::from(([127, 0, 0, 1], imap)),
            pop3: SocketAddr::from(([127, 0, 0, 1], pop3)),
            conf,
            log,
            owner,
            child,
        };
        d.wait_greeting(d.imap, "* OK")?;
        d.wait_greeting(d.pop3, "+OK")?;
        Ok(d)
    }

    fn wait_greeting(&mut self, addr: SocketAddr, greeting: &str) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            // The master exits at once when a port is taken.
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("dovecot exited ({status}); log:\n{}", self.log()));
            }
            if let Ok(s) = TcpStream::connect(addr) {
                s.set_read_timeout(Some(WAIT)).unwrap();
                let mut line = String::new();
                let _ = BufReader::new(s).read_line(&mut line);
                if line.starts_with(greeting) {
                    return Ok(());
                }
                return Err(format!("{addr} greeted {line:?}; log:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{addr} never answered; log:\n{}", self.log()))
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Gives the tree at `path` to the user Dovecot's mail processes run
    /// as (a no-op unless the tests run as root).
    pub fn hand_over(&self, path: &Path) {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        std::os::unix::fs::chown(path, Some(self.owner.0), Some(self.owner.1)).unwrap();
        if path.is_dir() {
            for e in std::fs::read_dir(path).unwrap() {
                self.hand_over(&e.unwrap().path());
            }
        }
    }

    /// Delivers `message` to `user` with Dovecot's own LDA, as Postfix's
    /// `mailbox_command` would.
    pub fn lda(&self, user: &str, message: &[u8]) {
        use std::io::Write;
        let mut lda = Command::new(LDA)
            .arg("-c")
            .arg(&self.conf)
            .args(["-d", user, "-f", "bob@example.org"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dovecot-lda");
        lda.stdin.take().unwrap().write_all(message).unwrap();
        let out = lda.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "dovecot-lda: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its children; SIGKILL would leave
        // them behind.
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
