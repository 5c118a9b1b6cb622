//! The `check_*_access` plugins (access(5)) through a running server:
//! real SMTP sessions from an untrusted loopback address, a `hash:` table
//! named in the restriction list and declared by the server without a
//! `[tables.NAME]`, Postfix's replies, and the `NOQUEUE: reject:` line
//! naming the plugin.

use std::path::{Path, PathBuf};

use crate::support::*;

/// An access table in Postfix's source format, as the fixture's.
const ACCESS: &str = "\
# check_*_access table
127.0.0.3               REJECT
127.0.0.4               550 5.7.1 Your network is not welcome here
spammer.example.net     REJECT
.dot.example.net        REJECT dot form
badhelo.example.net     450 4.7.1 Try again later
friend.example.net      OK
<>                      550 5.7.1 No bounces here
blocked@example.org     REJECT No mail for you
quarantine.example.net  HOLD
postmaster@             OK
";

/// Starts a server whose `lists` (TOML lines) name `hash:DIR/access`
/// (written as `ACCESS`) where they say `@ACCESS@`.
fn start(lists: &str) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let access = tmp.path().join("access");
    std::fs::write(&access, ACCESS).unwrap();
    let lists = lists.replace("@ACCESS@", &format!("hash:{}", access.display()));
    test_config(tmp.path(), &lists);
    let server = Server::start_in(tmp.path());
    (server, tmp)
}

/// EHLO, MAIL, RCPT from `source`: the reply to RCPT (or the first
/// refusal before it).
fn rcpt(server: &Server, [source, helo, from, to]: [&str; 4]) -> String {
    let mut c = Client::connect_from(server.smtp, source);
    let r = c.cmd(&format!("EHLO {helo}"));
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    if !r.starts_with("250") {
        return r;
    }
    c.cmd(&format!("RCPT TO:<{to}>"))
}

/// MAIL FROM `from` to alice@example.org, from 127.0.0.2 (outside
/// mynetworks) with HELO c.example.net: the reply to RCPT.
fn from_outside(server: &Server, from: &str) -> String {
    rcpt(
        server,
        ["127.0.0.2", "c.example.net", from, "alice@example.org"],
    )
}

/// The refusal of joe@spammer.example.net by the sender access table.
const SPAMMER_REFUSED: &str =
    "554 5.7.1 <joe@spammer.example.net>: Sender address rejected: Access denied\r\n";

#[test]
fn client_access_rejects_by_address_and_names_the_plugin() {
    let (server, _tmp) =
        start("smtpd_client_restrictions = \"permit_mynetworks, check_client_access @ACCESS@\"");
    let r = rcpt(
        &server,
        [
            "127.0.0.3",
            "client.example.net",
            "a@example.net",
            "alice@example.org",
        ],
    );
    assert_eq!(
        r,
        "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: Access denied\r\n"
    );
    let log = server.wait_log("NOQUEUE: reject: RCPT from unknown[127.0.0.3]: ");
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.3]: 554 5.7.1 <unknown[127.0.0.3]>: \
             Client host rejected: Access denied; from=<a@example.net> to=<alice@example.org> \
             proto=ESMTP helo=<client.example.net> plugin=check_client_access"
        ),
        "{log}"
    );
    // A numeric reply with its own enhanced code.
    let r = rcpt(
        &server,
        [
            "127.0.0.4",
            "client.example.net",
            "a@example.net",
            "alice@example.org",
        ],
    );
    assert_eq!(
        r,
        "550 5.7.1 <unknown[127.0.0.4]>: Client host rejected: Your network is not welcome here\r\n"
    );
    // Not in the table: the list ends, permit.
    let r = rcpt(
        &server,
        [
            "127.0.0.2",
            "client.example.net",
            "a@example.net",
            "alice@example.org",
        ],
    );
    assert!(r.starts_with("250"), "{r}");
}

#[test]
fn reverse_client_and_helo_access() {
    let (server, _tmp) = start(
        "smtpd_helo_restrictions = \"check_helo_access @ACCESS@\"\n\
         smtpd_client_restrictions = [\"check_reverse_client_hostname_access @ACCESS@\"]",
    );
    let r = rcpt(
        &server,
        [
            "127.0.0.2",
            "badhelo.example.net",
            "a@example.net",
            "alice@example.org",
        ],
    );
    assert_eq!(
        r,
        "450 4.7.1 <badhelo.example.net>: Helo command rejected: Try again later\r\n"
    );
    server.wait_log("plugin=check_helo_access");
    // Parent domains match subdomains (Postfix's default).
    let r = rcpt(
        &server,
        [
            "127.0.0.2",
            "mx.spammer.example.net",
            "a@example.net",
            "alice@example.org",
        ],
    );
    assert_eq!(
        r,
        "554 5.7.1 <mx.spammer.example.net>: Helo command rejected: Access denied\r\n"
    );
    // The unverified client name: the address key decides.
    let r = rcpt(
        &server,
        [
            "127.0.0.4",
            "ok.example.net",
            "a@example.net",
            "alice@example.org",
        ],
    );
    assert!(
        r.starts_with("550 5.7.1 <")
            && r.contains(">: Unverified Client host rejected: Your network is not welcome here"),
        "{r}"
    );
}

