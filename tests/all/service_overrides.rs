//! Per-service settings (master.cf `-o`): a `[[service]]` entry overrides
//! smtpd parameters and restriction lists for itself only; a key it may
//! not set is a config error with file and line; and
//! `smtpd_tls_security_level = "encrypt"` refuses MAIL until STARTTLS.

use std::net::SocketAddr;
use std::path::Path;

use crate::support::{
    Client, Server, USERS, config_text, postern_check, python, rcpt_from, reload, wait_messages,
};

/// The test config whose last `[[service]]` (the test smtp service) gets
/// `service_keys` appended, after `extra` main.cf lines and services.
pub(crate) fn service_config(dir: &Path, extra: &str, service_keys: &str) -> String {
    format!("{}{service_keys}\n", config_text(dir, extra))
}

/// Starts a server on [`service_config`].
pub(crate) fn start(extra: &str, service_keys: &str) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let text = service_config(tmp.path(), extra, service_keys);
    std::fs::write(tmp.path().join("postern.toml"), text).unwrap();
    let server = Server::start_in(tmp.path());
    (server, tmp)
}

/// Python's smtplib against `addr`: EHLO, STARTTLS (any certificate) and
/// EHLO again, then `then` (Python lines with the session in `s`), then
/// QUIT; what it printed.
pub(crate) fn after_starttls(addr: SocketAddr, then: &str) -> String {
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
s.starttls(context=ctx)
s.ehlo("client.example")
{then}
s.quit()
"#
    );
    python(&script, &[&addr.port().to_string()])
}

/// Every address `listening on smtp`, in the order of the log.
pub(crate) fn smtp_addresses(server: &Server) -> Vec<SocketAddr> {
    let log = server.wait_log_count("listening on smtp ", 2);
    log.lines()
        .filter_map(|l| l.split("listening on smtp ").nth(1))
        .map(|a| a.trim().parse().unwrap())
        .collect()
}

/// A second smtp service, with no overrides, listed before the test one.
pub(crate) const PLAIN_SMTP: &str = "[[service]]\nname = \"smtp\"\nlisten = \"127.0.0.1:0\"\n";

/// The RCPT reply for alice@example.org from bob@example.org on the
/// service at `addr`.
pub(crate) fn rcpt_at(addr: SocketAddr) -> String {
    let (from, to) = ("bob@example.org", "alice@example.org");
    rcpt_from(addr, "127.0.0.1", "client.example", from, to).0
}

#[test]
fn a_service_overrides_parameters_for_itself_only() {
    let (server, _tmp) = start(
        PLAIN_SMTP,
        "message_size_limit = 2000\nsmtpd_banner = \"$myhostname ESMTP small\"\nsmtpd_client_message_rate_limit = 1\nsmtpd_client_event_limit_exceptions = \"\"",
    );
    let addrs = smtp_addresses(&server);
    let (plain, small) = (addrs[0], addrs[1]);
    let mut c = Client::connect_raw(small, "127.0.0.1");
    assert_eq!(c.reply(), "220 mx.test.example ESMTP small\r\n");
    assert!(c.cmd("EHLO client.example").contains("250-SIZE 2000\r\n"));
    assert!(
        c.cmd("MAIL FROM:<bob@example.org> SIZE=3000")
            .starts_with("552 5.3.4")
    );
    // The rate limit of 1 counts that MAIL; 127.0.0.1 is not exempt here.
    assert!(
        c.cmd("MAIL FROM:<bob@example.org>")
            .starts_with("450 4.7.1")
    );
    let mut d = Client::connect_raw(plain, "127.0.0.1");
    assert_eq!(d.reply(), "220 mx.test.example ESMTP\r\n");
    assert!(d.cmd("EHLO client.example").contains("250-SIZE 100000\r\n"));
    for _ in 0..3 {
        assert!(
            d.cmd("MAIL FROM:<bob@example.org> SIZE=3000")
                .starts_with("250")
        );
        assert!(d.cmd("RSET").starts_with("250"));
    }
}

