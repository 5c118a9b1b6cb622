//! The `spf` plugin in a running server: real SMTP sessions from
//! 127.0.0.1 and 127.0.0.2, and a real name server (hickory-server on
//! loopback, the harness of `dns`) serving SPF records that pass, fail,
//! softfail, include, redirect, use `mx` and `a`, loop, exceed the 10
//! lookups, and a name it refuses (SERVFAIL). Refusals are checked on the
//! wire and in the `NOQUEUE: reject:` line; accepted messages carry the
//! Received-SPF header in the delivered Maildir file, or with `Header_Type`
//! an Authentication-Results header (RFC 8601), at RCPT or, for both
//! fields, at the end of data, where a forged Authentication-Results
//! field bearing our authserv-id is logged (`warn:`).

use std::net::Ipv4Addr;

use crate::dns;
use crate::support::*;

/// The zone `test.`: the client 127.0.0.2 is authorized by `pass.test`,
/// `incl.test` (through an include), `redir.test` (a redirect) and
/// `mx.test` (its `a:`), 127.0.0.3 by `mx.test`'s MX; `fail.test`
/// authorizes nobody, with an explanation; `loop.test` includes itself;
/// `many.test` needs 11 lookups.
fn start_dns() -> std::net::SocketAddr {
    let mut records = vec![
        dns::txt("pass.test.", "v=spf1 ip4:127.0.0.2 -all"),
        dns::txt("fail.test.", "v=spf1 ip4:192.0.2.1 -all exp=why.fail.test"),
        dns::txt("why.fail.test.", "%{i} is not one of %{d}'s senders"),
        dns::txt("soft.test.", "v=spf1 ip4:192.0.2.1 ~all"),
        dns::txt("incl.test.", "v=spf1 include:pass.test -all"),
        dns::txt("redir.test.", "v=spf1 redirect=pass.test"),
        dns::txt("mx.test.", "v=spf1 mx a:host.mx.test/32 -all"),
        dns::mx("mx.test.", 10, "mail.mx.test."),
        dns::a("mail.mx.test.", Ipv4Addr::new(127, 0, 0, 3)),
        dns::a("host.mx.test.", Ipv4Addr::new(127, 0, 0, 2)),
        dns::txt("loop.test.", "v=spf1 include:loop.test -all"),
    ];
    let many: Vec<String> = (1..=11).map(|n| format!("a:h{n}.many.test")).collect();
    records.push(dns::txt(
        "many.test.",
        &format!("v=spf1 {} -all", many.join(" ")),
    ));
    for n in 1..=11 {
        records.push(dns::a(
            &format!("h{n}.many.test."),
            Ipv4Addr::new(192, 0, 2, n),
        ));
    }
    dns::start("test.", records)
}

/// A server whose recipient list ends with the SPF entry (after
/// `reject_unauth_destination`, as policyd-spf is placed; no
/// `permit_mynetworks`, so that 127.0.0.1 is checked too). The entry's
/// deadline is raised from 250 ms: a plugin's first call in a debug
/// server, while the other tests compile plugins on a loaded 2-core
/// machine, once took longer (its DNS time does not count).
fn start() -> (Server, tempfile::TempDir) {
    start_with(
        "smtpd_recipient_restrictions = [\"reject_unauth_destination\", \
         { plugin = \"spf\", PermError_reject = \"True\", TempError_Defer = \"True\", \
         Authserv_Id = \"mx.test.example\", deadline = \"5s\" }]",
    )
}

/// A server with these restriction lists and the zone's name server.
fn start_with(lists: &str) -> (Server, tempfile::TempDir) {
    let dns = start_dns();
    Server::start(&format!(
        "{lists}\n[dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\n"
    ))
}

/// EHLO client.test, MAIL FROM `from` and RCPT TO alice from `client`:
/// the RCPT reply and the session.
fn rcpt(server: &Server, client: &str, from: &str) -> (String, Client) {
    rcpt_helo(server, client, "client.test", from)
}

/// The same with EHLO `helo`.
fn rcpt_helo(server: &Server, client: &str, helo: &str, from: &str) -> (String, Client) {
    rcpt_from(server.smtp, client, helo, from, "alice@example.org")
}

/// Asserts the refusal on the wire and in the log.
fn refused(server: &Server, client: &str, from: &str, reply: &str) {
    let (r, _) = rcpt(server, client, from);
    assert_eq!(r, format!("{reply}\r\n"), "{}", server.log());
    let line = format!(
        "NOQUEUE: reject: RCPT from unknown[{client}]: {reply}; from=<{from}> \
         to=<alice@example.org> proto=ESMTP helo=<client.test> plugin=spf"
    );
    let log = server.wait_log(&line);
    assert!(log.contains(&line), "{log}");
}