#[test]
fn sender_access_with_the_null_sender_and_hold() {
    let (server, _tmp) = start("smtpd_sender_restrictions = \"check_sender_access @ACCESS@\"");
    let r = from_outside(&server, "joe@spammer.example.net");
    assert_eq!(r, SPAMMER_REFUSED);
    let r = from_outside(&server, "");
    assert_eq!(
        r,
        "550 5.7.1 <>: Sender address rejected: No bounces here\r\n"
    );
    let log = server.wait_log("Sender address rejected: No bounces here; from=<>");
    assert!(log.contains("plugin=check_sender_access"), "{log}");
    // `.dot.example.net` does not match while parent domains match
    // subdomains.
    let r = from_outside(&server, "x@a.dot.example.net");
    assert!(r.starts_with("250"), "{r}");
    // HOLD: accepted and logged as Postfix logs it.
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    c.cmd("EHLO c.example.net");
    send_accepted(
        &mut c,
        "q@quarantine.example.net",
        &["alice@example.org"],
        "Subject: held\r\n\r\nhi\r\n",
    );
    let log = server.wait_log(": hold: RCPT from ");
    assert!(
        log.contains("<q@quarantine.example.net>: Sender address triggers HOLD action"),
        "{log}"
    );
}

#[test]
fn recipient_access_strips_the_extension() {
    let (server, _tmp) = start(
        "smtpd_recipient_restrictions = [\"permit_mynetworks\", \
         { plugin = \"check_recipient_access\", table = \"@ACCESS@\", recipient_delimiter = \"+\" }, \
         \"reject_unauth_destination\"]",
    );
    let r = rcpt(
        &server,
        [
            "127.0.0.2",
            "c.example.net",
            "a@example.net",
            "blocked+tag@example.org",
        ],
    );
    assert_eq!(
        r,
        "554 5.7.1 <blocked+tag@example.org>: Recipient address rejected: No mail for you\r\n"
    );
    // user@ OK permits even what reject_unauth_destination would refuse.
    let r = rcpt(
        &server,
        [
            "127.0.0.2",
            "c.example.net",
            "a@example.net",
            "postmaster@elsewhere.example",
        ],
    );
    assert!(r.starts_with("250"), "{r}");
    let r = rcpt(
        &server,
        [
            "127.0.0.2",
            "c.example.net",
            "a@example.net",
            "bob@elsewhere.example",
        ],
    );
    assert_eq!(
        r,
        "554 5.7.1 <bob@elsewhere.example>: Relay access denied\r\n"
    );
}

/// `postern check` on the test config with `lists`, written to `dir`: it
/// must fail. Its stderr, the config's path and the line of the config
/// that names `check_sender_access`.
fn refused_at_load(dir: &Path, lists: &str) -> (String, PathBuf, usize) {
    let config = test_config(dir, lists);
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("check_sender_access"))
        .unwrap()
        + 1;
    let (ok, err) = postern_check(&config);
    assert!(!ok, "{err}");
    (err, config, line)
}

#[test]
fn an_unreadable_table_names_the_config_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (err, config, line) = refused_at_load(
        tmp.path(),
        "smtpd_sender_restrictions = \"\"\"\n    permit_mynetworks\n    check_sender_access hash:/nonexistent/access\n\"\"\"",
    );
    let want = format!(
        "{}:{line}: table hash:/nonexistent/access: ",
        config.display()
    );
    assert!(err.contains(&want), "want {want:?} in:\n{err}");
    assert!(err.contains("/nonexistent/access"), "{err}");
}

#[test]
fn an_answer_no_plugin_can_evaluate_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let access = tmp.path().join("access");
    std::fs::write(
        &access,
        "example.net   permit_mynetworks, reject_rbl_client zen.spamhaus.org\n",
    )
    .unwrap();
    let (err, _, line) = refused_at_load(
        tmp.path(),
        &format!(
            "smtpd_sender_restrictions = \"check_sender_access hash:{}\"",
            access.display()
        ),
    );
    assert!(
        err.contains(&format!(
            "postern.toml:{line}: smtpd.restrictions.sender: entry check_sender_access hash:{}: table hash:{}: key \"example.net\": ",
            access.display(),
            access.display()
        )) && err.contains("\"reject_rbl_client\" is neither an access(5) action"),
        "{err}"
    );
}

#[test]
fn reload_rereads_a_table_named_in_a_list() {
    let (server, tmp) = start("smtpd_sender_restrictions = \"check_sender_access @ACCESS@\"");
    let r = from_outside(&server, "joe@changed.example.net");
    assert!(r.starts_with("250"), "{r}");
    std::fs::write(
        tmp.path().join("access"),
        "changed.example.net   REJECT Changed our minds\n",
    )
    .unwrap();
    let config = tmp.path().join("postern.toml");
    reload(&config);
    server.wait_log("reload -- version");
    let r = from_outside(&server, "joe@changed.example.net");
    assert_eq!(
        r,
        "554 5.7.1 <joe@changed.example.net>: Sender address rejected: Changed our minds\r\n"
    );
    // A table that no longer parses keeps the running policy.
    std::fs::write(tmp.path().join("access"), "lonely\n").unwrap();
    let err = reload_refused(&config);
    assert!(
        err.contains("table hash:") && err.contains("access:1: expected"),
        "{err}"
    );
}

#[test]
fn a_table_alone_in_a_list_is_the_lists_access_check() {
    let (server, _tmp) = start("smtpd_sender_restrictions = \"permit_mynetworks, @ACCESS@\"");
    let r = from_outside(&server, "joe@spammer.example.net");
    assert_eq!(r, SPAMMER_REFUSED);
    server.wait_log("plugin=check_sender_access");
}

#[test]
fn main_cf_settings_reach_the_plugins() {
    let (server, _tmp) = start(
        "recipient_delimiter = \"+\"\n\
         access_map_reject_code = 550\n\
         smtpd_recipient_restrictions = \"check_recipient_access @ACCESS@, reject_unauth_destination\"",
    );
    let r = rcpt(
        &server,
        [
            "127.0.0.2",
            "c.example.net",
            "a@example.net",
            "blocked+x@example.org",
        ],
    );
    assert_eq!(
        r,
        "550 5.7.1 <blocked+x@example.org>: Recipient address rejected: No mail for you\r\n"
    );
}
