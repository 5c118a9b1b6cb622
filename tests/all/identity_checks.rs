//! The network and identity checks of the standard plugins in a running
//! server, with real SMTP sessions: `reject_multi_recipient_bounce`,
//! `reject_unlisted_recipient` over an operator's table and over the
//! server's own users, `reject_unlisted_sender`,
//! `reject_unknown_sender_domain`'s skip of our own domains,
//! `reject_unauth_pipelining`, and `permit_auth_destination`, each refusal
//! checked on the wire and in the reject line, which names the plugin and
//! carries Postfix's text.

use crate::support::*;

/// A server whose recipient list is the checks, then `reject`; the users
/// table has alice only.
fn start() -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    std::fs::write(tmp.path().join("known"), "alice@example.org  ok\n").unwrap();
    let extra = format!(
        "smtpd_recipient_restrictions = [\"reject_multi_recipient_bounce\", \
         {{ plugin = \"reject_unlisted_recipient\", maps = \"known\" }}, \
         \"permit_auth_destination\", \"reject\"]\n\
         [tables.known]\ntype = \"hash\"\npath = \"{d}/known\"\n"
    );
    test_config(tmp.path(), &extra);
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

/// A server with the host-fact checks: the unlisted checks over the
/// server's own users (alice and bob at the local example.org, carol at
/// the virtual virt.example), the unknown sender domain through the test
/// name server (authoritative for example.org, which has no records), and
/// `reject_unauth_pipelining` in the data list.
fn start_host_facts() -> (Server, tempfile::TempDir) {
    let dns = crate::dns::start("example.org.", Vec::new());
    let tmp = tempfile::tempdir().unwrap();
    let users = format!("{USERS}carol@virt.example:{{PLAIN}}secret::::\n");
    std::fs::write(tmp.path().join("users"), users).unwrap();
    let extra = format!(
        "smtpd_sender_restrictions = [\"reject_unlisted_sender\", \
         \"reject_unknown_sender_domain\"]\n\
         smtpd_recipient_restrictions = [\"reject_unlisted_recipient\", \
         \"permit_mynetworks\", \"reject_unauth_destination\"]\n\
         smtpd_data_restrictions = [\"reject_unauth_pipelining\"]\n\
         [dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\n"
    );
    std::fs::write(
        tmp.path().join("postern.toml"),
        config_text(tmp.path(), &extra),
    )
    .unwrap();
    (Server::start_in(tmp.path()), tmp)
}

#[test]
fn unlisted_users_are_refused_on_the_servers_own_view() {
    let (server, _tmp) = start_host_facts();
    // From the trusted address: the unlisted check comes before
    // permit_mynetworks, so it is the plugin that refuses, not the
    // server's own check after the lists.
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    // alice is ours: no DNS lookup for example.org (it has no MX and no
    // address, which would be "Domain not found").
    assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<nobody@example.org>"),
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local \
         recipient table\r\n"
    );
    server.wait_log(
        "reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <nobody@example.org>: Recipient \
         address rejected: User unknown in local recipient table; from=<alice@example.org> \
         to=<nobody@example.org> proto=ESMTP helo=<client.test.example> \
         plugin=reject_unlisted_recipient",
    );
    assert_eq!(
        c.cmd("RCPT TO:<nobody@virt.example>"),
        "550 5.1.1 <nobody@virt.example>: Recipient address rejected: User unknown in virtual \
         mailbox table\r\n"
    );
    let r = c.cmd("RCPT TO:<carol@virt.example>");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd("RCPT TO:<bob@example.org>");
    assert!(r.starts_with("250"), "{r}");

    // A made-up sender at our own domain.
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<ghost@example.org>").starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.org>"),
        "550 5.1.0 <ghost@example.org>: Sender address rejected: User unknown in local \
         recipient table\r\n"
    );
    server.wait_log(
        "reject: RCPT from unknown[127.0.0.1]: 550 5.1.0 <ghost@example.org>: Sender address \
         rejected: User unknown in local recipient table; from=<ghost@example.org> \
         to=<alice@example.org> proto=ESMTP helo=<client.test.example> \
         plugin=reject_unlisted_sender",
    );
    // A domain that is not ours is looked up, and not found.
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<s@gone.example.org>").starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.org>"),
        "450 4.1.8 <s@gone.example.org>: Sender address rejected: Domain not found\r\n"
    );
    // The null sender passes the sender checks.
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<>").starts_with("250"));
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("250"), "{r}");
}

#[test]
fn commands_before_the_greeting_are_refused_at_data() {
    let (server, _tmp) = start_host_facts();
    // A bot: EHLO and MAIL before the greeting, in one write.
    let mut c = Client::connect_raw(server.smtp, "127.0.0.2");
    c.send(b"EHLO bot.test.example\r\nMAIL FROM:<>\r\n");
    assert!(c.reply().starts_with("220 "));
    assert!(c.reply().starts_with("250-"));
    assert!(c.reply().starts_with("250 "));
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        c.cmd("DATA"),
        "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining\r\n"
    );
    server.wait_log("improper command pipelining after ");
    server.wait_log(
        "reject: DATA from unknown[127.0.0.2]: 503 5.5.0 <DATA>: Data command rejected: \
         Improper use of SMTP command pipelining; from=<> to=<alice@example.org> proto=ESMTP \
         helo=<bot.test.example> plugin=reject_unauth_pipelining",
    );
    assert!(c.cmd("QUIT").starts_with("221"));

    // A client that waits for each reply, and pipelines only where
    // RFC 2920 allows it, gets its message through.
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(c.cmd("EHLO mx.sender.example").starts_with("250"));
    c.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    let r = c.reply();
    assert!(r.starts_with("354"), "{r}");
    let r = c.cmd("Subject: hi\r\n\r\nhello\r\n.");
    assert!(r.starts_with("250"), "{r}");
}
