//! SMTPUTF8 (RFC 6531) and 8BITMIME (RFC 6152) end to end: UTF-8 local
//! parts and domains accepted when MAIL says SMTPUTF8 and refused with
//! `553 5.6.7` when it does not, and UTF-8 headers and 8-bit bodies (not
//! even UTF-8) delivered into the Maildir byte for byte, over a raw socket
//! and through Python's smtplib (`mail_options=["SMTPUTF8"]`).

use std::path::Path;

use crate::support::*;

/// A user whose name is not ASCII, beside the usual test users.
const UTF8_USER: &str = "δοκιμή@example.org";

fn start() -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("users"),
        format!("{USERS}{UTF8_USER}:{{PLAIN}}secret::::\n"),
    )
    .unwrap();
    std::fs::write(tmp.path().join("postern.toml"), config_text(tmp.path(), "")).unwrap();
    (Server::start_in(tmp.path()), tmp)
}

fn utf8_new_dir(server: &Server) -> std::path::PathBuf {
    server.dir.join("mail/example.org/δοκιμή/Maildir/new")
}

/// Content with UTF-8 headers, and a body with UTF-8 and with 8-bit bytes
/// that are not UTF-8 at all; no line starts with a dot.
fn content(tag: &str) -> Vec<u8> {
    let mut c = format!(
        "From: Jösé <jösé@bücher.example>\r\nTo: {UTF8_USER}\r\nSubject: Grüße {tag} 日本語\r\n\
         Message-ID: <{tag}@bücher.example>\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nΚαλημέρα κόσμε, こんにちは\r\n"
    )
    .into_bytes();
    c.extend_from_slice(b"latin-1: caf\xe9 \xff\xfe\x80\r\n\x7f and NUL-free 8-bit end\r\n");
    c
}

/// The delivered file must end with exactly what was sent.
fn assert_round_trip(new: &Path, sent: &[u8]) {
    let got = wait_messages(new, 1);
    assert!(
        got[0].ends_with(sent),
        "not byte-identical:\n{}",
        String::from_utf8_lossy(&got[0])
    );
    // And the server's own headers above it are intact UTF-8.
    let head = &got[0][..got[0].len() - sent.len()];
    assert!(std::str::from_utf8(head).is_ok());
}

#[test]
fn raw_socket_round_trip() {
    let (server, _tmp) = start();
    let mut c = Client::connect(server.smtp);
    let r = c.cmd("EHLO client.test.example");
    assert!(
        r.contains("250-SMTPUTF8\r\n") && r.contains("250-8BITMIME\r\n"),
        "{r}"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<jösé@bücher.example> SMTPUTF8 BODY=8BITMIME"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(c.cmd(&format!("RCPT TO:<{UTF8_USER}>")), "250 2.1.5 Ok\r\n");
    assert!(c.cmd("DATA").starts_with("354"));
    let sent = content("raw");
    c.send(&sent);
    c.send(b".\r\n");
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert_round_trip(&utf8_new_dir(&server), &sent);
    // RFC 6531 §3.7.3: the Received header says UTF8SMTP.
    let got = messages(&utf8_new_dir(&server));
    assert!(
        String::from_utf8_lossy(&got[0]).contains(" (Postern) with UTF8SMTP id "),
        "{}",
        String::from_utf8_lossy(&got[0])
    );
    let log = server.wait_log("from=<jösé@bücher.example>");
    assert!(log.contains(&format!("to=<{UTF8_USER}>")), "{log}");
}

#[test]
fn unicode_addresses_need_smtputf8() {
    let (server, _tmp) = start();
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    let refused = "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n";
    assert_eq!(c.cmd("MAIL FROM:<jösé@bücher.example>"), refused);
    assert_eq!(
        c.cmd("MAIL FROM:<jose@bücher.example> BODY=8BITMIME"),
        refused
    );
    assert!(c.cmd("MAIL FROM:<jose@example.net>").starts_with("250"));
    assert_eq!(c.cmd(&format!("RCPT TO:<{UTF8_USER}>")), refused);
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("RSET").starts_with("250"));
    // With SMTPUTF8 an ASCII sender may write to a UTF-8 recipient, and
    // a UTF-8 domain is fine too.
    assert!(
        c.cmd("MAIL FROM:<jose@example.net> SMTPUTF8")
            .starts_with("250")
    );
    assert!(c.cmd(&format!("RCPT TO:<{UTF8_USER}>")).starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<postmaster@例え.example>")
            .starts_with("250")
    );
    // Not UTF-8 at all: refused as Postfix 3 does (RFC 6531 §3.3).
    c.send(b"RCPT TO:<\xff@example.org>\r\n");
    assert_eq!(c.reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n");
}

/// Python's smtplib, with SMTPUTF8 and 8BITMIME, sending bytes.
const SMTPLIB: &str = r#"
import smtplib, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
msg = open(path, "rb").read()
with smtplib.SMTP(host, port, timeout=20) as s:
    s.ehlo("client.test.example")
    assert s.has_extn("smtputf8") and s.has_extn("8bitmime")
    refused = s.sendmail("jösé@bücher.example", ["δοκιμή@example.org"], msg,
                         mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert refused == {}, refused
print("sent")
"#;

#[test]
fn python_smtplib_round_trip() {
    let (server, tmp) = start();
    let sent = content("smtplib");
    let path = tmp.path().join("message.eml");
    std::fs::write(&path, &sent).unwrap();
    let out = python(
        SMTPLIB,
        &[
            &server.smtp.ip().to_string(),
            &server.smtp.port().to_string(),
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(out.trim(), "sent");
    assert_round_trip(&utf8_new_dir(&server), &sent);
}
