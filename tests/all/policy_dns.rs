//! `[dns] nameservers`: a plugin's lookups in a real server go to the
//! name server the config names, here hickory-server on an ephemeral
//! 127.0.0.1 port (UDP and TCP) serving an in-memory zone (`dns`).

use std::net::{Ipv4Addr, SocketAddr};

use crate::dns;
use crate::policy_tables::guest_config;
use crate::support::*;

/// A name server for zone `test.`: `mail.test` has an A, an MX and a TXT
/// record.
fn start_dns() -> SocketAddr {
    dns::start(
        "test.",
        vec![
            dns::a("mail.test.", Ipv4Addr::new(192, 0, 2, 10)),
            dns::mx("mail.test.", 10, "mx1.test."),
            dns::txt("mail.test.", "v=spf1 -all"),
        ],
    )
}

#[test]
fn plugins_resolve_through_the_configured_name_server() {
    let dns = start_dns();
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        "smtpd_helo_restrictions = [{{ plugin = \"test_lookup\", check = \"dns\" }}]\n\
         [dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\n"
    );
    guest_config(tmp.path(), "test_lookup", &extra);
    let server = Server::start_in(tmp.path());

    // The helo list runs at RCPT (smtpd_delay_reject); the guest's
    // answer is a warn, which the session logs. The PTR of 127.0.0.1 is
    // answered by the resolver itself (RFC 6761 localhost).
    let rcpt = |helo: &str| {
        let mut c = Client::connect(server.smtp);
        assert!(c.cmd(&format!("EHLO {helo}")).starts_with("250"));
        assert!(
            c.cmd("MAIL FROM:<s@client.test.example>")
                .starts_with("250")
        );
        let r = c.cmd("RCPT TO:<alice@example.org>");
        assert!(r.starts_with("250"), "{r}");
    };
    rcpt("mail.test");
    let log = server.wait_log("mx=[\"10 mx1.test\"]");
    assert!(
        log.contains(
            "a=[\"192.0.2.10\"] aaaa=[] mx=[\"10 mx1.test\"] txt=[\"v=spf1 -all\"] ptr=[\"localhost\"]"
        ),
        "{log}"
    );
    rcpt("missing.test");
    let log = server.wait_log("a=nxdomain");
    assert!(
        log.contains("a=nxdomain aaaa=nxdomain mx=nxdomain txt=nxdomain"),
        "{log}"
    );
}
