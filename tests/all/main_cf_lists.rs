//! A typical Postfix main.cf's restriction lists, as written, in a
//! Postern config (issue 6, item 5): the lists of
//! `fixtures/postfix/full-server/main.cf`, pasted as TOML multi-line
//! strings (continuation lines, comment lines, commas or newlines between
//! entries, `check_*_access hash:...` with its table), old names such as
//! `reject_invalid_hostname` included.
//!
//! Restrictions whose plugins are not built yet (the DNS and syntax checks
//! of other issue items) are taken out of the running server's lists, and
//! listed when the test runs; the verbatim lists are checked with
//! `postern check`, which must either accept them or name the first
//! missing plugin and its config line.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::support::*;

/// The fixture's restriction lists, in TOML; `@ACCESS@` is the access
/// table's path.
const LISTS: &str = r#"smtpd_client_restrictions = """
    permit_mynetworks,
    check_client_access hash:@ACCESS@,
#   reject_rbl_client zen.spamhaus.org,
#   reject_rbl_client bl.spamcop.net,
    permit"""
smtpd_helo_required = "yes"
smtpd_helo_restrictions = """
    permit_mynetworks,
    check_helo_access hash:@ACCESS@,
    reject_invalid_hostname,
    reject_unknown_hostname,
    reject_non_fqdn_hostname,
    permit"""
smtpd_sender_restrictions = """
    permit_mynetworks,
    check_sender_access hash:@ACCESS@,
    reject_unknown_sender_domain,
    reject_non_fqdn_sender"""
smtpd_recipient_restrictions = """
    permit_mynetworks
    permit_sasl_authenticated
    check_recipient_access hash:@ACCESS@
    reject_non_fqdn_recipient
    reject_unauth_destination
    permit_auth_destination
    reject"""
"#;

/// The fixture's access table, and one loopback address for the client
/// check (the fixture's 192.0.2.66 cannot connect over loopback).
const ACCESS: &str = "\
192.0.2.66              REJECT
198.51.100              REJECT Your network is not welcome here
spammer.example.org     REJECT
.spam.example.org       554 5.7.1 Go away
friend.example.net      OK
abuse@                  OK
postmaster@example.com  OK
badhelo.example.org     450 4.7.1 Try again later
info@example.com        DUNNO
quarantine.example.org  HOLD
127.0.0.66              REJECT
";

/// The restriction names of the lists, old names with the plugin each
/// stands for.
const NAMES: &[(&str, &str)] = &[
    ("reject_invalid_hostname", "reject_invalid_helo_hostname"),
    ("reject_unknown_hostname", "reject_unknown_helo_hostname"),
    ("reject_non_fqdn_hostname", "reject_non_fqdn_helo_hostname"),
    (
        "reject_unknown_sender_domain",
        "reject_unknown_sender_domain",
    ),
    ("reject_non_fqdn_sender", "reject_non_fqdn_sender"),
    ("reject_non_fqdn_recipient", "reject_non_fqdn_recipient"),
    ("permit_auth_destination", "permit_auth_destination"),
];

/// The plugins of `NAMES` this build does not embed (`postern plugin
/// list`).
fn missing(config: &std::path::Path) -> Vec<(&'static str, &'static str)> {
    let out = Command::new(POSTERN)
        .arg("--config")
        .arg(config)
        .args(["plugin", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    let embedded: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    NAMES
        .iter()
        .filter(|(_, plugin)| !embedded.contains(plugin))
        .copied()
        .collect()
}

fn write_config(dir: &std::path::Path, lists: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("access"), ACCESS).unwrap();
    let lists = lists.replace("@ACCESS@", &dir.join("access").display().to_string());
    test_config(dir, &lists)
}

#[test]
fn the_verbatim_lists_load_or_name_the_missing_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), LISTS);
    let missing = missing(&config);
    let out = Command::new(POSTERN)
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let Some((old, new)) = missing.first() else {
        assert!(out.status.success(), "{err}");
        return;
    };
    println!("plugins not built yet: {missing:?}");
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text.lines().position(|l| l.contains(old)).unwrap() + 1;
    assert!(
        err.contains(&format!("postern.toml:{line}:")) && err.contains(new),
        "want line {line} and {new} in:\n{err}"
    );
}

#[test]
fn the_lists_decide_as_postfix_would() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = write_config(tmp.path(), "");
    let missing = missing(&probe);
    // Without the plugins not built yet: their lines taken out.
    let lists: String = LISTS
        .lines()
        .filter(|l| {
            !missing
                .iter()
                .any(|(old, _)| l.trim().trim_end_matches(',') == *old)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    // The DNS checks ask a name server of the test's own: the HELO name
    // and the sender domain used below exist, unknown.example.net not.
    let dns = crate::dns::start(
        "example.net.",
        vec![
            crate::dns::a("mx.friend.example.net.", Ipv4Addr::new(192, 0, 2, 10)),
            crate::dns::a("friend.example.net.", Ipv4Addr::new(192, 0, 2, 10)),
            crate::dns::mx("friend.example.net.", 10, "mx.friend.example.net."),
        ],
    );
    let lists = format!("{lists}[dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\n");
    write_config(tmp.path(), &lists);
    let server = Server::start_in(tmp.path());
    let session = |source: &str, helo: &str, from: &str, to: &str| {
        let mut c = Client::connect_from(server.smtp, source);
        let r = c.cmd(&format!("EHLO {helo}"));
        assert!(r.starts_with("250"), "{r}");
        let r = c.cmd(&format!("MAIL FROM:<{from}>"));
        if !r.starts_with("250") {
            return r;
        }
        c.cmd(&format!("RCPT TO:<{to}>"))
    };
    // permit_mynetworks first in every list: anything goes from mynetworks.
    let r = session(
        "127.0.0.1",
        "badhelo.example.org",
        "x@spammer.example.org",
        "alice@example.org",
    );
    assert!(r.starts_with("250"), "{r}");
    // The client list, by address.
    let r = session(
        "127.0.0.66",
        "mx.friend.example.net",
        "a@friend.example.net",
        "alice@example.org",
    );
    assert_eq!(
        r,
        "554 5.7.1 <unknown[127.0.0.66]>: Client host rejected: Access denied\r\n"
    );
    // The HELO list.
    let r = session(
        "127.0.0.2",
        "badhelo.example.org",
        "a@friend.example.net",
        "alice@example.org",
    );
    assert_eq!(
        r,
        "450 4.7.1 <badhelo.example.org>: Helo command rejected: Try again later\r\n"
    );
    // An old name at work: reject_unknown_hostname is
    // reject_unknown_helo_hostname.
    if !missing
        .iter()
        .any(|(old, _)| *old == "reject_unknown_hostname")
    {
        let r = session(
            "127.0.0.2",
            "unknown.example.net",
            "a@friend.example.net",
            "alice@example.org",
        );
        assert_eq!(
            r,
            "450 4.7.1 <unknown.example.net>: Helo command rejected: Host not found\r\n"
        );
        server.wait_log("plugin=reject_unknown_helo_hostname");
    }
    // The sender list: a parent domain matches its subdomains.
    let r = session(
        "127.0.0.2",
        "mx.friend.example.net",
        "x@mail.spammer.example.org",
        "alice@example.org",
    );
    assert_eq!(
        r,
        "554 5.7.1 <x@mail.spammer.example.org>: Sender address rejected: Access denied\r\n"
    );
    // The recipient list: OK relays, DUNNO goes on to
    // reject_unauth_destination.
    let r = session(
        "127.0.0.2",
        "mx.friend.example.net",
        "a@friend.example.net",
        "postmaster@example.com",
    );
    assert!(r.starts_with("250"), "{r}");
    let r = session(
        "127.0.0.2",
        "mx.friend.example.net",
        "a@friend.example.net",
        "info@example.com",
    );
    assert_eq!(r, "554 5.7.1 <info@example.com>: Relay access denied\r\n");
    let log = server.wait_log("Relay access denied; from=<a@friend.example.net>");
    assert!(log.contains("plugin=reject_unauth_destination"), "{log}");
    // A local recipient from outside: permit_auth_destination, or the
    // final reject while it is not built.
    let r = session(
        "127.0.0.2",
        "mx.friend.example.net",
        "a@friend.example.net",
        "alice@example.org",
    );
    if missing.iter().any(|(_, p)| *p == "permit_auth_destination") {
        assert!(r.starts_with("554 5.7.1 "), "{r}");
    } else {
        assert!(r.starts_with("250"), "{r}");
    }
}
