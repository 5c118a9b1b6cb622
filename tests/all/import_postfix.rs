//! `postern import-postfix` on the sample setups of
//! `../shared/fixtures/postfix/` (issue 10, item 4): each imports into a
//! config `postern check` accepts, every setting left behind is named
//! with its line, and the full server, run on loopback, answers the SMTP
//! conversations as Postfix does with that main.cf and master.cf.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/postfix")
        .join(name)
        .canonicalize()
        .expect("../shared/fixtures/postfix beside the repository")
}

/// Runs the import; (config, stderr).
fn import(args: &[&Path]) -> (String, String) {
    let out = Command::new(POSTERN)
        .arg("import-postfix")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The imported config made runnable in `dir`: the test's data
/// directories first (top-level keys precede the tables), listeners on
/// ephemeral loopback ports, and loopback only as the trusted network
/// except 127.0.0.2, the untrusted client.
fn runnable(config: &str, dir: &Path) -> String {
    let d = dir.display();
    let mut text = format!(
        "plugin_cache_directory = \"{SHARED_CACHE}\"\n\
         data_directory = \"{d}\"\n\
         queue_directory = \"{d}/queue\"\n\
         virtual_mailbox_base = \"{d}/mail\"\n\
         inet_interfaces = \"127.0.0.1\"\n"
    );
    for line in config.lines() {
        let line = match line {
            l if l.starts_with("listen = ") => "listen = \"127.0.0.1:0\"".to_owned(),
            l if l.starts_with("mynetworks = ") => {
                "mynetworks = \"192.0.2.0/24, 127.0.0.1/32\"".to_owned()
            }
            l if l.starts_with("inet_interfaces = ") => continue,
            l => l.to_owned(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn check(config: &str, dir: &Path) {
    let path = dir.join("postern.toml");
    std::fs::write(&path, runnable(config, dir)).unwrap();
    let out = Command::new(POSTERN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&path).unwrap()
    );
}

#[test]
fn the_relay_server_imports_with_its_relayhost_and_networks() {
    let (config, notes) = import(&[&fixture("relay-server")]);
    assert!(
        config.contains("relayhost = \"mail.example.net:587\""),
        "{config}"
    );
    assert!(
        config.contains(
            "mynetworks = \"192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 127.0.0.0/8\""
        ),
        "{config}"
    );
    // The aliases file of the fixture directory stands in for /etc/aliases.
    assert!(config.contains("/relay-server/aliases\""), "{config}");
    assert!(
        notes.contains("main.cf:11: alias_database: not carried over"),
        "{notes}"
    );
    assert!(notes.contains("master.cf"), "{notes}");
    let tmp = tempfile::tempdir().unwrap();
    check(&config, tmp.path());
}

#[test]
fn the_small_office_imports_with_its_limits_and_mailbox_command() {
    let (config, _) = import(&[&fixture("small-office")]);
    for line in [
        "relayhost = \"[mail.example.net]\"",
        "smtpd_client_connection_count_limit = \"3\"",
        "smtpd_client_message_rate_limit = \"10\"",
        "mailbox_command = \"/usr/bin/procmail\"",
    ] {
        assert!(config.contains(line), "{line} in {config}");
    }
    let tmp = tempfile::tempdir().unwrap();
    check(&config, tmp.path());
}

#[test]
fn the_full_server_imports_with_dovecot_and_answers_as_postfix_does() {
    let dir = fixture("full-server");
    let (config, notes) = import(&[&dir, Path::new("--dovecot"), &dir]);
    // Every setting left behind is named with its file and line.
    for expected in [
        "main.cf:16: smtpd_sasl_type: not carried over",
        "main.cf:17: smtpd_sasl_path: not carried over",
        "master.cf:3: submission/-o syslog_name: not carried over",
        "dovecot.conf:2: protocols/lmtp: not carried over",
        "dovecot.conf:6: passdb/args scheme",
        "/etc/dovecot/users does not exist",
    ] {
        assert!(notes.contains(expected), "{expected:?} in\n{notes}");
    }
    assert!(config.contains("[[service]]\nname = \"submission\"\nlisten = \"587\"\nsmtpd_tls_security_level = \"encrypt\""), "{config}");
    assert!(config.contains("name = \"imaps\""), "{config}");
    assert!(config.contains("check_helo_access hash:"), "{config}");

    // Run it: the users file the passdb names does not exist in the
    // fixture, so point it at the test users.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    // Likewise the relayhost's password table the note names.
    std::fs::write(tmp.path().join("sasl_passwd"), "").unwrap();
    let config = config
        .replace(
            "users_file = \"/etc/dovecot/users\"",
            &format!("users_file = \"{}/users\"", tmp.path().display()),
        )
        .replace(
            "hash:/etc/postfix/sasl_passwd",
            &format!("hash:{}/sasl_passwd", tmp.path().display()),
        );
    check(&config, tmp.path());
    let server = Server::start_in(tmp.path());

    // smtpd_helo_restrictions' access map, from an untrusted client,
    // decided at RCPT (smtpd_delay_reject), Postfix's words.
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(c.cmd("EHLO badhelo.example.org").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<someone@example.net>").starts_with("250"));
    let r = c.cmd("RCPT TO:<alice@example.com>");
    assert!(
        r.starts_with("450 4.7.1 <badhelo.example.org>: Helo command rejected: Try again later"),
        "{r}"
    );
    c.cmd("QUIT");

    // A trusted client relays (permit_mynetworks).
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.example.com").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<alice@example.com>").starts_with("250"));
    let r = c.cmd("RCPT TO:<someone@example.net>");
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT");

    // The submission service's master.cf overrides: TLS first.
    let log = server.wait_log("listening on submission ");
    let submission: std::net::SocketAddr = log
        .split("listening on submission ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut c = Client::connect_from(submission, "127.0.0.2");
    assert!(c.cmd("EHLO client.example.net").starts_with("250"));
    let r = c.cmd("MAIL FROM:<someone@example.net>");
    assert!(
        r.starts_with("530 5.7.0 Must issue a STARTTLS command first"),
        "{r}"
    );
}

/// The internal services a private Postfix needs, none chrooted.
const POSTFIX_MASTER_CF: &str = "\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
";

/// A private Postfix running the full-server main.cf on `port`, in
/// `dir`: the tables and aliases copied and compiled there, the queue
/// there, and the settings that would reach outside the test changed
/// alike for both servers (see `runnable`). The master's process group
/// is killed when the guard drops. It logs nowhere: with `maillog_file`,
/// postlogd can block writing its own warnings to its own full datagram
/// socket, and every process logging behind it waits too.
struct Postfix(std::process::Child);

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.0),
            rustix::process::Signal::KILL,
        );
        let _ = self.0.wait();
    }
}

