//! ESMTP verbs and extensions end to end: what EHLO announces, HELP, VRFY
//! per `disable_vrfy_command`, `smtpd_helo_required`, ETRN (RFC 1985),
//! PIPELINING with out-of-order and oversized batches (RFC 2920), and the
//! Message-Id and Date that cleanup adds to a local submission, read back
//! with Python's email parser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use crate::support::*;

fn codes(replies: &str) -> Vec<&str> {
    replies
        .lines()
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .map(|l| &l[..3])
        .collect()
}

#[test]
fn ehlo_announces_the_extensions() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    let r = c.cmd("EHLO client.test.example");
    for ext in [
        "250-mx.test.example\r\n",
        "250-PIPELINING\r\n",
        "250-SIZE 100000\r\n",
        "250-ETRN\r\n",
        "250-ENHANCEDSTATUSCODES\r\n",
        "250-8BITMIME\r\n",
        "250-DSN\r\n",
        "250-SMTPUTF8\r\n",
        "250 CHUNKING\r\n",
    ] {
        assert!(r.contains(ext), "{ext:?} missing in\n{r}");
    }
    // disable_vrfy_command = yes by default: not announced, and refused.
    assert!(!r.contains("VRFY"), "{r}");
    assert_eq!(
        c.cmd("VRFY alice@example.org"),
        "502 5.5.1 VRFY command is disabled\r\n"
    );
    let help = c.cmd("HELP");
    assert!(help.starts_with("214 2.0.0 Commands: "), "{help}");
    assert!(help.contains(" BDAT ") && help.contains(" ETRN "), "{help}");
    assert!(c.cmd("HELP MAIL").starts_with("214 "));
}

#[test]
fn vrfy_when_enabled() {
    let (server, _tmp) = Server::start("disable_vrfy_command = false");
    let mut c = Client::connect(server.smtp);
    let r = c.cmd("EHLO client.test.example");
    assert!(r.contains("250-VRFY\r\n"), "{r}");
    assert_eq!(
        c.cmd("VRFY <alice@example.org>"),
        "252 2.0.0 <alice@example.org>\r\n"
    );
    let r = c.cmd("VRFY nobody@example.org");
    assert!(r.starts_with("550 5.1.1 <nobody@example.org>: "), "{r}");
    assert!(c.cmd("VRFY someone@elsewhere.example").starts_with("252 "));
    assert!(c.cmd("VRFY not an address").starts_with("501 5.1.3 "));
}

#[test]
fn helo_required() {
    let (server, _tmp) = Server::start("smtpd_helo_required = true");
    let mut c = Client::connect(server.smtp);
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org>"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    assert!(c.cmd("HELO client.test.example").starts_with("250 "));
    assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250 "));

    // Without the setting, MAIL needs no HELO.
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250 "));
}

#[test]
fn etrn_for_relay_domains_only() {
    let (server, _tmp) = Server::start("relay_domains = \"relay.example\"");
    let mut c = Client::connect(server.smtp);
    assert_eq!(
        c.cmd("ETRN relay.example"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert_eq!(c.cmd("ETRN relay.example"), "250 2.0.0 Queuing started\r\n");
    assert_eq!(
        c.cmd("ETRN @Relay.Example"),
        "250 2.0.0 Queuing started\r\n"
    );
    assert_eq!(
        c.cmd("ETRN elsewhere.example"),
        "459 4.3.0 <elsewhere.example>: service unavailable\r\n"
    );
    assert_eq!(
        c.cmd("ETRN example.org"),
        "459 4.3.0 <example.org>: service unavailable\r\n"
    );
    assert_eq!(
        c.cmd("ETRN #queue"),
        "458 4.3.0 Unable to queue messages\r\n"
    );
    assert_eq!(c.cmd("ETRN"), "500 Syntax: ETRN domain\r\n");
    assert_eq!(
        c.cmd("ETRN bad..domain"),
        "501 5.5.4 Error: invalid parameter syntax\r\n"
    );
    assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250"));
    assert_eq!(
        c.cmd("ETRN relay.example"),
        "503 5.5.1 Error: MAIL transaction in progress\r\n"
    );
    server.wait_log("ETRN relay.example: queue run requested");
}

#[test]
fn pipelining_out_of_order_batch() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    // One write: commands out of order first, then a good transaction
    // with a refused recipient in the middle, then a second one.
    c.send(
        b"RCPT TO:<alice@example.org>\r\n\
          DATA\r\n\
          MAIL FROM:<sender@client.test.example>\r\n\
          MAIL FROM:<sender@client.test.example>\r\n\
          RCPT TO:<nobody@example.org>\r\n\
          RCPT TO:<alice@example.org>\r\n\
          DATA\r\n\
          Subject: pipelined\r\n\r\nfirst\r\n.\r\n\
          RCPT TO:<alice@example.org>\r\n\
          MAIL FROM:<>\r\n\
          RCPT TO:<bob@example.org>\r\n\
          DATA\r\n\
          Subject: pipelined 2\r\n\r\nsecond\r\n.\r\n\
          QUIT\r\n",
    );
    let all = c.rest();
    assert_eq!(
        codes(&all),
        [
            "503", "503", "250", "503", "550", "250", "354", "250", "503", "250", "250", "354",
            "250", "221"
        ],
        "{all}"
    );
    assert!(
        all.contains("503 5.5.1 Error: need MAIL command\r\n"),
        "{all}"
    );
    assert!(
        all.contains("503 5.5.1 Error: need RCPT command\r\n"),
        "{all}"
    );
    assert!(
        all.contains("503 5.5.1 Error: nested MAIL command\r\n"),
        "{all}"
    );
    let alice = wait_messages(&server.new_dir("alice"), 1);
    assert!(String::from_utf8_lossy(&alice[0]).ends_with("\r\nfirst\r\n"));
    let bob = wait_messages(&server.new_dir("bob"), 1);
    assert!(String::from_utf8_lossy(&bob[0]).ends_with("\r\nsecond\r\n"));
}

/// A batch far larger than any socket or reply buffer (900 RCPTs, whose
/// replies pass the server's output high-water mark, and a 90 KB message),
/// written while the replies are read on another thread: the server must
/// neither deadlock nor drop a reply.
#[test]
fn pipelining_oversized_batch() {
    let (server, _tmp) = Server::start("");
    let stream = TcpStream::connect(server.smtp).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    const N: usize = 900;
    let mut batch =
        b"EHLO client.test.example\r\nMAIL FROM:<sender@client.test.example>\r\n".to_vec();
    for i in 0..N {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        batch.extend_from_slice(format!("RCPT TO:<{user}@example.org>\r\n").as_bytes());
    }
    batch.extend_from_slice(b"DATA\r\nSubject: big batch\r\n\r\n");
    let line = format!("{}\r\n", "x".repeat(78));
    for _ in 0..1100 {
        batch.extend_from_slice(line.as_bytes());
    }
    batch.extend_from_slice(b".\r\nQUIT\r\n");
    assert!(batch.len() > 100_000);
    let write = std::thread::spawn(move || writer.write_all(&batch));
    let mut all = Vec::new();
    let start = Instant::now();
    let mut reader = stream;
    let mut buf = [0u8; 65536];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e} after {} bytes", all.len()),
        }
        assert!(start.elapsed() < WAIT * 2);
    }
    write.join().unwrap().unwrap();
    let all = String::from_utf8(all).unwrap();
    let codes = codes(&all);
    // Greeting, EHLO, MAIL, N RCPT, 354, 250, 221.
    assert_eq!(
        codes.len(),
        N + 6,
        "{}",
        &all[all.len().saturating_sub(500)..]
    );
    assert!(codes[1..3 + N].iter().all(|c| *c == "250"), "{all}");
    assert_eq!(&codes[N + 3..], ["354", "250", "221"]);
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(got[0].len() > 1100 * 80);
    wait_messages(&server.new_dir("bob"), 1);
}

