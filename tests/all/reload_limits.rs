//! `message_size_limit`, the session limits, the queue's timers, the
//! local delivery agent's rules and the failed-login limits follow
//! `postern reload`, as they follow `postfix reload`: the limits in every
//! service that has them at once (SMTP, LMTP, IMAP APPEND, the pickup
//! behind `postern sendmail`), the timers for the next attempt of mail
//! already queued, `recipient_delimiter` at RCPT and in delivery alike,
//! `auth_failure_limit` at the next failed login; and the reload names
//! none of them as taking a restart.

use std::path::Path;

use crate::sendmail_modes::sendmail;
use crate::support::*;

/// An SMTP, an LMTP and an IMAP service.
const SERVICES: &str = "[[service]]\nname = \"lmtp\"\nlisten = \"127.0.0.1:0\"\n\
                        [[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n";

/// A message of about 180 KB: over the test config's
/// `message_size_limit` of 100000 and over the pickup's limit of that
/// and 64 KiB for its envelope, under the reloaded 300000.
const BIG_LINES: usize = 180;

/// One SMTP transaction with three recipients and the big message, one
/// LMTP transaction with one, one IMAP APPEND of it: what each server
/// advertised and answered, a line each.
const CLIENTS: &str = r#"
import imaplib, smtplib, sys
smtp_port, lmtp_port, imap_port, lines = map(int, sys.argv[1:5])
big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * lines

def data(c, message):
    try:
        return c.data(message)[0]
    except smtplib.SMTPDataError as e:
        return e.smtp_code

s = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30)
s.ehlo("client.test.example")
print("smtp size", s.esmtp_features.get("size"))
s.mail("bob@sender.test")
codes = [s.rcpt(r)[0] for r in ("alice@example.org", "bob@example.org", "alice@example.org")]
print("smtp rcpt", *codes)
print("smtp data", data(s, big))
s.quit()

l = smtplib.LMTP("127.0.0.1", lmtp_port, timeout=30)
l.ehlo("mx.sender.test")
print("lmtp size", l.esmtp_features.get("size"))
l.mail("bob@sender.test")
l.rcpt("alice@example.org")
print("lmtp data", data(l, big))
l.quit()

m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30)
m.login("alice@example.org", "secret")
typ, detail = m.append("INBOX", None, None, big)
print("imap append", typ, detail[0].decode())
m.logout()
"#;

/// The clients' lines for the server's services.
fn clients(server: &Server) -> String {
    let ports = [
        server.smtp.port(),
        server.listening("lmtp").port(),
        server.listening("imap").port(),
    ];
    let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
    let lines = BIG_LINES.to_string();
    let mut args: Vec<&str> = ports.iter().map(String::as_str).collect();
    args.push(&lines);
    python(CLIENTS, &args)
}

/// The test config with `message_size_limit = 300000` and a recipient
/// limit of two, written over the running one.
fn raise_limits(dir: &Path) {
    let text = config_text(dir, &format!("smtpd_recipient_limit = 2\n{SERVICES}"))
        .replace("message_size_limit = 100000", "message_size_limit = 300000");
    std::fs::write(dir.join("postern.toml"), text).unwrap();
}

