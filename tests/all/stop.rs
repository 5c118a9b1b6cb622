//! `postern stop` is graceful: the listeners close, an idle session gets
//! `421 4.3.2`, a transaction in progress completes with `250` and its
//! message is delivered; IMAP and POP3 sessions are told the server is
//! shutting down (Dovecot's words) and closed, POP3 deletions not applied.
//! `postern abort` exits at once.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Client, POSTERN, Server, messages, send_accepted, wait_messages};

/// Runs `postern CMD --config` for the server's config in a thread.
fn command(server: &Server, cmd: &str) -> std::thread::JoinHandle<std::process::Output> {
    let config = server.dir.join("postern.toml");
    let cmd = cmd.to_owned();
    std::thread::spawn(move || {
        Command::new(POSTERN)
            .arg(&cmd)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    })
}

#[test]
fn stop_lets_a_transaction_in_data_finish() {
    let (server, _tmp) = Server::start("");
    let mut busy = Client::connect(server.smtp);
    assert!(busy.cmd("EHLO busy.example").starts_with("250"));
    assert!(busy.cmd("MAIL FROM:<bob@example.org>").starts_with("250"));
    assert!(busy.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(busy.cmd("DATA").starts_with("354"));
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n");
    let mut idle = Client::connect(server.smtp);
    assert!(idle.cmd("EHLO idle.example").starts_with("250"));

    let stop = command(&server, "stop");
    // The idle session is closed at once, the listener too.
    assert_eq!(idle.rest(), "421 4.3.2 Service shutting down\r\n");
    server.wait_log("SMTP sessions to finish");
    let start = Instant::now();
    while std::net::TcpStream::connect(server.smtp).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(5), "still accepting");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The transaction in DATA completes, then the session is closed.
    busy.send(b"second half\r\n.\r\n");
    let reply = busy.reply();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    assert_eq!(busy.rest(), "421 4.3.2 Service shutting down\r\n");

    let out = stop.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("the mail system is stopped"), "{stderr}");
    let log = server.log();
    assert!(
        log.contains("shutdown after EHLO from unknown[127.0.0.1]"),
        "{log}"
    );
    assert!(!server.dir.join("queue/pid/master.pid").exists());

    // Delivered before the exit, or by the next start.
    let new = server.new_dir("alice");
    if messages(&new).is_empty() {
        let dir = server.dir.clone();
        drop(server);
        let again = Server::start_in(&dir);
        let m = wait_messages(&new, 1);
        assert!(String::from_utf8_lossy(&m[0]).contains("first half\r\nsecond half\r\n"));
        drop(again);
    } else {
        let m = wait_messages(&new, 1);
        assert!(String::from_utf8_lossy(&m[0]).contains("first half\r\nsecond half\r\n"));
    }
}

#[test]
fn stop_does_not_wait_for_an_idle_server() {
    let (server, _tmp) = Server::start("");
    let start = Instant::now();
    let out = command(&server, "stop").join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    let out = command(&server, "stop").join().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn abort_exits_at_once() {
    let (server, _tmp) = Server::start("");
    let mut busy = Client::connect(server.smtp);
    assert!(busy.cmd("EHLO busy.example").starts_with("250"));
    assert!(busy.cmd("MAIL FROM:<bob@example.org>").starts_with("250"));
    let start = Instant::now();
    let out = command(&server, "abort").join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // No 421: the connection is simply gone.
    assert_eq!(busy.rest(), "");
    server.wait_log("abort: exiting at once");
}

/// Logs in to IMAP (alice, INBOX selected) and POP3 (bob, message 1
/// marked deleted), says `ready`, then prints what each server sends
/// unasked and whether it closes.
const MAILBOX_SESSIONS: &str = r#"
import imaplib, poplib, sys
host, imap_port, pop3_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = imaplib.IMAP4(host, imap_port, timeout=30)
m.login("alice@example.org", "secret")
print("select", m.select("INBOX")[0])
p = poplib.POP3(host, pop3_port, timeout=30)
p.user("bob@example.org")
p.pass_("secret")
print("stat", p.stat()[0])
print("dele", p.dele(1).decode())
print("ready", flush=True)
print("imap", m.readline().decode().strip())
print("imap-closed", m.readline() == b"")
print("pop3", p.file.readline().decode().strip())
print("pop3-closed", p.file.readline() == b"")
"#;

#[test]
fn stop_says_bye_to_imap_and_pop3_sessions_and_keeps_deletions_undone() {
    use std::io::BufRead;
    let services = "[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n\
                    [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n";
    let (server, _tmp) = Server::start(services);
    let mut c = Client::connect(server.smtp);
    for user in ["alice", "bob"] {
        let to = format!("{user}@example.org");
        send_accepted(&mut c, "s@example.org", &[&to], "Subject: s\r\n\r\nx\r\n");
        wait_messages(&server.new_dir(user), 1);
    }
    let port = |service: &str| server.listening(service).port().to_string();
    let mut script = Command::new("python3")
        .arg("-c")
        .arg(MAILBOX_SESSIONS)
        .args(["127.0.0.1", &port("imap"), &port("pop3")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed");
    let mut out = std::io::BufReader::new(script.stdout.take().unwrap());
    let mut said = String::new();
    while !said.ends_with("ready\n") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{said}");
        said.push_str(&line);
    }
    assert!(said.contains("select OK\nstat 1\ndele +OK"), "{said}");

    let start = Instant::now();
    let stop = command(&server, "stop");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = script.wait().unwrap();
    assert!(status.success(), "{said}{rest}");
    assert_eq!(
        rest,
        "imap * BYE Server shutting down.\nimap-closed True\n\
         pop3 -ERR [SYS/TEMP] Server shutting down.\npop3-closed True\n"
    );
    let out = stop.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Told at once, not after the grace period.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let log = server.log();
    assert!(
        log.contains("imap(alice@example.org): Disconnected: Server shutting down"),
        "{log}"
    );
    assert!(
        log.contains("pop3(bob@example.org): Disconnected: Server shutting down"),
        "{log}"
    );
    // No QUIT, no UPDATE state: bob's message is still there.
    let bob = server.new_dir("bob");
    let maildir = bob.parent().unwrap();
    let files: usize = ["new", "cur"]
        .iter()
        .map(|d| std::fs::read_dir(maildir.join(d)).unwrap().count())
        .sum();
    assert_eq!(files, 1);
}
