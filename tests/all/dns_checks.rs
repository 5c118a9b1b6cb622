//! The DNS checks of the standard plugins in a running server, with real
//! SMTP sessions from loopback clients (only 127.0.0.1 is in `mynetworks`)
//! and a real name server of the test's own (hickory-server on 127.0.0.1)
//! serving a DNS block list and a domain list with TXT reasons, and mail
//! domains with MX, with only an address, with a null MX. Each refusal is
//! checked on the wire and in the `NOQUEUE: reject:` line, which names the
//! plugin and carries Postfix's text.
//!
//! The server's resolver answers the PTR of every 127.0.0.0/8 address
//! itself ("localhost", RFC 6761), and `localhost` is 127.0.0.1: so
//! 127.0.0.1 has a forward-confirmed name and 127.0.0.2 and up have a name
//! that does not resolve back to them. FCrDNS against PTR and A records
//! of a zone is tested through the runtime (host/policy/tests/all/dns_checks.rs).

use std::net::{Ipv4Addr, SocketAddr};

use crate::dns::{a, mx, txt};
use crate::support::*;

/// Zone `test.`; other names are refused (SERVFAIL to the server's
/// resolver). In `rbl.test`, 127.0.0.2 is listed (with a TXT reason) and
/// 127.0.0.6 has an answer outside the filter `127.0.0.[2..11]`.
fn start_dns() -> SocketAddr {
    let local = Ipv4Addr::new(127, 0, 0, 4);
    crate::dns::start(
        "test.",
        vec![
            a("good.test.", local),
            mx("mail.test.", 10, "good.test."),
            mx("null.test.", 0, "."),
            a("spam.test.", local),
            a("2.0.0.127.rbl.test.", Ipv4Addr::new(127, 0, 0, 2)),
            txt("2.0.0.127.rbl.test.", "listed for testing"),
            a("6.0.0.127.rbl.test.", Ipv4Addr::new(127, 0, 0, 20)),
            a("spam.test.dbl.test.", Ipv4Addr::new(127, 0, 1, 2)),
            txt("spam.test.dbl.test.", "spammy domain"),
        ],
    )
}

/// A server with the DNS checks of a typical `main.cf` in every list.
fn start() -> (Server, tempfile::TempDir) {
    let dns = start_dns();
    Server::start(&format!(
        "smtpd_client_restrictions = [\"permit_mynetworks\", \
         \"reject_rbl_client rbl.test=127.0.0.[2..11]\", \"reject_unknown_client_hostname\"]\n\
         smtpd_helo_restrictions = [\"reject_invalid_helo_hostname\", \
         \"reject_non_fqdn_helo_hostname\", \"reject_unknown_helo_hostname\"]\n\
         smtpd_sender_restrictions = [\"reject_non_fqdn_sender\", \
         \"reject_unknown_sender_domain\", \"reject_rhsbl_sender dbl.test\"]\n\
         smtpd_recipient_restrictions = [\"reject_non_fqdn_recipient\", \
         \"reject_unknown_recipient_domain\", \"permit_mynetworks\", \
         \"reject_unauth_destination\"]\n\
         [dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\n"
    ))
}

/// EHLO `helo`, MAIL FROM `from`, RCPT TO `to` from `client`: the RCPT
/// reply (the client, HELO and sender lists run at RCPT:
/// smtpd_delay_reject).
fn rcpt(server: &Server, client: &str, helo: &str, from: &str, to: &str) -> String {
    rcpt_from(server.smtp, client, helo, from, to).0
}

/// Asserts the RCPT reply and the NOQUEUE line of that refusal.
fn refused(server: &Server, session: [&str; 4], reply: &str, plugin: &str) {
    let [client, helo, from, to] = session;
    let r = rcpt(server, client, helo, from, to);
    assert_eq!(r, format!("{reply}\r\n"));
    let line = format!(
        "NOQUEUE: reject: RCPT from unknown[{client}]: {reply}; from=<{from}> to=<{to}> \
         proto=ESMTP helo=<{helo}> plugin={plugin}"
    );
    let log = server.wait_log(&line);
    assert!(log.contains(&line), "{log}");
}