#[test]
fn a_service_has_its_own_restriction_lists() {
    let (server, _tmp) = start(
        PLAIN_SMTP,
        "[service.restrictions]\nrecipient = [\"reject_unauth_destination\", \"reject\"]",
    );
    let addrs = smtp_addresses(&server);
    let (plain, strict) = (addrs[0], addrs[1]);
    let r = rcpt_at(strict);
    assert!(r.starts_with("5"), "{r}");
    assert!(rcpt_at(plain).starts_with("250"));
}

#[test]
fn encrypt_refuses_mail_until_starttls() {
    let (server, _tmp) = start("", "smtpd_tls_security_level = \"encrypt\"");
    let mut c = Client::connect(server.smtp);
    let ehlo = c.cmd("EHLO client.example");
    assert!(ehlo.contains("250-STARTTLS"), "{ehlo}");
    assert_eq!(
        c.cmd("MAIL FROM:<bob@example.org>"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    let out = after_starttls(
        server.smtp,
        r#"print(s.sendmail("bob@example.org", ["alice@example.org"], b"Subject: tls\r\n\r\nover tls\r\n"))"#,
    );
    assert_eq!(out.trim(), "{}");
    let m = wait_messages(&server.new_dir("alice"), 1);
    assert!(String::from_utf8_lossy(&m[0]).contains("over tls"));
}

#[test]
fn none_offers_no_starttls() {
    let (server, _tmp) = start("smtpd_tls_security_level = \"none\"", "");
    let mut c = Client::connect(server.smtp);
    let ehlo = c.cmd("EHLO client.example");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(c.cmd("STARTTLS").starts_with("502"));
}

/// `postern check` on `text` as the whole config: it must fail; its
/// stderr.
fn check(text: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("postern.toml");
    std::fs::write(&file, text).unwrap();
    let (ok, err) = postern_check(&file);
    assert!(!ok, "{err}");
    err
}

#[test]
fn bad_overrides_are_errors_with_file_and_line() {
    let err = check(
        "myhostname = \"mx.example.com\"\n\
         [[service]]\n\
         name = \"smtp\"\n\
         listen = \"127.0.0.1:2525\"\n\
         smtpd_bogus = 1\n\
         myhostname = \"other.example.com\"\n\
         message_size_limit = \"lots\"\n\
         [service.restrictions]\n\
         recipient = [\"permit\"]\n\
         sender = 5\n",
    );
    assert!(
        err.contains("postern.toml:5: service.smtpd_bogus: unknown key (a service takes name, listen, restrictions, and the smtpd parameters"),
        "{err}"
    );
    assert!(
        err.contains("postern.toml:6: service.myhostname: myhostname cannot be set per service"),
        "{err}"
    );
    assert!(
        err.contains("postern.toml:7: service.message_size_limit: expected a non-negative integer"),
        "{err}"
    );
    assert!(
        err.contains("postern.toml:9: service.smtp.restrictions: in the relay or recipient list"),
        "{err}"
    );
    assert!(
        err.contains(
            "postern.toml:10: service.restrictions.sender: expected a list of restrictions"
        ),
        "{err}"
    );
}

#[test]
fn a_service_lists_follow_reload() {
    let strict = "[service.restrictions]\nrecipient = [\"reject_unauth_destination\", \"reject\"]";
    let (server, tmp) = start(PLAIN_SMTP, strict);
    let addr = smtp_addresses(&server)[1];
    let rcpt = || rcpt_at(addr);
    assert!(rcpt().starts_with("5"));
    let file = tmp.path().join("postern.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "recipient = [\"reject_unauth_destination\", \"reject\"]",
        "recipient = [\"permit_mynetworks\", \"reject_unauth_destination\"]",
    );
    std::fs::write(&file, text).unwrap();
    reload(&file);
    server.wait_log("reload: service smtp restriction lists");
    assert!(rcpt().starts_with("250"));
}