/// `postern reload`, which must apply everything: no warning of a
/// change that takes a restart.
fn reload_quietly(config: &Path) {
    let out = postern_run(config, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// `postern sendmail` of the big message to alice; its exit status and
/// what it said.
fn sendmail_big(config: &Path) -> (bool, String) {
    let body = format!(
        "Subject: by sendmail\n\n{}",
        format!("{}\n", "y".repeat(998)).repeat(BIG_LINES)
    );
    let out = sendmail(
        config,
        &["-f", "bob@sender.test", "alice@example.org"],
        &body,
        false,
    );
    (out.status.success(), output_text(&out))
}

#[test]
fn message_size_and_session_limits_follow_a_reload() {
    let (server, tmp) = Server::start(SERVICES);
    let config = tmp.path().join("postern.toml");

    let before = clients(&server);
    for line in [
        "smtp size 100000",
        "smtp rcpt 250 250 250",
        "smtp data 552",
        "lmtp size 100000",
        "lmtp data 552",
        "imap append NO [TOOBIG] Literal too large.",
    ] {
        assert!(before.contains(line), "{line:?} in:\n{before}");
    }

    // The file says 300000 already (so sendmail's own check passes),
    // the daemon not yet: its pickup refuses.
    raise_limits(tmp.path());
    let (sent, said) = sendmail_big(&config);
    assert!(!sent && said.contains("larger than the limit"), "{said}");

    reload_quietly(&config);
    server.wait_log("reload -- version");

    let after = clients(&server);
    for line in [
        "smtp size 300000",
        // smtpd_recipient_limit = 2: the third is told to wait.
        "smtp rcpt 250 250 452",
        "smtp data 250",
        "lmtp size 300000",
        "lmtp data 250",
        "imap append OK",
    ] {
        assert!(after.contains(line), "{line:?} in:\n{after}");
    }
    let (sent, said) = sendmail_big(&config);
    assert!(sent, "{said}");
    // Stored, each whole: the SMTP copy, the LMTP copy, the APPENDed
    // one and the one sendmail handed over (the IMAP session moved those
    // before it from new/ to cur/, as Dovecot's does).
    let maildir = tmp.path().join("mail/example.org/alice/Maildir");
    let sizes = || {
        let mut all = messages(&maildir.join("new"));
        all.extend(messages(&maildir.join("cur")));
        all.iter().map(Vec::len).collect::<Vec<_>>()
    };
    let start = std::time::Instant::now();
    while sizes().len() < 4 && start.elapsed() < WAIT {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sizes = sizes();
    assert!(
        sizes.len() == 4 && sizes.iter().all(|n| *n > 180_000),
        "{sizes:?}"
    );
}

/// A message deferred under the default five days expires at its next
/// attempt once a reload has cut `maximal_queue_lifetime` to a second:
/// its sender gets the bounce.
#[test]
fn queue_timers_follow_a_reload() {
    let (server, tmp) = Server::start("relayhost = \"[127.0.0.1]:1\"\n");
    let config = tmp.path().join("postern.toml");
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "alice@example.org",
        &["friend@elsewhere.example"],
        "Subject: slow letter\r\nFrom: alice@example.org\r\n\r\nthe body\r\n",
    );
    let id = queued_id(&r);
    server.wait_log(&format!("{id}: to=<friend@elsewhere.example>"));
    assert!(server.wait_log("status=deferred").contains(&id));

    std::fs::write(
        &config,
        config_text(
            tmp.path(),
            "relayhost = \"[127.0.0.1]:1\"\n\
             maximal_queue_lifetime = \"1s\"\n\
             minimal_backoff_time = \"1s\"\n\
             maximal_backoff_time = \"1s\"\n\
             queue_run_delay = \"1s\"\n",
        ),
    )
    .unwrap();
    reload_quietly(&config);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    flush(tmp.path());
    let bounce = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&bounce[0]);
    assert!(text.starts_with("Return-Path: <>\r\n"), "{text}");
    assert!(text.contains("Status: 5.4.7"), "{text}");
    server.wait_log(&format!("{id}: removed"));
}

/// `recipient_delimiter` follows a reload, at RCPT and in delivery alike:
/// `alice+lists` is unknown without it, alice's with it.
#[test]
fn recipient_delimiter_follows_a_reload() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let (unknown, _) = rcpt_from(
        server.smtp,
        "127.0.0.1",
        "client.test.example",
        "bob@sender.test",
        "alice+lists@example.org",
    );
    assert!(unknown.starts_with("550 5.1.1"), "{unknown}");

    std::fs::write(
        &config,
        config_text(tmp.path(), "recipient_delimiter = \"+\""),
    )
    .unwrap();
    reload_quietly(&config);

    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "bob@sender.test",
        &["alice+lists@example.org"],
        "Subject: to the list address\r\n\r\nhi\r\n",
    );
    assert!(r.starts_with("250"), "{r}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(
        text.contains("Delivered-To: alice+lists@example.org"),
        "{text}"
    );
}

/// `auth_failure_limit` follows a reload: a client that could fail five
/// times is disconnected at its next failure once the limit is one.
#[test]
fn auth_failure_limit_follows_a_reload() {
    const AUTH: &str = "smtpd_sasl_auth_enable = true\nauth_failure_delay = \"0s\"\n";
    // alice / wrong, as SASL PLAIN.
    const WRONG: &str = "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n";
    const FAILED: &str = "535 5.7.8 Error: authentication failed: authentication failure\r\n";
    let (server, tmp) = Server::start(AUTH);
    let config = tmp.path().join("postern.toml");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert_eq!(c.cmd(WRONG), FAILED);
    assert!(c.cmd("NOOP").starts_with("250"));

    std::fs::write(
        &config,
        config_text(tmp.path(), &format!("{AUTH}auth_failure_limit = 1\n")),
    )
    .unwrap();
    reload_quietly(&config);
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    c.send(format!("{WRONG}\r\n").as_bytes());
    assert_eq!(
        c.rest(),
        format!(
            "{FAILED}421 4.7.0 mx.test.example Error: too many failed authentication attempts\r\n"
        )
    );
}
