//! STARTTLS, smtps, AUTH and submission end to end: swaks (`--tls`,
//! `--tlsc`, `--auth PLAIN/LOGIN`), Python's smtplib (`starttls()`,
//! `login()`), `openssl s_client -starttls smtp`, the CVE-2011-0411
//! injection, failed logins, authenticated relay, and `postern user`.
//!
//! Every client here is on loopback, where AUTH is allowed without TLS
//! (`smtpd_tls_auth_only` exempts it); the refusal off loopback is tested
//! at the session level in host/smtp.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Client, POSTERN, Server, config_text, output_text, python, run_with_input, wait_messages,
};

/// The extra services every test here runs, and AUTH on smtp too.
const SERVICES: &str = "smtpd_sasl_auth_enable = true\n\
    auth_failure_delay = \"1s\"\n\
    auth_failure_limit = 2\n\
    [[service]]\nname = \"submission\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"smtps\"\nlisten = \"127.0.0.1:0\"\n";

fn swaks(args: &str) -> (bool, String) {
    let out = Command::new("swaks")
        .args(["--timeout", "20", "--helo", "client.test.example"])
        .args(args.split_whitespace())
        .output()
        .expect("swaks must be installed");
    let text = output_text(&out);
    (out.status.success(), text)
}

/// swaks's arguments to log in as alice.
const ALICE: &str = "--auth-user alice@example.org --auth-password secret";

#[test]
fn swaks_starttls_and_auth_plain_relay_from_an_untrusted_client() {
    let (server, _tmp) = Server::start(SERVICES);
    let smtp = server.smtp.to_string();
    // 127.0.0.2 is outside mynetworks: without AUTH, no relay.
    let (ok, out) = swaks(&format!(
        "--server {smtp} --local-interface 127.0.0.2 --tls \
         --from alice@example.org --to someone@remote.example"
    ));
    assert!(
        !ok && out.contains("554 5.7.1 <someone@remote.example>: Relay access denied"),
        "{out}"
    );
    // With AUTH, permit_sasl_authenticated lets it through.
    let (ok, out) = swaks(&format!(
        "--server {smtp} --local-interface 127.0.0.2 --tls --auth PLAIN {ALICE} \
         --from alice@example.org --to someone@remote.example"
    ));
    assert!(ok, "{out}");
    assert!(out.contains("235 2.7.0 Authentication successful"), "{out}");
    assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
    let log = server.wait_log("sasl_username=alice@example.org");
    assert!(
        log.contains(
            "client=unknown[127.0.0.2], sasl_method=PLAIN, sasl_username=alice@example.org"
        ),
        "{log}"
    );
    assert!(
        log.contains(
            "Anonymous TLS connection established from unknown[127.0.0.2]: TLSv1.3 with cipher TLS_"
        ),
        "{log}"
    );
}

#[test]
fn swaks_tlsc_on_smtps_with_auth_login_delivers_with_esmtpsa() {
    let (server, _tmp) = Server::start(SERVICES);
    let smtps = server.listening("smtps").to_string();
    let (ok, out) = swaks(&format!(
        "--server {smtps} --tlsc --auth LOGIN {ALICE} \
         --from alice@example.org --to bob@example.org"
    ));
    assert!(ok, "{out}");
    let m = wait_messages(&server.new_dir("bob"), 1);
    let text = String::from_utf8_lossy(&m[0]);
    assert!(text.contains("\t(using TLSv1.3 with cipher TLS_"), "{text}");
    assert!(text.contains("with ESMTPSA id"), "{text}");
    // smtps is submission: another user's address is refused.
    let (ok, out) = swaks(&format!(
        "--server {smtps} --tlsc --auth PLAIN {ALICE} \
         --from bob@example.org --to bob@example.org"
    ));
    assert!(!ok, "{out}");
    assert!(out.contains("553 5.7.1 <bob@example.org>: Sender address rejected: not owned by user alice@example.org"), "{out}");
}

