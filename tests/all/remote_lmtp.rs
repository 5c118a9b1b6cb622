//! LMTP delivery (RFC 2033) by `transport_maps`, to aiosmtpd's LMTP
//! server on a UNIX socket and on TCP: one transaction, one reply per
//! recipient after DATA, so one recipient can bounce while the others
//! are delivered.

use crate::remote_smtp::{Aiosmtpd, sender, submit, table};

fn check(aio: &Aiosmtpd, transport: &str, relay: &str) {
    let tables = tempfile::tempdir().unwrap();
    let map = table(
        tables.path(),
        "transport",
        &format!("lmtp.test {transport}\n"),
    );
    let (sender, _tmp) = sender(None, &format!("transport_maps = \"{map}\"\n"), "");
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["one@lmtp.test", "nobody@lmtp.test", "two@lmtp.test"],
        "Subject: lmtp\r\n\r\nhi\r\n",
    );
    let got = aio.wait(1);
    assert!(
        got[0]
            .0
            .contains("to: one@lmtp.test,nobody@lmtp.test,two@lmtp.test"),
        "{}",
        got[0].0
    );
    let log = sender.wait_log(&format!("{id}: removed"));
    for (rcpt, tail) in [
        (
            "one",
            "dsn=2.0.0, status=sent (250 2.0.0 <one@lmtp.test> delivered 1)",
        ),
        (
            "two",
            "dsn=2.0.0, status=sent (250 2.0.0 <two@lmtp.test> delivered 1)",
        ),
        ("nobody", "dsn=5.1.1, status=bounced (host "),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{id}: to=<{rcpt}@lmtp.test>")))
            .unwrap_or_else(|| panic!("no line for {rcpt}:\n{log}"));
        assert!(line.contains("postern/lmtp["), "{line}");
        assert!(line.contains(&format!("relay={relay}")), "{line}");
        assert!(line.contains(tail), "{line}");
    }
}

#[test]
fn lmtp_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("lmtp.sock");
    let aio = Aiosmtpd::start("lmtp", &["--lmtp", socket.to_str().unwrap()]);
    check(
        &aio,
        &format!("lmtp:unix:{}", socket.display()),
        &socket.display().to_string(),
    );
}

#[test]
fn lmtp_over_tcp() {
    let aio = Aiosmtpd::start("lmtp", &["--lmtp", "tcp"]);
    check(
        &aio,
        &format!("lmtp:[127.0.0.1]:{}", aio.port),
        &format!("127.0.0.1[127.0.0.1]:{}", aio.port),
    );
}
