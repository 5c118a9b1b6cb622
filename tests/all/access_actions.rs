//! access(5) actions that change the transaction rather than the reply,
//! and the access maps keyed by what only the server knows, through a
//! running server: DISCARD ends the restriction lists, accepts the message
//! with 250 and throws it away (logged `discard:`), as Postfix does;
//! HANGUP closes the connection with `421 4.7.0` (logged `hangup:`); INFO
//! and WARN log Postfix's `info:` and `warn:` lines and go on;
//! `check_sasl_access` looks up the SASL login name, and
//! `check_reverse_client_hostname_a_access` the addresses of the client's
//! unverified reverse name.

use std::net::SocketAddr;

use crate::support::*;

/// The sender table: one sender to discard, one friend; anything else is
/// refused by the `reject` that follows the table in the list.
const ACCESS: &str = "\
discard@bad.example     DISCARD spam run
good@friend.example     OK
hangup@bad.example      HANGUP go away
info@watch.example      INFO sender watched
warn@watch.example      WARN sender suspicious
";

fn start() -> (Server, tempfile::TempDir) {
    start_with_table(ACCESS, |table| {
        format!(
            "smtpd_sender_restrictions = [\"check_sender_access {table}\", \"reject\"]\n\
             smtpd_recipient_restrictions = [\"permit_auth_destination\", \"reject\"]\n"
        )
    })
}

/// Starts a server whose table file holds `entries`, with the
/// restriction lists `lists` makes of the table's name (`hash:PATH`).
fn start_with_table(
    entries: &str,
    lists: impl FnOnce(&str) -> String,
) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("table");
    std::fs::write(&table, entries).unwrap();
    let lists = lists(&format!("hash:{}", table.display()));
    test_config(tmp.path(), &lists);
    (Server::start_in(tmp.path()), tmp)
}

/// The `[dns]` section that sends every lookup to the test name server.
fn dns_section(dns: SocketAddr) -> String {
    format!("[dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\n")
}

/// A client from 127.0.0.2 (outside mynetworks) that said EHLO `helo`
/// and had MAIL FROM `from` accepted.
fn mail_from(server: &Server, helo: &str, from: &str) -> Client {
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    let r = c.cmd(&format!("EHLO {helo}"));
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    assert!(r.starts_with("250"), "{r}");
    c
}

/// One table entry judged by one plugin: a server whose `list` (a
/// restriction list's name) is `[plugin TABLE]`, the table holding
/// `entry`, names resolved by `dns`; MAIL FROM `from` then RCPT TO alice
/// must be answered `reply`, and the refusal logged with the plugin.
fn refuses(dns: SocketAddr, list: &str, plugin: &str, entry: &str, from: &str, reply: &str) {
    let (server, _tmp) = start_with_table(entry, |table| {
        format!(
            "smtpd_{list}_restrictions = [\"{plugin} {table}\"]\n{}",
            dns_section(dns)
        )
    });
    let mut c = mail_from(&server, "mx.sender.example", from);
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>"), reply);
    server.wait_log(&format!("plugin={plugin}"));
}

#[test]
fn discard_ends_the_lists_and_throws_the_message_away() {
    let (server, _tmp) = start();
    let mut c = mail_from(&server, "mx.bad.example", "discard@bad.example");
    // The sender list's `reject` after the table is never reached.
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("250"), "{r}");
    server.wait_log(
        "discard: RCPT from unknown[127.0.0.2]: <discard@bad.example>: Sender address spam \
         run; from=<discard@bad.example> to=<alice@example.org> proto=ESMTP \
         helo=<mx.bad.example>",
    );
    // No more lists for this message: not even the recipient list, whose
    // `reject` refuses every other destination (nor the relay list); the
    // message goes nowhere anyway.
    let r = c.cmd("RCPT TO:<someone@elsewhere.example>");
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd("Subject: discarded\r\n\r\nspam\r\n.");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert!(c.cmd("QUIT").starts_with("221"));

    // A friend's message afterwards is the only one alice gets.
    let mut c = mail_from(&server, "mx.friend.example", "good@friend.example");
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("250"), "{r}");
    // Without DISCARD the lists go on as usual.
    let r = c.cmd("RCPT TO:<someone@elsewhere.example>");
    assert!(r.starts_with("554 5.7.1 "), "{r}");
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd("Subject: welcome\r\n\r\nhello\r\n.");
    assert!(r.starts_with("250"), "{r}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Subject: welcome"), "{text}");
    assert!(!server.log().contains("Subject: discarded"));
}

#[test]
fn check_sasl_access_refuses_a_login_by_name() {
    let (server, _tmp) = start_with_table(
        "alice@example.org  REJECT Account locked, call the help desk\n",
        |table| {
            format!(
                "smtpd_sasl_auth_enable = true\n\
                 smtpd_sender_restrictions = [\"check_sasl_access {table}\"]\n"
            )
        },
    );
    let login = |plain: &str| {
        let mut c = Client::connect_from(server.smtp, "127.0.0.2");
        assert!(c.cmd("EHLO mx.sender.example").starts_with("250"));
        let r = c.cmd(&format!("AUTH PLAIN {plain}"));
        assert!(r.starts_with("235"), "{r}");
        assert!(c.cmd("MAIL FROM:<x@sender.example>").starts_with("250"));
        c.cmd("RCPT TO:<bob@example.org>")
    };
    // \0alice@example.org\0secret
    assert_eq!(
        login("AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA=="),
        "554 5.7.1 <alice@example.org>: SASL login name rejected: Account locked, call the \
         help desk\r\n"
    );
    server.wait_log(
        "reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <alice@example.org>: SASL login name \
         rejected: Account locked, call the help desk; from=<x@sender.example> \
         to=<bob@example.org> proto=ESMTP helo=<mx.sender.example> plugin=check_sasl_access",
    );
    // \0bob@example.org\0secret: not in the table.
    let r = login("AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=");
    assert!(r.starts_with("250"), "{r}");
}