/// Sends a message whose RCPT is accepted; the delivered file's text.
fn delivered(server: &Server, client: &str, from: &str, n: usize) -> String {
    let (r, mut c) = rcpt(server, client, from);
    assert!(r.starts_with("250"), "{from} from {client}: {r}");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(format!("Subject: from {from} via {client}\r\n\r\nhello\r\n.\r\n").as_bytes());
    let r = c.reply();
    assert!(r.starts_with("250"), "{r}");
    let got = wait_messages(&server.new_dir("alice"), n);
    let subject = format!("Subject: from {from} via {client}\r\n");
    got.iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains(&subject))
        .unwrap()
}

#[test]
fn spf_results_refuse_or_mark_the_message() {
    let (server, _tmp) = start();
    let rejected = "550 5.7.23 <alice@example.org>: Recipient address rejected: \
                    Message rejected due to: ";
    // fail, with the domain's explanation (exp=), and the default one.
    refused(
        &server,
        "127.0.0.2",
        "bob@fail.test",
        &format!("{rejected}127.0.0.2 is not one of fail.test's senders"),
    );
    refused(
        &server,
        "127.0.0.1",
        "bob@pass.test",
        &format!(
            "{rejected}SPF fail - not authorized. Please see \
             http://www.open-spf.org/Why?s=mfrom;id=bob@pass.test;ip=127.0.0.1;r=mx.test.example"
        ),
    );
    // A record that includes itself and one of 11 lookups: permerror,
    // refused as configured (PermError_reject).
    refused(
        &server,
        "127.0.0.2",
        "bob@loop.test",
        "550 5.7.24 <alice@example.org>: Recipient address rejected: Message rejected due \
         to: SPF permerror: more than 10 DNS lookups (RFC 7208 4.6.4)",
    );
    refused(
        &server,
        "127.0.0.2",
        "bob@many.test",
        "550 5.7.24 <alice@example.org>: Recipient address rejected: Message rejected due \
         to: SPF permerror: more than 10 DNS lookups (RFC 7208 4.6.4)",
    );
    // SERVFAIL (a name outside the server's zone): temperror, deferred.
    refused(
        &server,
        "127.0.0.2",
        "bob@elsewhere.example",
        "451 4.7.24 <alice@example.org>: Recipient address rejected: SPF temporary error: \
         DNS error looking up TXT elsewhere.example",
    );

    // Accepted: the Received-SPF header above the server's Received.
    let header = |result: &str, client: &str, from: &str, mechanism: &str| {
        format!(
            "Received-SPF: {result} (mx.test.example: domain of {from} {}) \
             client-ip={client}; envelope-from=\"{from}\"; helo=client.test; \
             receiver=mx.test.example; identity=mailfrom; mechanism=\"{mechanism}\";\r\n",
            match result {
                "pass" => format!("designates {client} as permitted sender"),
                _ => format!("does not designate {client} as permitted sender (transitioning)"),
            }
        )
    };
    let cases = [
        ("pass", "127.0.0.2", "bob@pass.test", "ip4:127.0.0.2"),
        ("pass", "127.0.0.2", "bob@incl.test", "include:pass.test"),
        ("pass", "127.0.0.2", "bob@redir.test", "ip4:127.0.0.2"),
        ("pass", "127.0.0.3", "bob@mx.test", "mx"),
        ("pass", "127.0.0.2", "bob@mx.test", "a:host.mx.test/32"),
        ("softfail", "127.0.0.2", "bob@soft.test", "~all"),
    ];
    for (n, (result, client, from, mechanism)) in cases.iter().enumerate() {
        let text = delivered(&server, client, from, n + 1);
        let want = header(result, client, from, mechanism);
        // Above the server's Received header (below the delivery's
        // Return-Path and Delivered-To).
        let at = text.find(&want);
        let received = text.find("\r\nReceived: from client.test");
        assert!(at.is_some() && at < received, "{want}\n{text}");
    }
}

#[test]
fn bad_arguments_stop_the_load() {
    let tmp = tempfile::tempdir().unwrap();
    let stderr = check_refuses(
        tmp.path(),
        "smtpd_recipient_restrictions = [\"reject_unauth_destination\", \
         { plugin = \"spf\", Mail_From_reject = \"sometimes\" }]\n",
        "spf",
    );
    assert!(
        stderr.contains("Mail_From_reject: \"sometimes\": expected SPF_Not_Pass"),
        "{stderr}"
    );
}

#[test]
fn the_helo_identity_and_the_null_sender() {
    let (server, _tmp) = start();
    // A HELO name whose record does not list the client: refused
    // (HELO_reject = Fail), whatever the sender.
    let (r, _) = rcpt_helo(&server, "127.0.0.2", "fail.test", "bob@pass.test");
    assert_eq!(
        r,
        "550 5.7.23 <alice@example.org>: Recipient address rejected: Message rejected due \
         to: 127.0.0.2 is not one of fail.test's senders\r\n"
    );
    // The null sender is checked as postmaster@HELO (RFC 7208 §2.4): a
    // bounce from a host its HELO name authorizes passes, with a header
    // for the HELO identity.
    let (r, mut c) = rcpt_helo(&server, "127.0.0.2", "pass.test", "");
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: bounce\r\n\r\nhello\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(
        text.contains(
            "Received-SPF: pass (mx.test.example: domain of postmaster@pass.test designates \
             127.0.0.2 as permitted sender) client-ip=127.0.0.2; envelope-from=\"\"; \
             helo=pass.test; receiver=mx.test.example; identity=helo; \
             mechanism=\"ip4:127.0.0.2\";\r\n"
        ),
        "{text}"
    );
    // ... and one from a host it does not authorize is refused.
    let (r, _) = rcpt_helo(&server, "127.0.0.1", "pass.test", "");
    assert!(r.starts_with("550 5.7.23 "), "{r}");
}

