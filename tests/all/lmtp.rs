//! The `lmtp` service (RFC 2033): Python's smtplib.LMTP over TCP and over
//! a UNIX socket, one reply per accepted recipient after DATA (a Maildir
//! that cannot be written gets its own 451 while the others get 250),
//! dot-stuffing and a bare-LF smuggling attempt, and a second Postern
//! delivering into this one with `transport_maps = lmtp:[127.0.0.1]:PORT`.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::remote_smtp::{sender, submit, table};
use crate::support::{Client, POSTERN, Server, WAIT, messages, python, wait_messages};

/// An LMTP session with smtplib: LHLO, MAIL, each RCPT, DATA, then the
/// replies smtplib does not read itself (it knows one reply per DATA):
/// one per accepted recipient. Prints one line per reply.
const SESSION: &str = r#"
import smtplib, sys
target, port, rcpts = sys.argv[1], sys.argv[2], sys.argv[3:]
c = smtplib.LMTP(target) if port == "unix" else smtplib.LMTP(target, int(port))
code, _ = c.ehlo("mx.sender.test")
print("lhlo", code, " ".join(sorted(c.esmtp_features)))
print("mail", c.mail("bob@sender.test")[0])
accepted = []
for r in rcpts:
    code, msg = c.rcpt(r)
    print("rcpt", r, code, msg.decode())
    if code == 250:
        accepted.append(r)
body = b"Subject: lmtp test\r\nMessage-ID: <lmtp.1@sender.test>\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"
code, msg = c.data(body)
print("data", accepted[0], code, msg.decode())
for r in accepted[1:]:
    code, msg = c.getreply()
    print("data", r, code, msg.decode())
print("quit", c.quit()[0])
"#;

fn run_session(target: &str, port: &str, rcpts: &[&str]) -> String {
    let mut args = vec![target, port];
    args.extend_from_slice(rcpts);
    python(SESSION, &args)
}

/// What every delivered copy holds: our trace headers and the body
/// unstuffed.
fn check_message(m: &[u8], rcpt: &str) {
    let text = String::from_utf8_lossy(m);
    assert!(
        text.starts_with(&format!(
            "Return-Path: <bob@sender.test>\r\nDelivered-To: {rcpt}\r\nReceived: from mx.sender.test ("
        )),
        "{text}"
    );
    assert!(
        text.contains("by mx.test.example (Postern) with LMTP id "),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"),
        "{text}"
    );
}

