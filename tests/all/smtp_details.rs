//! The smtpd details an operator coming from Postfix notices, each checked
//! against Postfix 3.7's smtpd: `530` to every command but HELO, EHLO,
//! STARTTLS, NOOP and QUIT under `smtpd_tls_security_level = encrypt`
//! (and no AUTH offered before TLS); the error count forgiven after a
//! delivered message; `500` for unknown verbs, empty lines and lines that
//! are not UTF-8; AUTH that relays only through `permit_sasl_authenticated`;
//! and `postern config -M` / `-P` listing the services and their
//! per-service overrides as `postconf -M` / `-P` do.

use std::process::Command;

use crate::service_overrides::{after_starttls, start};
use crate::support::{Client, POSTERN, Server, config_text, python, send_message, wait_messages};

const MUST_STARTTLS: &str = "530 5.7.0 Must issue a STARTTLS command first\r\n";

#[test]
fn encrypt_refuses_every_command_but_five_until_starttls() {
    let (server, _tmp) = start(
        // Many errors on purpose: no slow-down in the way.
        "smtpd_soft_error_limit = 50",
        "smtpd_tls_security_level = \"encrypt\"\nsmtpd_sasl_auth_enable = true",
    );
    let mut c = Client::connect(server.smtp);
    let ehlo = c.cmd("EHLO client.example");
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    // Not even on loopback: AUTH would be refused anyway.
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    for cmd in [
        "RSET",
        "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==",
        "MAIL FROM:<bob@example.org>",
        // The verb is refused before its arguments are looked at.
        "MAIL FROM:<not an address",
        "RCPT TO:<alice@example.org>",
        "DATA",
        "VRFY alice",
        "ETRN example.org",
        "HELP",
        // Refused without reading a chunk, as Postfix does.
        "BDAT 0 LAST",
    ] {
        assert_eq!(c.cmd(cmd), MUST_STARTTLS, "{cmd}");
    }
    // BDAT's chunk is not read: what follows it is a command.
    c.send(b"BDAT 6 LAST\r\nNOOP\r\n");
    assert_eq!(c.reply(), MUST_STARTTLS);
    assert_eq!(c.reply(), "250 2.0.0 Ok\r\n");
    // An unknown verb is unknown first.
    assert_eq!(
        c.cmd("BOGUS"),
        "500 5.5.2 Error: command not recognized\r\n"
    );
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(c.cmd("HELO client.example"), "250 mx.test.example\r\n");
    assert!(c.cmd("EHLO client.example").starts_with("250-"));
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    let log = server.wait_log("disconnect from ");
    assert!(
        log.contains(
            "helo=1 ehlo=2 auth=0/1 mail=0/2 rcpt=0/1 data=0/1 bdat=0/2 rset=0/1 noop=2 \
             vrfy=0/1 help=0/1 etrn=0/1 quit=1 unknown=0/1 commands=6/18"
        ),
        "{log}"
    );
    // After STARTTLS everything works, and AUTH is offered.
    let out = after_starttls(
        server.smtp,
        r#"print(s.has_extn("auth"), s.rset()[0], s.noop()[0])
s.login("alice@example.org", "secret")
print(s.sendmail("alice@example.org", ["bob@example.org"], b"Subject: tls\r\n\r\nok\r\n"))"#,
    );
    assert_eq!(out.trim(), "True 250 250\n{}");
    assert_eq!(wait_messages(&server.new_dir("bob"), 1).len(), 1);
}

#[test]
fn a_delivered_message_forgives_earlier_errors() {
    let (server, _tmp) = start(
        "smtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 10",
        "",
    );
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    for _ in 0..2 {
        assert!(c.cmd("BOGUS").starts_with("500 5.5.2"));
    }
    let r = send_message(
        &mut c,
        "bob@example.org",
        &["alice@example.org"],
        "Subject: forgiven\r\n\r\nok\r\n",
    );
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    // Without Postfix's reset the first of these would end the session.
    for _ in 0..2 {
        assert!(c.cmd("BOGUS").starts_with("500 5.5.2"));
    }
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    // The third error since the delivery does.
    assert!(c.cmd("BOGUS").starts_with("500 5.5.2"));
    assert_eq!(
        c.rest(),
        "421 4.7.0 mx.test.example Error: too many errors\r\n"
    );
}