fn start_postfix(fixture: &Path, dir: &Path, port: u16) -> Option<Postfix> {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let (etc, spool, data) = (dir.join("etc"), dir.join("spool"), dir.join("data"));
    let id = |what: &str| -> u32 {
        let out = Command::new("id")
            .arg(what)
            .arg("postfix")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    for q in [
        "incoming", "active", "deferred", "defer", "bounce", "hold", "corrupt", "flush", "saved",
        "trace", "private", "public", "maildrop", "pid",
    ] {
        let d = spool.join(q);
        std::fs::create_dir_all(&d).unwrap();
        if q != "pid" {
            std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
        }
    }
    std::fs::set_permissions(
        spool.join("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    for p in [dir.parent().unwrap(), dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (table, tool) in [("access", "postmap"), ("aliases", "postalias")] {
        std::fs::copy(fixture.join(table), etc.join(table)).unwrap();
        let out = Command::new(tool).arg(etc.join(table)).output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The parameters set below are taken out of the fixture's text rather
    // than set twice: every Postfix process warns of each duplicate.
    let overridden = [
        "inet_interfaces",
        "mynetworks",
        "smtpd_sasl_auth_enable",
        "smtp_sasl_password_maps",
    ];
    let main_cf = std::fs::read_to_string(fixture.join("main.cf"))
        .unwrap()
        .lines()
        .filter(|l| !overridden.iter().any(|k| l.starts_with(&format!("{k} ="))))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "/etc/postfix/access",
            &etc.join("access").display().to_string(),
        )
        .replace(
            "hash:/etc/aliases",
            &format!("hash:{}", etc.join("aliases").display()),
        );
    let (s, d) = (spool.display(), data.display());
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "{main_cf}\n\
             queue_directory = {s}\n\
             data_directory = {d}\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 192.0.2.0/24, 127.0.0.1/32\n\
             smtpd_sasl_auth_enable = no\n\
             smtp_sasl_password_maps =\n\
             smtpd_peername_lookup = no\n\
"
        ),
    )
    .unwrap();
    std::fs::write(
        etc.join("master.cf"),
        format!("127.0.0.1:{port} inet n - n - - smtpd\n{POSTFIX_MASTER_CF}"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("master.log")).unwrap();
    let child = Command::new("/usr/lib/postfix/sbin/master")
        .arg("-c")
        .arg(&etc)
        .arg("-d")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let mut postfix = Postfix(child);
    let start = std::time::Instant::now();
    // Ready when the master's smtpd greets with the fixture's banner; a
    // master that exits lost the port to another process (the port was
    // free when picked): the caller picks another.
    loop {
        if postfix.0.try_wait().unwrap().is_some() {
            return None;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read as _;
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut greeting = [0u8; 64];
            let n = s.read(&mut greeting).unwrap_or(0);
            if greeting[..n].starts_with(b"220 mail.example.com") {
                return Some(postfix);
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "postfix did not start: {}",
            std::fs::read_to_string(dir.join("master.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One conversation from the untrusted 127.0.0.2: the replies to MAIL
/// and each RCPT, as code, enhanced code and (for refusals) text.
fn converse(server: std::net::SocketAddr, helo: &str, from: &str, rcpts: &[&str]) -> Vec<String> {
    let mut c = Client::connect_from(server, "127.0.0.2");
    let mut replies = vec![];
    let ehlo = c.cmd(&format!("EHLO {helo}"));
    assert!(ehlo.starts_with("250"), "{ehlo}");
    let mut steps = vec![format!("MAIL FROM:<{from}>")];
    steps.extend(rcpts.iter().map(|r| format!("RCPT TO:<{r}>")));
    for step in steps {
        let r = c.cmd(&step);
        // The words of a 250 differ (`Ok` or `2.1.5 Ok`); a refusal's are
        // compared whole.
        let r = if r.starts_with('2') {
            r.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
        } else {
            r.trim_end().to_owned()
        };
        replies.push(format!("{step} -> {r}"));
    }
    c.cmd("QUIT");
    replies
}

#[test]
fn postfix_and_postern_give_the_full_server_the_same_answers() {
    // A private Postfix runs its daemons as the postfix user: only root
    // can start one (CI runs as root).
    if !rustix::process::geteuid().is_root() {
        println!("skipped: starting a private Postfix needs root");
        return;
    }
    if !Path::new("/usr/lib/postfix/sbin/master").exists() {
        panic!("Postfix is not installed (apt-get install postfix); .ci/run installs it");
    }
    let dir = fixture("full-server");
    let (config, _) = import(&[&dir]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let config = config.replace(
        "hash:/etc/postfix/sasl_passwd",
        &format!("hash:{}/sasl_passwd", tmp.path().display()),
    );
    std::fs::write(tmp.path().join("sasl_passwd"), "").unwrap();
    check(&config, tmp.path());
    let postern = Server::start_in(tmp.path());
    let (port, _postfix) = (0..3)
        .find_map(|round| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = tmp.path().join(format!("postfix{round}"));
            start_postfix(&fixture("full-server"), &dir, port).map(|p| (port, p))
        })
        .expect("a private Postfix starts within three tries");
    let postfix_addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();

    // Each ends before a DNS lookup (there is no resolver here): the
    // HELO and sender access maps decide, or the recipient checks do.
    let conversations: &[(&str, &str, &[&str])] = &[
        (
            "badhelo.example.org",
            "x@example.net",
            &["postmaster@example.com"],
        ),
        (
            "friend.example.net",
            "x@spammer.example.org",
            &["postmaster@example.com"],
        ),
        (
            "friend.example.net",
            "postmaster@example.com",
            &[
                "x@elsewhere.example",
                "abuse@elsewhere.example",
                "sales@example.com",
                "root@example.com",
                "nosuchuser@example.com",
                "info@example.com",
                "postmaster",
            ],
        ),
    ];
    let mut differences = Vec::new();
    for (helo, from, rcpts) in conversations {
        let expected = std::panic::catch_unwind(|| converse(postfix_addr, helo, from, rcpts))
            .unwrap_or_else(|e| {
                let log = tmp.path().join("postfix0/master.log");
                println!(
                    "Postfix's stderr:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
                std::panic::resume_unwind(e)
            });
        let got = converse(postern.smtp, helo, from, rcpts);
        println!("HELO {helo}:\n  {}", expected.join("\n  "));
        for (e, g) in expected.iter().zip(&got) {
            if e != g {
                differences.push(format!(
                    "HELO {helo}: Postfix {e}\n{:>w$}Postern {g}",
                    "",
                    w = 6 + helo.len()
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