/// Reads the delivered message with Python's email parser.
const READ_HEADERS: &str = r#"
import email, email.policy, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
print("message-id", msg["Message-Id"])
print("date", msg["Date"].datetime.year >= 2024)
print("count", len(msg.get_all("Message-Id") or []), len(msg.get_all("Date") or []))
print("subject", msg["Subject"])
print("body", msg.get_content().strip())
"#;

fn first_file(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

#[test]
fn cleanup_adds_message_id_and_date_to_local_submissions() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "bob@example.org",
        &["alice@example.org"],
        "Subject: no id\r\nFrom: bob@example.org\r\n\r\nhello\r\n",
    );
    let id = r.trim().rsplit(' ').next().unwrap().to_owned();
    wait_messages(&server.new_dir("alice"), 1);
    let out = python(
        READ_HEADERS,
        &[first_file(&server.new_dir("alice")).to_str().unwrap()],
    );
    let message_id = out.lines().next().unwrap();
    assert!(
        message_id.starts_with("message-id <")
            && message_id.ends_with(&format!(".{id}@mx.test.example>")),
        "{out}"
    );
    assert!(out.contains("date True\n"), "{out}");
    assert!(out.contains("count 1 1\n"), "{out}");
    assert!(
        out.contains("subject no id\n") && out.contains("body hello\n"),
        "{out}"
    );

    // A message that has both keeps them, once.
    let mut c = Client::connect(server.smtp);
    send_message(
        &mut c,
        "bob@example.org",
        &["bob@example.org"],
        "Subject: has id\r\nMessage-ID: <mine@client.test.example>\r\n\
         Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nhello\r\n",
    );
    wait_messages(&server.new_dir("bob"), 1);
    let out = python(
        READ_HEADERS,
        &[first_file(&server.new_dir("bob")).to_str().unwrap()],
    );
    assert!(
        out.contains("message-id <mine@client.test.example>\n"),
        "{out}"
    );
    assert!(out.contains("count 1 1\n"), "{out}");
}

/// smtplib logs in on loopback (no TLS needed there) and sends without
/// Message-ID or Date.
const SUBMIT: &str = r#"
import smtplib, sys
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=20) as s:
    s.ehlo("client.test.example")
    s.login("alice@example.org", "secret")
    s.sendmail("alice@example.org", ["bob@example.org"], b"Subject: authed\r\n\r\nhi\r\n")
"#;

const READ_RECEIVED: &str = r#"
import email, email.policy, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
print("received", " ".join(str(msg["Received"]).split()))
print("message-id", msg["Message-Id"] is not None, "date", msg["Date"] is not None)
"#;

#[test]
fn received_names_the_auth_user_when_configured() {
    let (server, _tmp) =
        Server::start("smtpd_sasl_auth_enable = true\nsmtpd_sasl_authenticated_header = true");
    let (ip, port) = (server.smtp.ip().to_string(), server.smtp.port().to_string());
    python(SUBMIT, &[&ip, &port]);
    wait_messages(&server.new_dir("bob"), 1);
    let out = python(
        READ_RECEIVED,
        &[first_file(&server.new_dir("bob")).to_str().unwrap()],
    );
    assert!(
        out.contains(
            "(Authenticated sender: alice@example.org) by mx.test.example (Postern) with ESMTPA id "
        ),
        "{out}"
    );
    assert!(out.contains("message-id True date True"), "{out}");
}