/// The header block of a delivered message: up to the empty line.
fn header_block(text: &str) -> &str {
    text.split("\r\n\r\n").next().unwrap_or(text)
}

#[test]
fn authentication_results_instead_of_received_spf() {
    let (server, _tmp) = start_with(
        "smtpd_recipient_restrictions = [\"reject_unauth_destination\", \
         { plugin = \"spf\", Header_Type = \"AR\", Authserv_Id = \"mx.test.example\", \
         deadline = \"5s\" }]",
    );
    let text = delivered(&server, "127.0.0.2", "bob@pass.test", 1);
    let head = header_block(&text);
    let want = "\r\nAuthentication-Results: mx.test.example; spf=pass smtp.mailfrom=pass.test\r\n";
    let at = head.find(want);
    let received = head.find("\r\nReceived: from client.test");
    assert!(at.is_some() && at < received, "{want}\n{text}");
    assert!(!head.contains("Received-SPF:"), "{text}");
    let text = delivered(&server, "127.0.0.2", "bob@soft.test", 2);
    assert!(
        header_block(&text).contains(
            "\r\nAuthentication-Results: mx.test.example; spf=softfail smtp.mailfrom=soft.test\r\n"
        ),
        "{text}"
    );
    // The null sender: the HELO identity decided (smtp.helo).
    let (r, mut c) = rcpt_helo(&server, "127.0.0.2", "pass.test", "");
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: bounce\r\n\r\nhello\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    let got = wait_messages(&server.new_dir("alice"), 3);
    let bounce = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("Subject: bounce"))
        .unwrap();
    assert!(
        header_block(&bounce).contains(
            "\r\nAuthentication-Results: mx.test.example; spf=pass smtp.helo=pass.test\r\n"
        ),
        "{bounce}"
    );
    // A fail is still refused at RCPT.
    refused(
        &server,
        "127.0.0.2",
        "bob@fail.test",
        "550 5.7.23 <alice@example.org>: Recipient address rejected: Message rejected due \
         to: 127.0.0.2 is not one of fail.test's senders",
    );
}

#[test]
fn both_fields_at_the_end_of_data_and_a_forged_one_is_logged() {
    let (server, _tmp) = start_with(
        "smtpd_end_of_data_restrictions = [{ plugin = \"spf\", Header_Type = \"Both\", \
         Authserv_Id = \"mx.test.example\", deadline = \"5s\" }]",
    );
    // A message that claims our own verdict for a bank.
    let (r, mut c) = rcpt(&server, "127.0.0.2", "bob@pass.test");
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(
        b"Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=bank.example\r\n\
          Subject: forged\r\n\r\nhello\r\n.\r\n",
    );
    let r = c.reply();
    assert!(r.starts_with("250"), "{r}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    let head = header_block(&text);
    let ours = head
        .find("\r\nAuthentication-Results: mx.test.example; spf=pass smtp.mailfrom=pass.test\r\n");
    let received_spf = head.find(
        "\r\nReceived-SPF: pass (mx.test.example: domain of bob@pass.test designates \
         127.0.0.2 as permitted sender) client-ip=127.0.0.2;",
    );
    let received = head.find("\r\nReceived: from client.test");
    let forged =
        head.find("\r\nAuthentication-Results: mx.test.example; spf=pass smtp.mailfrom=bank");
    assert!(
        ours.is_some() && received_spf.is_some() && ours < received && received_spf < received,
        "{text}"
    );
    // The forged field stays (the message import cannot remove one) but
    // below ours, and the log says so.
    assert!(forged > received, "{text}");
    let log = server.wait_log("authserv-id mx.test.example arrived with the message");
    let line = log
        .lines()
        .find(|l| l.contains("arrived with the message"))
        .unwrap();
    assert!(
        line.contains(
            "warn: END-OF-MESSAGE from unknown[127.0.0.2]: 1 Authentication-Results field(s)"
        ),
        "{line}"
    );

    // A fail is refused after the final dot.
    let (r, mut c) = rcpt(&server, "127.0.0.2", "bob@fail.test");
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: refused\r\n\r\nhello\r\n.\r\n");
    let r = c.reply();
    assert_eq!(
        r,
        "550 5.7.23 Message rejected due to: 127.0.0.2 is not one of fail.test's senders\r\n"
    );
}