#[test]
fn lmtp_over_tcp_one_reply_per_recipient() {
    let (server, _tmp) = Server::start(
        "recipient_delimiter = \"+\"\n[[service]]\nname = \"lmtp\"\nlisten = \"127.0.0.1:0\"\n",
    );
    let addr = server.listening("lmtp");
    let out = run_session(
        "127.0.0.1",
        &addr.port().to_string(),
        &[
            "alice@example.org",
            "nobody@example.org",
            "bob+lists@example.org",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "lhlo 250 8bitmime enhancedstatuscodes pipelining size"
    );
    assert_eq!(lines[1], "mail 250");
    assert_eq!(lines[2], "rcpt alice@example.org 250 2.1.5 Ok");
    assert_eq!(
        lines[3],
        "rcpt nobody@example.org 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
    );
    assert_eq!(lines[4], "rcpt bob+lists@example.org 250 2.1.5 Ok");
    assert!(
        lines[5].starts_with("data alice@example.org 250 2.0.0 <alice@example.org> "),
        "{out}"
    );
    assert!(lines[5].ends_with(" Saved"), "{out}");
    assert!(
        lines[6].starts_with("data bob+lists@example.org 250 2.0.0 <bob+lists@example.org> "),
        "{out}"
    );
    assert_eq!(lines[7], "quit 221");
    // On disk before the 250: no waiting needed.
    let alice = messages(&server.new_dir("alice"));
    assert_eq!(alice.len(), 1);
    check_message(&alice[0], "alice@example.org");
    let bob = messages(&server.new_dir("bob"));
    assert_eq!(bob.len(), 1);
    check_message(&bob[0], "bob+lists@example.org");
    let log = server.wait_log("disconnect from unknown[127.0.0.1]");
    assert!(log.contains("postern/lmtpd["), "{log}");
    assert!(log.contains("message-id=<lmtp.1@sender.test>"), "{log}");
    let sent = log
        .lines()
        .find(|l| l.contains("to=<alice@example.org>, relay=local"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        sent.contains("dsn=2.0.0, status=sent (delivered to maildir)"),
        "{sent}"
    );
    assert!(
        log.contains("reject: RCPT from unknown[127.0.0.1]: 550 5.1.1"),
        "{log}"
    );
}

#[test]
fn lmtp_over_a_unix_socket_with_a_broken_maildir() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("run/lmtp");
    // A stale socket left by a crash is replaced at start.
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    // Our own group: a group any user may give a file it owns.
    let gid = std::fs::metadata(tmp.path()).unwrap().gid();
    let (server, _stmp) = Server::start(&format!(
        "[[service]]\nname = \"lmtp\"\nlisten = \"unix:{}\"\ngroup = \"{gid}\"\n",
        socket.display()
    ));
    server.wait_log(&format!("listening on lmtp unix:{}", socket.display()));
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    // bob's mailbox cannot be made: a file is where its home would be
    // (a permission would not stop root, who runs the tests in CI).
    let bob_home = server.dir.join("mail/example.org/bob");
    std::fs::create_dir_all(bob_home.parent().unwrap()).unwrap();
    std::fs::write(&bob_home, "not a directory").unwrap();
    let out = run_session(
        socket.to_str().unwrap(),
        "unix",
        &["bob@example.org", "alice@example.org"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[2], "rcpt bob@example.org 250 2.1.5 Ok", "{out}");
    assert_eq!(lines[3], "rcpt alice@example.org 250 2.1.5 Ok", "{out}");
    assert!(
        lines[4].starts_with("data bob@example.org 451 4.3.0 <bob@example.org> Temporary failure"),
        "{out}"
    );
    assert!(lines[5].starts_with("data alice@example.org 250 "), "{out}");
    let alice = messages(&server.new_dir("alice"));
    assert_eq!(alice.len(), 1);
    check_message(&alice[0], "alice@example.org");
    let log = server.wait_log("disconnect from local");
    let deferred = log
        .lines()
        .find(|l| l.contains("to=<bob@example.org>"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        deferred.contains("dsn=4.3.0, status=deferred (maildir delivery failed: "),
        "{deferred}"
    );

    // `postern stop` removes the socket.
    let out = Command::new(POSTERN)
        .args(["stop", "--config"])
        .arg(server.dir.join("postern.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    while socket.exists() {
        assert!(start.elapsed() < WAIT, "the socket outlived the server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Only `<CRLF>.<CRLF>` ends the data: a bare-LF dot and the commands
/// after it are content of the one message, for one recipient.
#[test]
fn lmtp_smuggling_is_content() {
    let (server, _tmp) = Server::start("[[service]]\nname = \"lmtp\"\nlisten = \"127.0.0.1:0\"\n");
    let mut c = Client::connect(server.listening("lmtp"));
    assert!(c.cmd("EHLO x").starts_with("500 5.5.1 "));
    assert!(c.cmd("LHLO x").starts_with("250-"));
    assert!(
        c.cmd("MAIL FROM:<bob@sender.test>")
            .starts_with("250 2.1.0")
    );
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .starts_with("250 2.1.5")
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(
        b"Subject: s\r\n\r\n..stuffed\r\nhello\n.\nMAIL FROM:<evil@sender.test>\r\n\
          RCPT TO:<bob@example.org>\r\nDATA\r\nsmuggled\r\n.\r\n",
    );
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 <alice@example.org> "), "{r}");
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    let alice = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&alice[0]);
    assert!(
        text.ends_with(
            "\r\n.stuffed\r\nhello\r\n.\r\nMAIL FROM:<evil@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nsmuggled\r\n"
        ),
        "{text}"
    );
    assert!(messages(&server.new_dir("bob")).is_empty());
}

/// Postern's own LMTP client (Postfix's lmtp(8)) hands mail to Postern's
/// LMTP server, as Postfix hands it to Dovecot.
#[test]
fn postern_delivers_into_postern_over_lmtp() {
    let (receiver, _rtmp) =
        Server::start("[[service]]\nname = \"lmtp\"\nlisten = \"127.0.0.1:0\"\n");
    let port = receiver.listening("lmtp").port();
    let tables = tempfile::tempdir().unwrap();
    let map = table(
        tables.path(),
        "transport",
        &format!("example.org lmtp:[127.0.0.1]:{port}\n"),
    );
    let (sender, _stmp) = sender(None, &format!("transport_maps = \"{map}\"\n"), "");
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["alice@example.org", "nobody@example.org", "bob@example.org"],
        "Subject: via lmtp\r\n\r\nhello\r\n",
    );
    let log = sender.wait_log(&format!("{id}: removed"));
    for (rcpt, tail) in [
        (
            "alice",
            "dsn=2.0.0, status=sent (250 2.0.0 <alice@example.org> ",
        ),
        (
            "bob",
            "dsn=2.0.0, status=sent (250 2.0.0 <bob@example.org> ",
        ),
        ("nobody", "dsn=5.1.1, status=bounced ("),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{id}: to=<{rcpt}@example.org>")))
            .unwrap_or_else(|| panic!("no line for {rcpt}:\n{log}"));
        assert!(line.contains("postern/lmtp["), "{line}");
        assert!(
            line.contains(&format!("relay=127.0.0.1[127.0.0.1]:{port}")),
            "{line}"
        );
        assert!(line.contains(tail), "{line}");
    }
    for user in ["alice", "bob"] {
        let m = wait_messages(&receiver.new_dir(user), 1);
        let text = String::from_utf8_lossy(&m[0]);
        assert!(text.contains("with LMTP id "), "{text}");
        assert!(text.ends_with("\r\nhello\r\n"), "{text}");
    }
    // The sender's bounce for nobody names the receiver's refusal.
    let bounce = wait_messages(
        &sender.dir.join("mail/sender.test/postmaster/Maildir/new"),
        1,
    );
    let text = String::from_utf8_lossy(&bounce[0]);
    assert!(text.contains("550 5.1.1 <nobody@example.org>"), "{text}");
}

/// Bad input gets its reply and the session goes on: an overlong line,
/// a SIZE over the limit, and data over it (one 552 per recipient).
#[test]
fn lmtp_limits() {
    let (server, _tmp) = Server::start("[[service]]\nname = \"lmtp\"\nlisten = \"127.0.0.1:0\"\n");
    let mut c = Client::connect(server.listening("lmtp"));
    assert!(c.cmd("LHLO x").contains("250-SIZE 100000\r\n"));
    let long = "NOOP ".to_owned() + &"x".repeat(100_000);
    assert_eq!(c.cmd(&long), "500 5.5.2 Error: line too long\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<bob@sender.test> SIZE=100001"),
        "552 5.3.4 Message size exceeds fixed limit\r\n"
    );
    assert!(c.cmd("MAIL FROM:<bob@sender.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<bob@example.org>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let line = "y".repeat(998) + "\r\n";
    for _ in 0..200 {
        c.send(line.as_bytes());
    }
    c.send(b".\r\n");
    assert_eq!(
        c.reply(),
        "552 5.3.4 <alice@example.org> Error: message file too big\r\n"
    );
    assert_eq!(
        c.reply(),
        "552 5.3.4 <bob@example.org> Error: message file too big\r\n"
    );
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    assert!(messages(&server.new_dir("alice")).is_empty());
}

/// A socket where another server answers is not taken over: start-up
/// stops and says why.
#[test]
fn lmtp_socket_in_use_stops_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("lmtp");
    let _live = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::write(tmp.path().join("users"), "").unwrap();
    let config = crate::support::config_text(
        tmp.path(),
        &format!(
            "[[service]]\nname = \"lmtp\"\nlisten = \"unix:{}\"\n",
            socket.display()
        ),
    );
    std::fs::write(tmp.path().join("postern.toml"), config).unwrap();
    let out = Command::new(POSTERN)
        .args(["start", "--foreground", "--config"])
        .arg(tmp.path().join("postern.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "service lmtp: {} is in use: another server listens there",
            socket.display()
        )),
        "{err}"
    );
    assert!(socket.exists());
}