#[test]
fn python_smtplib_starttls_login_on_submission() {
    let (server, _tmp) = Server::start(SERVICES);
    let sub = server.listening("submission");
    let script = r#"
import smtplib, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP(host, port, local_hostname="client.test.example") as s:
    s.ehlo()
    assert s.has_extn("starttls")
    try:
        s.sendmail("alice@example.org", ["bob@example.org"], "Subject: x\r\n\r\nno\r\n")
        raise SystemExit("sent without AUTH")
    except smtplib.SMTPSenderRefused as e:
        print(e.smtp_code, e.smtp_error.decode())
    s.starttls(context=ctx)
    s.ehlo()
    print(s.sock.version())
    code, _ = s.login("bob@example.org", "secret")
    print(code)
    s.sendmail("bob@example.org", ["alice@example.org"], "Subject: hi\r\n\r\nover TLS\r\n")
"#;
    let out = python(script, &["127.0.0.1", &sub.port().to_string()]);
    assert!(out.contains("530 5.7.0 Authentication required"), "{out}");
    assert!(out.contains("TLSv1.3\n235"), "{out}");
    let m = wait_messages(&server.new_dir("alice"), 1);
    assert!(String::from_utf8_lossy(&m[0]).contains("with ESMTPSA id"));
}

#[test]
fn openssl_s_client_starttls_smtp() {
    let (server, _tmp) = Server::start(SERVICES);
    let mut child = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-quiet", "-connect"])
        .arg(server.smtp.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // s_client has sent its own EHLO and STARTTLS; these go over TLS.
        std::thread::sleep(Duration::from_millis(500));
        stdin
            .write_all(b"EHLO client.test.example\r\nQUIT\r\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("250-AUTH PLAIN LOGIN"), "{text}");
    assert!(!text.contains("STARTTLS"), "{text}");
    assert!(text.contains("221 2.0.0 Bye"), "{text}");
}

#[test]
fn starttls_command_injection_is_discarded() {
    let (server, _tmp) = Server::start(SERVICES);
    let script = r#"
import socket, ssl, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
f = s.makefile("rb")
def reply():
    out = b""
    while True:
        line = f.readline()
        out += line
        if len(line) < 4 or line[3:4] != b"-":
            return out.decode()
reply()
s.sendall(b"EHLO client.test.example\r\n"); reply()
s.sendall(b"STARTTLS\r\nRSET\r\n")
print(reply().strip())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
tf = t.makefile("rb")
t.sendall(b"EHLO client.test.example\r\n")
print(tf.readline().decode().strip())
"#;
    let out = python(script, &["127.0.0.1", &server.smtp.port().to_string()]);
    assert_eq!(
        out, "220 2.0.0 Ready to start TLS\n250-mx.test.example\n",
        "the injected RSET was answered"
    );
    let log = server.wait_log("disconnect from");
    let line = log.lines().find(|l| l.contains("disconnect from")).unwrap();
    assert!(!line.contains("rset"), "{line}");
}

#[test]
fn auth_on_loopback_without_tls_and_failures_delayed_then_disconnected() {
    let (server, _tmp) = Server::start(SERVICES);
    let mut c = Client::connect(server.smtp);
    let ehlo = c.cmd("EHLO client.test.example");
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN"), "{ehlo}");
    // alice / wrong, as SASL PLAIN.
    let wrong = "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n";
    let start = Instant::now();
    let r = c.cmd(wrong);
    assert_eq!(
        r,
        "535 5.7.8 Error: authentication failed: authentication failure\r\n"
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
    c.send(format!("{wrong}\r\n").as_bytes());
    let rest = c.rest();
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "the second failure waits 2s"
    );
    assert_eq!(
        rest,
        "535 5.7.8 Error: authentication failed: authentication failure\r\n\
         421 4.7.0 mx.test.example Error: too many failed authentication attempts\r\n"
    );
    let log = server.log();
    assert!(!log.contains("AHdyb25n") && !log.contains("wrong"), "{log}");
    // A right password over plain text on loopback.
    let mut c = Client::connect(server.smtp);
    c.cmd("EHLO client.test.example");
    // bob / secret.
    let r = c.cmd("AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=");
    assert_eq!(r, "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn submission_refuses_mail_without_auth() {
    let (server, _tmp) = Server::start(SERVICES);
    let mut c = Client::connect(server.listening("submission"));
    c.cmd("EHLO client.test.example");
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org>"),
        "530 5.7.0 Authentication required\r\n"
    );
}

#[test]
fn user_cli_adds_changes_and_removes_users() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("users"), "# test users\n").unwrap();
    std::fs::write(dir.join("postern.toml"), config_text(dir, SERVICES)).unwrap();
    let config = dir.join("postern.toml");
    let user = |args: &[&str], stdin: &str| {
        let mut command = Command::new(POSTERN);
        command.arg("--config").arg(&config).arg("user").args(args);
        let out = run_with_input(&mut command, stdin.as_bytes());
        (out.status.success(), output_text(&out))
    };
    assert!(user(&["add", "carol@example.org", "--password-stdin"], "first\n").0);
    assert!(
        user(
            &["add", "dave@example.org", "--scheme", "SHA512-CRYPT"],
            "pw\n"
        )
        .0
    );
    let (ok, out) = user(&["add", "Carol@example.org"], "x\n");
    assert!(!ok && out.contains("already exists"), "{out}");
    assert!(user(&["passwd", "carol@example.org"], "second\n").0);
    assert!(user(&["del", "dave@example.org"], "").0);
    let (ok, out) = user(&["list"], "");
    assert!(ok);
    assert_eq!(out, "carol@example.org\n");
    let text = std::fs::read_to_string(dir.join("users")).unwrap();
    assert!(
        text.starts_with("# test users\ncarol@example.org:{ARGON2ID}$argon2id$"),
        "{text}"
    );
    assert!(!text.contains("second"));
    assert!(!out.contains("running server"), "no server runs yet: {out}");
    let server = Server::start_in(dir);
    let (ok, out) = swaks(&format!(
        "--server {} --tls --auth PLAIN --auth-user carol@example.org --auth-password second \
         --from carol@example.org --to postmaster@example.org --quit-after AUTH",
        server.smtp
    ));
    assert!(ok && out.contains("235 2.7.0"), "{out}");
}