/// A server whose sender list checks the sender domain's mail exchangers
/// and whose HELO list the HELO name's addresses, against one table,
/// with the test name server for `test.`: spam.test's MX is
/// mx1.bulk.test (198.51.100.7), plain.test has 192.0.2.50 and no MX.
fn start_server_access() -> (Server, tempfile::TempDir) {
    use crate::dns::{a, mx};
    let dns = crate::dns::start(
        "test.",
        vec![
            mx("spam.test.", 10, "mx1.bulk.test."),
            a("mx1.bulk.test.", "198.51.100.7".parse().unwrap()),
            a("plain.test.", "192.0.2.50".parse().unwrap()),
            a("good.test.", "192.0.2.60".parse().unwrap()),
        ],
    );
    start_with_table(
        "198.51.100  REJECT Bulk mailer network\n192.0.2.50  REJECT Listed host\n",
        |t| {
            format!(
                "smtpd_helo_restrictions = [\"check_helo_a_access {t}\"]\n\
                 smtpd_sender_restrictions = [\"check_sender_mx_access {t}\"]\n{}",
                dns_section(dns)
            )
        },
    )
}

#[test]
fn mx_and_a_access_judge_the_hosts_behind_a_domain() {
    let (server, _tmp) = start_server_access();
    let rcpt =
        |helo: &str, from: &str| mail_from(&server, helo, from).cmd("RCPT TO:<alice@example.org>");
    assert_eq!(
        rcpt("good.test", "a@spam.test"),
        "554 5.7.1 <a@spam.test>: Sender address rejected: Bulk mailer network\r\n"
    );
    server.wait_log(
        "reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <a@spam.test>: Sender address \
         rejected: Bulk mailer network; from=<a@spam.test> to=<alice@example.org> \
         proto=ESMTP helo=<good.test> plugin=check_sender_mx_access",
    );
    assert_eq!(
        rcpt("plain.test", "a@good.test"),
        "554 5.7.1 <plain.test>: Helo command rejected: Listed host\r\n"
    );
    server.wait_log("plugin=check_helo_a_access");
    // good.test has no MX: its own address (not in the table) is judged.
    let r = rcpt("good.test", "a@good.test");
    assert!(r.starts_with("250"), "{r}");
    // The null sender has no domain to judge.
    let r = rcpt("good.test", "");
    assert!(r.starts_with("250"), "{r}");
}

#[test]
fn ns_access_judges_a_domain_by_its_closest_name_servers() {
    use hickory_server::proto::rr::RData;
    use hickory_server::proto::rr::rdata::NS;
    // shady.test is served by ns1.shady.test; www.shady.test has no NS
    // of its own (it does not even exist), so its parent's count.
    let dns = crate::dns::start(
        "shady.test.",
        vec![
            (
                crate::dns::name("shady.test."),
                RData::NS(NS(crate::dns::name("ns1.shady.test."))),
            ),
            crate::dns::a("ns1.shady.test.", "203.0.113.53".parse().unwrap()),
        ],
    );
    refuses(
        dns,
        "sender",
        "check_sender_ns_access",
        "203.0.113.53  REJECT Bad hosting\n",
        "a@www.shady.test",
        "554 5.7.1 <a@www.shady.test>: Sender address rejected: Bad hosting\r\n",
    );
}

#[test]
fn hangup_closes_the_connection_with_421() {
    let (server, _tmp) = start();
    let mut c = mail_from(&server, "mx.bad.example", "hangup@bad.example");
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.org>"),
        "421 4.7.0 go away\r\n"
    );
    // The server closed the connection: nothing more comes.
    assert_eq!(c.rest(), "");
    server.wait_log(
        "NOQUEUE: hangup: RCPT from unknown[127.0.0.2]: go away; from=<hangup@bad.example> \
         to=<alice@example.org> proto=ESMTP helo=<mx.bad.example> plugin=check_sender_access",
    );
    assert!(
        !server
            .log()
            .contains("reject: RCPT from unknown[127.0.0.2]: 421")
    );
}

#[test]
fn info_and_warn_log_postfix_lines_and_go_on() {
    let (server, _tmp) = start();
    for (who, what, text) in [
        ("info", "info", "sender watched"),
        ("warn", "warn", "sender suspicious"),
    ] {
        let from = format!("{who}@watch.example");
        let mut c = mail_from(&server, "mx.watch.example", &from);
        // The list goes on to its `reject`.
        let r = c.cmd("RCPT TO:<alice@example.org>");
        assert!(r.starts_with("554 5.7.1 Access denied"), "{r}");
        // Postfix's log_whatsup, exactly (smtpd_check.c).
        server.wait_log(&format!(
            "NOQUEUE: {what}: RCPT from unknown[127.0.0.2]: {text}; from=<{from}> \
             to=<alice@example.org> proto=ESMTP helo=<mx.watch.example>\n"
        ));
        server.wait_log(&format!(
            "reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 Access denied; from=<{from}>"
        ));
    }
}

#[test]
fn reverse_client_hostname_a_access_judges_the_ptr_names_addresses() {
    // The resolver answers for loopback itself (RFC 6761): 127.0.0.2's
    // PTR name is `localhost`, whose address is 127.0.0.1.
    refuses(
        crate::dns::start("test.", vec![]),
        "client",
        "check_reverse_client_hostname_a_access",
        "127.0.0.1  REJECT Loopback names are not welcome\n",
        "a@sender.example",
        "554 5.7.1 <unknown[127.0.0.2]>: Unverified Client host rejected: Loopback names are \
         not welcome\r\n",
    );
}
