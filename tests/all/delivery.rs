//! One message end to end: SMTP in, the recipient chain of real plugins,
//! the durable queue, a Maildir out.

use std::process::Command;

use crate::support::*;

/// The body every client sends: lines that need dot-stuffing, a lone dot
/// in the middle of a line, 8-bit text and a long line.
fn body(tag: &str) -> String {
    format!(
        "From: sender@client.test.example\r\nTo: alice@example.org\r\nSubject: {tag}\r\nMessage-ID: <{tag}@client.test.example>\r\n\r\n\
         first line\r\n.starts with a dot\r\n..two dots\r\n.\tdot and tab\r\nend . of line\r\nstraße\r\n{}\r\nlast line\r\n",
        "x".repeat(990)
    )
}

/// The part of a delivered message after the headers Postern adds.
fn after_trace(msg: &[u8]) -> &[u8] {
    let text = msg;
    let needle = b"From: sender@client.test.example";
    let i = text
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("original headers");
    &text[i..]
}

#[test]
fn smtplib_message_lands_byte_identical() {
    let (server, _tmp) = Server::start("");
    let tag = "smtplib-1";
    let script = r#"
import smtplib, sys
host, port, tag, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with smtplib.SMTP(host, port, timeout=20) as s:
    s.ehlo("client.test.example")
    assert s.has_extn("pipelining") and s.has_extn("8bitmime") and s.has_extn("enhancedstatuscodes"), s.esmtp_features
    assert int(s.esmtp_features["size"]) == 100000, s.esmtp_features
    refused = s.sendmail("sender@client.test.example", ["alice@example.org"], body.encode("utf-8"))
    assert not refused, refused
print("ok")
"#;
    let b = body(tag);
    let out = python(
        script,
        &[
            &server.smtp.ip().to_string(),
            &server.smtp.port().to_string(),
            tag,
            &b,
        ],
    );
    assert_eq!(out.trim(), "ok");
    let msgs = wait_messages(&server.new_dir("alice"), 1);
    assert_eq!(after_trace(&msgs[0]), b.as_bytes());
    let head = String::from_utf8_lossy(&msgs[0]);
    assert!(head.starts_with("Return-Path: <sender@client.test.example>\r\nDelivered-To: alice@example.org\r\nReceived: from client.test.example"), "{head}");
    // The maillog shape, from connect to removal.
    let log = server.wait_log(": removed");
    for needle in [
        "postern/smtpd[",
        "connect from unknown[127.0.0.1]",
        ": client=unknown[127.0.0.1]",
        "postern/qmgr[",
        ": from=<sender@client.test.example>, size=",
        ", nrcpt=1 (queue active)",
        "postern/local[",
        ": to=<alice@example.org>, relay=local, delay=",
        "dsn=2.0.0, status=sent (delivered to maildir)",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
}

#[test]
fn swaks_message_lands_byte_identical() {
    let (server, tmp) = Server::start("");
    let tag = "swaks-1";
    let b = body(tag);
    let data = tmp.path().join("message.eml");
    std::fs::write(&data, &b).unwrap();
    let out = Command::new("swaks")
        .args([
            "--server",
            &server.smtp.ip().to_string(),
            "--port",
            &server.smtp.port().to_string(),
        ])
        .args([
            "--helo",
            "client.test.example",
            "--from",
            "sender@client.test.example",
            "--to",
            "alice@example.org",
        ])
        .arg("--data")
        .arg(&data)
        .args(["--timeout", "20"])
        .output()
        .expect("swaks must be installed (apt-get install swaks)");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{transcript}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        transcript.contains("<-  250 2.0.0 Ok: queued as "),
        "{transcript}"
    );
    let msgs = wait_messages(&server.new_dir("alice"), 1);
    // swaks ends DATA with CRLF . CRLF after the file, whatever its end.
    assert_eq!(after_trace(&msgs[0]), format!("{b}\r\n").as_bytes());
}

#[test]
fn untrusted_client_cannot_relay_but_reaches_local_users() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(c.cmd("EHLO outsider.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<spammer@outsider.test.example>")
            .starts_with("250")
    );
    let r = c.cmd("RCPT TO:<victim@elsewhere.example.net>");
    assert_eq!(
        r,
        "554 5.7.1 <victim@elsewhere.example.net>: Relay access denied\r\n"
    );
    let log = server.wait_log("Relay access denied;");
    assert!(
        log.contains("reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <victim@elsewhere.example.net>: Relay access denied; from=<spammer@outsider.test.example> to=<victim@elsewhere.example.net> proto=ESMTP helo=<outsider.test.example>"),
        "{log}"
    );
    assert!(
        log.contains("reject_unauth_destination"),
        "the deciding plugin is named:\n{log}"
    );
    // The same client, to a local user, gets through.
    let r = c.cmd("RCPT TO:<bob@example.org>");
    assert!(r.starts_with("250 2.1.5"), "{r}");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: hi\r\n\r\nhello bob\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    assert!(c.cmd("QUIT").starts_with("221"));
    let msgs = wait_messages(&server.new_dir("bob"), 1);
    assert!(msgs[0].ends_with(b"Subject: hi\r\n\r\nhello bob\r\n"));
    // A trusted client may relay: the chain permits it (delivery to other
    // hosts comes with the queue and delivery issue).
    let mut t = Client::connect(server.smtp);
    assert!(t.cmd("EHLO inside.test.example").starts_with("250"));
    assert!(
        t.cmd("MAIL FROM:<user@inside.test.example>")
            .starts_with("250")
    );
    assert!(
        t.cmd("RCPT TO:<friend@elsewhere.example.net>")
            .starts_with("250 2.1.5")
    );
}

#[test]
fn unknown_local_user_and_postmaster() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(c.cmd("EHLO outsider.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<someone@outsider.test.example>")
            .starts_with("250")
    );
    let r = c.cmd("RCPT TO:<nobody@example.org>");
    assert!(
        r.starts_with("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"),
        "{r}"
    );
    // postmaster exists at every local domain (RFC 5321 §4.5.1), in any case,
    // and bare <postmaster> too.
    for rcpt in [
        "postmaster@example.org",
        "PostMaster@localhost",
        "postmaster",
    ] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(r.starts_with("250 2.1.5"), "{rcpt}: {r}");
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: to postmaster\r\n\r\nhello\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    // One mailbox for the local namespace: three recipients, one postmaster.
    let pm = server
        .dir
        .join("mail/mx.test.example/postmaster/Maildir/new");
    let msgs = wait_messages(&pm, 3);
    assert!(
        msgs.iter()
            .all(|m| m.ends_with(b"Subject: to postmaster\r\n\r\nhello\r\n"))
    );
}
