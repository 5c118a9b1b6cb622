//! The network and identity checks of the standard plugins in a running
//! server, with real SMTP sessions: `reject_multi_recipient_bounce`,
//! `reject_unlisted_recipient` over an operator's table, and
//! `permit_auth_destination`, each refusal checked on the wire and in the
//! reject line, which names the plugin and carries Postfix's text.

use crate::support::*;

/// A server whose recipient list is the checks, then `reject`; the users
/// table has alice only.
fn start() -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    std::fs::write(tmp.path().join("known"), "alice@example.org  ok\n").unwrap();
    let extra = format!(
        "smtpd_recipient_restrictions = [\"reject_multi_recipient_bounce\", \
         {{ plugin = \"reject_unlisted_recipient\", maps = \"known\" }}, \
         \"permit_auth_destination\", \"reject\"]\n\
         [tables.known]\ntype = \"hash\"\npath = \"{d}/known\"\n"
    );
    std::fs::write(
        tmp.path().join("postern.toml"),
        config_text(tmp.path(), &extra),
    )
    .unwrap();
    (Server::start_in(tmp.path()), tmp)
}

#[test]
fn bounces_unlisted_users_and_other_destinations_are_refused() {
    let (server, _tmp) = start();
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(c.cmd("EHLO mx.sender.example").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<>").starts_with("250"));
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        c.cmd("RCPT TO:<postmaster@example.org>"),
        "550 5.5.3 <>: Sender address rejected: Multi-recipient bounce\r\n"
    );
    let line = "reject: RCPT from unknown[127.0.0.2]: 550 5.5.3 <>: Sender address rejected: \
                Multi-recipient bounce; from=<> to=<postmaster@example.org> proto=ESMTP \
                helo=<mx.sender.example> plugin=reject_multi_recipient_bounce";
    let log = server.wait_log(line);
    assert!(log.contains(line), "{log}");

    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<s@sender.example>").starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<carol@example.org>"),
        "550 5.1.1 <carol@example.org>: Recipient address rejected: User unknown in local \
         recipient table\r\n"
    );
    let line = "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 550 5.1.1 <carol@example.org>: \
                Recipient address rejected: User unknown in local recipient table; \
                from=<s@sender.example> to=<carol@example.org> proto=ESMTP \
                helo=<mx.sender.example> plugin=reject_unlisted_recipient";
    let log = server.wait_log(line);
    assert!(log.contains(line), "{log}");

    // The trusted client may relay (the relay list permits it), but this
    // recipient list permits only our own domains.
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd("RCPT TO:<x@elsewhere.example>");
    assert!(r.starts_with("554 5.7.1 "), "{r}");
    server
        .wait_log("to=<x@elsewhere.example> proto=ESMTP helo=<client.test.example> plugin=reject");
}