#[test]
fn client_checks_dns_lists_and_forward_confirmed_names() {
    let (server, _tmp) = start();
    let ok = ["good.test", "a@good.test", "alice@example.org"];
    refused(
        &server,
        ["127.0.0.2", ok[0], ok[1], ok[2]],
        "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl.test; \
         listed for testing",
        "reject_rbl_client",
    );
    refused(
        &server,
        ["127.0.0.3", ok[0], ok[1], ok[2]],
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.3]",
        "reject_unknown_client_hostname",
    );
    server.wait_log(
        "warning: hostname localhost does not resolve to address 127.0.0.3, \
         plugin=reject_unknown_client_hostname",
    );
    // The list's answer for 127.0.0.6 is outside the filter: the next
    // entry decides.
    refused(
        &server,
        ["127.0.0.6", ok[0], ok[1], ok[2]],
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.6]",
        "reject_unknown_client_hostname",
    );
    let r = rcpt(&server, "127.0.0.1", ok[0], ok[1], ok[2]);
    assert!(r.starts_with("250"), "{r}");
}

#[test]
fn helo_sender_and_recipient_checks() {
    let (server, _tmp) = start();
    // The trusted client: the client list permits it, the others apply.
    let c = "127.0.0.1";
    let to = "alice@example.org";
    refused(
        &server,
        [c, "bad!name", "a@good.test", to],
        "501 5.5.2 <bad!name>: Helo command rejected: Invalid name",
        "reject_invalid_helo_hostname",
    );
    refused(
        &server,
        [c, "localhost", "a@good.test", to],
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
        "reject_non_fqdn_helo_hostname",
    );
    refused(
        &server,
        [c, "nowhere.test", "a@good.test", to],
        "450 4.7.1 <nowhere.test>: Helo command rejected: Host not found",
        "reject_unknown_helo_hostname",
    );
    refused(
        &server,
        [c, "good.test", "a@localhost", to],
        "504 5.5.2 <a@localhost>: Sender address rejected: need fully-qualified address",
        "reject_non_fqdn_sender",
    );
    refused(
        &server,
        [c, "good.test", "a@null.test", to],
        "550 5.7.27 <a@null.test>: Sender address rejected: Domain null.test does not accept \
         mail (nullMX)",
        "reject_unknown_sender_domain",
    );
    refused(
        &server,
        [c, "good.test", "a@gone.test", to],
        "450 4.1.8 <a@gone.test>: Sender address rejected: Domain not found",
        "reject_unknown_sender_domain",
    );
    // SERVFAIL (a name outside the server's zones): defer_if_permit,
    // which the end of the sender list turns into a deferral.
    refused(
        &server,
        [c, "good.test", "a@elsewhere.example", to],
        "450 4.1.8 <a@elsewhere.example>: Sender address rejected: Domain not found",
        "reject_unknown_sender_domain",
    );
    refused(
        &server,
        [c, "good.test", "a@spam.test", to],
        "554 5.7.1 Service unavailable; Sender address [a@spam.test] blocked using dbl.test; \
         spammy domain",
        "reject_rhsbl_sender",
    );
    refused(
        &server,
        [c, "good.test", "a@mail.test", "b@null.test"],
        "556 5.1.10 <b@null.test>: Recipient address rejected: Domain null.test does not \
         accept mail (nullMX)",
        "reject_unknown_recipient_domain",
    );
    // A mail domain with an MX and an address literal HELO pass, and the
    // message is delivered.
    let mut s = Client::connect_from(server.smtp, c);
    assert!(s.cmd("EHLO good.test").starts_with("250"));
    assert!(s.cmd("MAIL FROM:<a@mail.test>").starts_with("250"));
    let r = s.cmd(&format!("RCPT TO:<{to}>"));
    assert!(r.starts_with("250"), "{r}");
    assert!(s.cmd("DATA").starts_with("354"));
    s.send(b"Subject: hi\r\n\r\nhello\r\n.\r\n");
    let r = s.reply();
    assert!(r.starts_with("250"), "{r}");
    wait_messages(&server.new_dir("alice"), 1);
    let r = rcpt(&server, c, "[127.0.0.4]", "a@mail.test", to);
    assert!(r.starts_with("250"), "{r}");
}