#[test]
fn user_cli_changes_are_in_force_in_a_running_server_at_once() {
    let (server, tmp) = Server::start(SERVICES);
    let config = tmp.path().join("postern.toml");
    let user = |args: &[&str], stdin: &str| {
        let mut command = Command::new(POSTERN);
        command.arg("--config").arg(&config).arg("user").args(args);
        let out = run_with_input(&mut command, stdin.as_bytes());
        (out.status.success(), output_text(&out))
    };
    let login = |name: &str, password: &str| {
        swaks(&format!(
            "--server {} --auth PLAIN --auth-user {name} --auth-password {password} \
             --from {name} --to postmaster@example.org --quit-after AUTH",
            server.smtp
        ))
        .1
    };
    let rcpt = |to: &str| {
        let mut c = Client::connect(server.smtp);
        c.cmd("EHLO client.test.example");
        c.cmd("MAIL FROM:<someone@elsewhere.example>");
        c.cmd(&format!("RCPT TO:<{to}>"))
    };
    assert!(rcpt("erin@example.org").starts_with("550 5.1.1"));

    // Added: it logs in and gets mail at once, without a reload.
    let (ok, out) = user(&["add", "erin@example.org"], "first\n");
    assert!(ok, "{out}");
    assert!(out.contains("the running server re-read"), "{out}");
    assert!(login("erin@example.org", "first").contains("235 2.7.0"));
    assert!(rcpt("erin@example.org").starts_with("250"));

    // A new password replaces the old one at once.
    assert!(user(&["passwd", "erin@example.org"], "second\n").0);
    assert!(login("erin@example.org", "second").contains("235 2.7.0"));
    assert!(login("erin@example.org", "first").contains("535 5.7.8"));

    // Removed: unknown at RCPT, and no login.
    assert!(user(&["del", "erin@example.org"], "").0);
    assert!(rcpt("erin@example.org").starts_with("550 5.1.1"));
    assert!(login("erin@example.org", "second").contains("535 5.7.8"));
    assert!(server.log().contains("re-read: "), "{}", server.log());

    // A file broken by hand: the server keeps the users it had, and the
    // control socket says where the file is wrong.
    let users = tmp.path().join("users");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str("frank@example.org\n");
    std::fs::write(&users, text).unwrap();
    let mut control =
        std::os::unix::net::UnixStream::connect(tmp.path().join("queue/private/control")).unwrap();
    control
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    control.write_all(b"users\n").unwrap();
    let mut answer = String::new();
    control.read_to_string(&mut answer).unwrap();
    let users = users.display();
    assert_eq!(
        answer,
        format!("error\n{users}:3: missing password field after user \"frank@example.org\"\n")
    );
    assert!(login("alice@example.org", "secret").contains("235 2.7.0"));
}
