//! The files behind TLS and AUTH: a certificate from
//! `smtpd_tls_cert_file`/`smtpd_tls_key_file` swapped by `postern reload`,
//! the self-signed one kept across restarts, and a users-file line with a
//! scheme we cannot check.

use std::path::Path;
use std::time::Instant;

use crate::support::{
    Client, Server, WAIT, check_refuses, postern_run, python, reload, test_config,
};

/// The DER of the certificate the server at `port` presents after
/// STARTTLS, as hex.
fn served_certificate(port: u16) -> String {
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.starttls(context=ctx)
    print(s.sock.getpeercert(binary_form=True).hex())
"#;
    python(script, &[&port.to_string()]).trim().to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a fresh self-signed pair for `name` to dir/cert.pem, dir/key.pem;
/// returns the certificate's DER as hex.
fn write_pair(dir: &Path, name: &str) -> String {
    let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
    hex(c.cert.der())
}

#[test]
fn configured_certificate_is_served_and_reloaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = write_pair(dir, "a.test.example");
    let d = dir.display();
    let extra =
        format!("smtpd_tls_cert_file = \"{d}/cert.pem\"\nsmtpd_tls_key_file = \"{d}/key.pem\"\n");
    let config = test_config(dir, &extra);
    let server = Server::start_in(dir);
    assert_eq!(served_certificate(server.smtp.port()), first);

    let second = write_pair(dir, "b.test.example");
    reload(&config);
    let start = Instant::now();
    while served_certificate(server.smtp.port()) != second {
        assert!(
            start.elapsed() < WAIT,
            "the new certificate was never served"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A broken pair on reload keeps the running certificate.
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    postern_run(&config, &["reload"]);
    server.wait_log("TLS reload failed, keeping the running certificate");
    assert_eq!(served_certificate(server.smtp.port()), second);
}

#[test]
fn self_signed_certificate_survives_a_restart() {
    let (server, tmp) = Server::start("");
    let cert = tmp.path().join("tls/cert.pem");
    assert!(cert.exists());
    let before = served_certificate(server.smtp.port());
    server.kill();
    let server = Server::start_in(tmp.path());
    assert_eq!(served_certificate(server.smtp.port()), before);
}

#[test]
fn unknown_scheme_fails_the_login_and_names_the_line() {
    let (server, tmp) = Server::start("smtpd_sasl_auth_enable = true");
    drop(server);
    std::fs::write(
        tmp.path().join("users"),
        "alice@example.org:{PLAIN}secret\ncarol@example.org:{MD5-CRYPT}$1$hushhush\n",
    )
    .unwrap();
    let server = Server::start_in(tmp.path());
    let mut c = Client::connect(server.smtp);
    c.cmd("EHLO client.test.example");
    // carol / x, as SASL PLAIN.
    assert!(
        c.cmd("AUTH PLAIN AGNhcm9sQGV4YW1wbGUub3JnAHg=")
            .starts_with("535 5.7.8")
    );
    let log = server.wait_log("unknown password scheme");
    assert!(
        log.contains("users file line 2: user carol@example.org: unknown password scheme \"MD5-CRYPT\"; login refused"),
        "{log}"
    );
    assert!(!log.contains("hushhush"), "{log}");
}

#[test]
fn check_reports_an_unreadable_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.display();
    let extra =
        format!("smtpd_tls_cert_file = \"{d}/none.pem\"\nsmtpd_tls_key_file = \"{d}/none.key\"\n");
    check_refuses(dir, &extra, &format!("cannot read {d}/none.pem"));
}
