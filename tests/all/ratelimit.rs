//! The `ratelimit` plugin in a running server, with real SMTP sessions:
//! messages per client address, recipients per window, per sender and
//! per SASL user, with Postfix's 450 4.7.1 replies and the plugin named
//! in the `NOQUEUE: reject:` line.

use std::time::{Duration, Instant};

use crate::support::*;

/// A server whose recipient list starts with `entries`.
fn start(entries: &str) -> (Server, tempfile::TempDir) {
    start_with("", entries)
}

/// As [`start`], with `extra` main.cf lines first.
fn start_with(extra: &str, entries: &str) -> (Server, tempfile::TempDir) {
    Server::start(&format!(
        "{extra}smtpd_recipient_restrictions = [{entries}, \"permit_mynetworks\", \
         \"permit_sasl_authenticated\", \"reject_unauth_destination\"]\n"
    ))
}

/// One transaction from `client` to `rcpts`: each RCPT reply, and the
/// reply to DATA's end when a recipient was accepted.
fn transaction(server: &Server, client: &str, from: &str, rcpts: &[&str]) -> Vec<String> {
    let mut c = Client::connect_from(server.smtp, client);
    assert!(c.cmd("EHLO mx.sender.example").starts_with("250"));
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    assert!(r.starts_with("250"), "{r}");
    let mut replies: Vec<String> = rcpts
        .iter()
        .map(|to| c.cmd(&format!("RCPT TO:<{to}>")))
        .collect();
    if replies.iter().any(|r| r.starts_with("250")) {
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(b"Subject: rate\r\n\r\nhello\r\n.\r\n");
        replies.push(c.reply());
    }
    replies
}

#[test]
fn messages_per_client_address_then_the_window_ends() {
    let (server, _tmp) = start("{ plugin = \"ratelimit\", key = \"client\", messages = \"2/3s\" }");
    let started = Instant::now();
    for _ in 0..2 {
        let r = transaction(
            &server,
            "127.0.0.2",
            "a@sender.example",
            &["alice@example.org", "bob@example.org"],
        );
        assert!(r.iter().all(|r| r.starts_with("250")), "{r:?}");
    }
    let r = transaction(
        &server,
        "127.0.0.2",
        "a@sender.example",
        &["alice@example.org"],
    );
    assert_eq!(r, ["450 4.7.1 Error: too much mail from 127.0.0.2\r\n"]);
    let log = server.wait_log("Error: too much mail from 127.0.0.2;");
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 450 4.7.1 Error: too much mail from \
             127.0.0.2; from=<a@sender.example> to=<alice@example.org> proto=ESMTP \
             helo=<mx.sender.example> plugin=ratelimit"
        ),
        "{log}"
    );
    // Another client has its own count.
    let r = transaction(
        &server,
        "127.0.0.3",
        "a@sender.example",
        &["alice@example.org"],
    );
    assert!(r[0].starts_with("250"), "{r:?}");
    // The window ends 3 s after the first message.
    std::thread::sleep(Duration::from_millis(3100).saturating_sub(started.elapsed()));
    let r = transaction(
        &server,
        "127.0.0.2",
        "a@sender.example",
        &["alice@example.org"],
    );
    assert!(r[0].starts_with("250"), "{r:?}");
    assert_eq!(wait_messages(&server.new_dir("alice"), 4).len(), 4);
}

#[test]
fn recipients_per_window_and_per_sender() {
    let (server, _tmp) = start(
        "{ plugin = \"ratelimit\", key = \"client\", recipients = \"3/1h\" }, \
         { plugin = \"ratelimit\", key = \"sender\", messages = \"1/1h\" }",
    );
    let r = transaction(
        &server,
        "127.0.0.2",
        "a@sender.example",
        &[
            "alice@example.org",
            "bob@example.org",
            "alice@example.org",
            "bob@example.org",
        ],
    );
    assert_eq!(r[..3], ["250 2.1.5 Ok\r\n"; 3]);
    assert_eq!(
        r[3],
        "450 4.7.1 Error: too many recipients from 127.0.0.2\r\n"
    );
    assert!(r[4].starts_with("250"), "{r:?}");
    // The sender's one message an hour is used, from any client.
    let r = transaction(
        &server,
        "127.0.0.3",
        "A@Sender.example",
        &["alice@example.org"],
    );
    assert_eq!(
        r,
        ["450 4.7.1 Error: too much mail from a@sender.example\r\n"]
    );
    server.wait_log("too much mail from a@sender.example;");
    let r = transaction(
        &server,
        "127.0.0.3",
        "b@sender.example",
        &["alice@example.org"],
    );
    assert!(r[0].starts_with("250"), "{r:?}");
}

#[test]
fn messages_per_sasl_user() {
    let (server, _tmp) = start_with(
        "smtpd_sasl_auth_enable = true\n",
        "{ plugin = \"ratelimit\", key = \"sasl_username\", messages = \"1/1h\" }",
    );
    let plain = "AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA=="; // \0alice@example.org\0secret
    let send = |login: bool| {
        let mut c = Client::connect_from(server.smtp, "127.0.0.2");
        assert!(c.cmd("EHLO mx.sender.example").starts_with("250"));
        if login {
            let r = c.cmd(&format!("AUTH PLAIN {plain}"));
            assert!(r.starts_with("235"), "{r}");
        }
        assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250"));
        c.cmd("RCPT TO:<bob@example.org>")
    };
    assert!(send(true).starts_with("250"));
    assert_eq!(
        send(true),
        "450 4.7.1 Error: too much mail from alice@example.org\r\n"
    );
    // A client that did not log in is not counted by this entry.
    assert!(send(false).starts_with("250"));
}
