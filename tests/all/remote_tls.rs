//! STARTTLS to the next hop at each `smtp_tls_security_level`, against
//! aiosmtpd with a self-signed certificate: `may` encrypts anyway,
//! `verify` defers (unless `smtp_tls_CAfile` trusts the certificate),
//! `encrypt` defers a server that offers no STARTTLS, `none` never asks.

use std::path::{Path, PathBuf};

use crate::remote_smtp::{Aiosmtpd, sender, submit};

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key) paths.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// aiosmtpd offering STARTTLS with a fresh self-signed certificate.
fn tls_server(dir: &Path) -> Aiosmtpd {
    let (cert, key) = self_signed(dir);
    Aiosmtpd::start(
        "ok",
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    )
}

fn relay(aio: &Aiosmtpd, level: &str, extra: &str) -> String {
    format!(
        "relayhost = \"[127.0.0.1]:{}\"\nsmtp_tls_security_level = \"{level}\"\n{extra}",
        aio.port
    )
}

#[test]
fn may_encrypts_to_a_self_signed_server() {
    let certs = tempfile::tempdir().unwrap();
    let aio = tls_server(certs.path());
    let (sender, _tmp) = sender(None, &relay(&aio, "may", ""), "");
    submit(
        &sender,
        "postmaster@sender.test",
        &["x@far.test"],
        "Subject: tls\r\n\r\nhi\r\n",
    );
    let got = aio.wait(1);
    assert!(got[0].0.contains("tls: True"), "{}", got[0].0);
    sender.wait_log("status=sent");
}

#[test]
fn none_sends_in_plain_text() {
    let certs = tempfile::tempdir().unwrap();
    let aio = tls_server(certs.path());
    let (sender, _tmp) = sender(None, &relay(&aio, "none", ""), "");
    submit(
        &sender,
        "postmaster@sender.test",
        &["x@far.test"],
        "Subject: plain\r\n\r\nhi\r\n",
    );
    let got = aio.wait(1);
    assert!(got[0].0.contains("tls: False"), "{}", got[0].0);
}

#[test]
fn verify_defers_a_self_signed_server() {
    let certs = tempfile::tempdir().unwrap();
    let aio = tls_server(certs.path());
    let (sender, _tmp) = sender(None, &relay(&aio, "verify", ""), "");
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["x@far.test"],
        "Subject: v\r\n\r\nhi\r\n",
    );
    let log = sender.wait_log("status=deferred");
    assert!(
        log.contains(&format!("{id}: to=<x@far.test>, relay=none"))
            && log.contains(&format!(
                "dsn=4.7.5, status=deferred (TLS with 127.0.0.1[127.0.0.1]:{} failed: ",
                aio.port
            )),
        "{log}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(std::fs::read_dir(aio.dir.path()).unwrap().next().is_none());
}

#[test]
fn verify_trusts_smtp_tls_cafile() {
    let certs = tempfile::tempdir().unwrap();
    let aio = tls_server(certs.path());
    let ca = certs.path().join("cert.pem");
    let extra = format!("smtp_tls_CAfile = \"{}\"\n", ca.display());
    let (sender, _tmp) = sender(None, &relay(&aio, "verify", &extra), "");
    submit(
        &sender,
        "postmaster@sender.test",
        &["x@far.test"],
        "Subject: v\r\n\r\nhi\r\n",
    );
    let got = aio.wait(1);
    assert!(got[0].0.contains("tls: True"), "{}", got[0].0);
}

#[test]
fn encrypt_defers_a_server_without_starttls() {
    let aio = Aiosmtpd::start("ok", &[]);
    let (sender, _tmp) = sender(None, &relay(&aio, "encrypt", ""), "");
    submit(
        &sender,
        "postmaster@sender.test",
        &["x@far.test"],
        "Subject: e\r\n\r\nhi\r\n",
    );
    let log = sender.wait_log("status=deferred");
    assert!(
        log.contains(&format!(
            "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]:{})",
            aio.port
        )),
        "{log}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(std::fs::read_dir(aio.dir.path()).unwrap().next().is_none());
}