#[test]
fn bad_utf8_empty_and_unknown_lines_get_postfix_replies() {
    // Many errors on purpose: no slow-down in the way.
    let (server, _tmp) = Server::start("smtpd_soft_error_limit = 50");
    let mut c = Client::connect(server.smtp);
    c.send(b"EHLO \xff\r\n");
    assert_eq!(c.reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n");
    // A lone continuation byte inside an address, an overlong encoding.
    c.send(b"MAIL FROM:<a\x80@example.org>\r\nNOOP \xc0\xaf\r\n");
    assert_eq!(c.reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n");
    assert_eq!(c.reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n");
    assert_eq!(c.cmd(""), "500 5.5.2 Error: bad syntax\r\n");
    assert_eq!(c.cmd(" \t "), "500 5.5.2 Error: bad syntax\r\n");
    // UTF-8, but no verb we know.
    assert_eq!(c.cmd("FOé"), "500 5.5.2 Error: command not recognized\r\n");
    // RFC 2034: no enhanced code in replies to HELO and EHLO.
    assert_eq!(c.cmd("EHLO"), "501 Syntax: EHLO hostname\r\n");
    assert_eq!(c.cmd("HELO"), "501 Syntax: HELO hostname\r\n");
    // Postfix's own words for these two.
    assert_eq!(c.cmd("ETRN"), "500 Syntax: ETRN domain\r\n");
    assert_eq!(
        c.cmd("AUTH"),
        "503 5.5.1 Error: authentication not enabled\r\n"
    );
    // Valid UTF-8 is fine where Postfix takes it: a HELO name.
    assert!(c.cmd("EHLO bücher.example").starts_with("250-"));
    // And a fine session follows.
    let r = send_message(
        &mut c,
        "bob@example.org",
        &["alice@example.org"],
        "Subject: after\r\n\r\nok\r\n",
    );
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    // Neither the lines that are not UTF-8 nor the empty ones are
    // commands in the disconnect line (Postfix counts neither).
    let log = server.wait_log("disconnect from ");
    assert!(
        log.contains(
            "helo=0/1 ehlo=2/3 auth=0/1 mail=1 rcpt=1 data=1 etrn=0/1 quit=1 unknown=0/1 \
             commands=6/11"
        ),
        "{log}"
    );
}

/// AUTH alone relays nothing: only `permit_sasl_authenticated` in the
/// lists turns a login into relay permission, as in Postfix.
#[test]
fn authenticated_relay_needs_permit_sasl_authenticated() {
    let (server, _tmp) = Server::start(
        "smtpd_sasl_auth_enable = true\n\
         [smtpd.restrictions]\n\
         recipient = [\"permit_mynetworks\", \"reject_unauth_destination\"]",
    );
    // From 127.0.0.2, outside mynetworks; loopback, so AUTH needs no TLS.
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10, source_address=("127.0.0.2", 0))
s.ehlo("client.example")
print(s.login("alice@example.org", "secret")[0])
s.mail("alice@example.org")
print(*s.rcpt("someone@remote.example"))
print(s.rcpt("bob@example.org")[0])
s.quit()
"#;
    let out = python(script, &[&server.smtp.port().to_string()]);
    assert_eq!(
        out.trim(),
        "235\n554 b'5.7.1 <someone@remote.example>: Relay access denied'\n250"
    );
}

fn postern_config(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(POSTERN)
        .arg("config")
        .args(args)
        .arg("--config")
        .arg(dir.join("postern.toml"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_lists_services_and_their_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "[[service]]\nname = \"submission\"\nlisten = \"127.0.0.1:2587\"\n\
                 smtpd_tls_security_level = \"encrypt\"\n\
                 smtpd_banner = \"$myhostname submission\"\n\
                 [service.restrictions]\n\
                 recipient = [\"permit_sasl_authenticated\", \"reject\"]\n";
    // The extra services go before the test smtp service (config_text's
    // last table), so they are written after its main.cf lines.
    let text = config_text(tmp.path(), "").replacen("[auth]\n", &format!("{extra}[auth]\n"), 1);
    std::fs::write(tmp.path().join("postern.toml"), text).unwrap();
    let (ok, out, err) = postern_config(tmp.path(), &["-M"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "submission inet  127.0.0.1:2587  submission \
         -o { smtpd_banner = mx.test.example submission } \
         -o smtpd_tls_security_level=encrypt \
         -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }\n\
         smtp       inet  127.0.0.1:0     smtp\n"
    );
    let (ok, out, err) = postern_config(tmp.path(), &["-P"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "submission/inet/smtpd_banner = mx.test.example submission\n\
         submission/inet/smtpd_tls_security_level = encrypt\n\
         submission/inet/smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n"
    );
    // One parameter of one service, as `postconf -P submission/inet/x`.
    let (ok, out, _) = postern_config(
        tmp.path(),
        &["-P", "submission/inet/smtpd_tls_security_level"],
    );
    assert!(ok);
    assert_eq!(out, "submission/inet/smtpd_tls_security_level = encrypt\n");
    // A service without overrides prints nothing and is no error; one
    // that does not exist is.
    let (ok, out, _) = postern_config(tmp.path(), &["-P", "smtp/inet"]);
    assert!(ok && out.is_empty(), "{out}");
    let (ok, out, err) = postern_config(tmp.path(), &["-M", "smtp", "pop3/inet"]);
    assert!(!ok);
    assert_eq!(out, "smtp       inet  127.0.0.1:0     smtp\n");
    assert!(
        err.contains("pop3/inet: no such service or per-service parameter"),
        "{err}"
    );
    // -M is a listing of its own.
    let (ok, _, err) = postern_config(tmp.path(), &["-M", "-n"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}
