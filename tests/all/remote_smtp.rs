//! Remote delivery end to end: a sending Postern whose `[dns]` is a real
//! name server on loopback (`dns`), delivering by MX to a second Postern
//! and by `transport_maps` and `relayhost` to Python's aiosmtpd, with
//! several recipients per transaction, retries after 4xx, bounces after
//! 5xx (a DSN Python reads as multipart/report), null MX and MX loops.
//! The helpers here serve `remote_tls` and `remote_lmtp` too.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::dns;
use crate::sink::{PythonSmtp, received};
use crate::support::*;

/// The aiosmtpd test server's script.
const AIOSMTPD: &str = include_str!("remote_aiosmtpd.py");

/// Retries every second, so a 4xx is retried within a test's wait.
pub const FAST_RETRY: &str = "minimal_backoff_time = \"1s\"\n\
                              maximal_backoff_time = \"2s\"\n\
                              queue_run_delay = \"1s\"\n";

/// An aiosmtpd server on 127.0.0.1 (or a UNIX socket for LMTP), killed
/// when dropped. Messages it accepts land in `dir` as `msgN.txt`.
pub struct Aiosmtpd {
    _process: PythonSmtp,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Aiosmtpd {
    /// Starts one in `mode` (`ok`, `tempfail`, `reject`, `lmtp`) with extra
    /// flags (`--tls CERT KEY`, `--auth USER:PASS`, `--lmtp PATH`).
    pub fn start(mode: &str, flags: &[&str]) -> Aiosmtpd {
        let dir = tempfile::tempdir().unwrap();
        let args = [OsStr::new(mode), dir.path().as_os_str()]
            .into_iter()
            .chain(flags.iter().map(OsStr::new));
        let (process, line) = PythonSmtp::start("aiosmtpd", AIOSMTPD, args);
        let port = line.trim().parse().unwrap_or(0);
        Aiosmtpd {
            _process: process,
            port,
            dir,
        }
    }

    /// Waits for `n` messages and returns them as (header lines, data).
    pub fn wait(&self, n: usize) -> Vec<(String, String)> {
        let start = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n {
                std::thread::sleep(Duration::from_millis(200));
                let got = self.messages();
                assert_eq!(got.len(), n, "more messages than expected");
                return got;
            }
            assert!(
                start.elapsed() < WAIT,
                "aiosmtpd got {} of {n} messages",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn messages(&self) -> Vec<(String, String)> {
        received(self.dir.path())
            .iter()
            .map(|text| {
                let (head, data) = text.split_once("\n\n").unwrap();
                (head.to_owned(), data.to_owned())
            })
            .collect()
    }
}

/// Starts a sending Postern: `myhostname = sender.test`, only itself
/// local, names resolved by `dns`, plus `extra` main.cf lines and
/// `sections` (TOML tables) at the end.
pub fn sender(dns: Option<SocketAddr>, extra: &str, sections: &str) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display();
    std::fs::write(tmp.path().join("users"), "").unwrap();
    let dns = dns
        .map(|a| format!("[dns]\nnameservers = [\"{a}\"]\ntimeout = \"2s\"\n"))
        .unwrap_or_default();
    let config = format!(
        "myhostname = \"sender.test\"\n\
         mydestination = \"$myhostname\"\n\
         mynetworks = \"127.0.0.1/32\"\n\
         data_directory = \"{d}\"\n\
         queue_directory = \"{d}/queue\"\n\
         virtual_mailbox_base = \"{d}/mail\"\n\
         {extra}\n\
         {dns}\n\
         {sections}\n\
         [auth]\n\
         users_file = \"{d}/users\"\n\
         [[service]]\n\
         name = \"smtp\"\n\
         listen = \"127.0.0.1:0\"\n"
    );
    std::fs::write(tmp.path().join("postern.toml"), config).unwrap();
    let server = Server::start_in(tmp.path());
    (server, tmp)
}

/// A sending Postern (see [`sender`]) whose relayhost is `aio`, plus
/// `extra` main.cf lines.
pub fn relaying_to(aio: &Aiosmtpd, extra: &str) -> (Server, tempfile::TempDir) {
    let relayhost = format!("relayhost = \"[127.0.0.1]:{}\"\n", aio.port);
    sender(None, &format!("{relayhost}{extra}"), "")
}

/// Sends one message through `server` and returns its queue id.
pub fn submit(server: &Server, from: &str, rcpts: &[&str], body: &str) -> String {
    let mut c = Client::connect(server.smtp);
    let r = send_message(&mut c, from, rcpts, body);
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    c.cmd("QUIT");
    r.trim().rsplit(' ').next().unwrap().to_owned()
}

/// Writes a table file into `dir` and returns its `hash:` name.
pub fn table(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    format!("hash:{}", path.display())
}

/// The postmaster mailbox of the sender, where its bounces to
/// `postmaster@sender.test` land.
fn sender_postmaster(server: &Server) -> PathBuf {
    server.dir.join("mail/sender.test/postmaster/Maildir/new")
}

#[test]
fn mx_in_preference_order_to_a_second_postern() {
    let (receiver, _rtmp) = Server::start("");
    let port = receiver.smtp.port();
    // example.org: MX 5 is dead (nothing listens on 127.0.0.2), MX 10
    // is the receiver.
    let dns = dns::start(
        "example.org.",
        vec![
            dns::mx("example.org.", 10, "mx.example.org."),
            dns::mx("example.org.", 5, "dead.example.org."),
            dns::a("mx.example.org.", Ipv4Addr::LOCALHOST),
            dns::a("dead.example.org.", Ipv4Addr::new(127, 0, 0, 2)),
            // No MX: the domain's own address (RFC 5321 §5.1).
            dns::a("plain.example.org.", Ipv4Addr::LOCALHOST),
        ],
    );
    let (sender, _stmp) = sender(Some(dns), &format!("smtp_tcp_port = {port}\n"), "");
    let id = submit(
        &sender,
        "someone@sender.test",
        &["alice@example.org", "bob@example.org"],
        "Subject: by MX\r\n\r\n.leading dot\r\nbody\r\n",
    );
    let plain = submit(
        &sender,
        "someone@sender.test",
        &["carol@plain.example.org"],
        "Subject: no MX\r\n\r\nhi\r\n",
    );
    let log = sender.wait_log_count("status=sent", 3);
    assert!(
        log.contains(&format!(
            "{plain}: to=<carol@plain.example.org>, relay=plain.example.org[127.0.0.1]:{port}"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("connect to dead.example.org[127.0.0.2]:{port}")),
        "{log}"
    );
    for rcpt in ["alice", "bob"] {
        assert!(
            log.contains(&format!(
                "postern/smtp[{}]: {id}: to=<{rcpt}@example.org>, relay=mx.example.org[127.0.0.1]:{port}, delay=",
                log_pid(&log)
            )),
            "{log}"
        );
    }
    assert!(
        log.contains("dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "),
        "{log}"
    );
    for user in ["alice", "bob"] {
        let got = wait_messages(&receiver.new_dir(user), 1);
        let text = String::from_utf8_lossy(&got[0]);
        assert!(text.contains("\r\n.leading dot\r\nbody\r\n"), "{text}");
        assert!(text.contains("Subject: by MX"), "{text}");
    }
    // One transaction carried both recipients.
    receiver.wait_log("nrcpt=2");
}

/// The pid in the log's `postern/...[pid]:` prefixes.
fn log_pid(log: &str) -> String {
    log.split("postern/")
        .nth(1)
        .and_then(|s| s.split('[').nth(1))
        .and_then(|s| s.split(']').next())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn transport_maps_route_to_aiosmtpd_and_error() {
    let aio = Aiosmtpd::start("ok", &[]);
    let tables = tempfile::tempdir().unwrap();
    let transport = table(
        tables.path(),
        "transport",
        &format!(
            "aio.test smtp:[127.0.0.1]:{}\nclosed.test error:5.7.1 this domain takes no mail\n",
            aio.port
        ),
    );
    let (sender, _stmp) = sender(None, &format!("transport_maps = \"{transport}\"\n"), "");
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["one@aio.test", "two@aio.test", "three@closed.test"],
        "Subject: mapped\r\n\r\ncaf\u{e9}\r\n..two dots\r\n",
    );
    let got = aio.wait(1);
    let (head, data) = &got[0];
    assert!(head.contains("from: postmaster@sender.test"), "{head}");
    assert!(head.contains("to: one@aio.test,two@aio.test"), "{head}");
    assert!(head.contains("SIZE="), "{head}");
    assert!(head.contains("BODY=8BITMIME"), "{head}");
    assert!(data.contains("caf\u{e9}\r\n..two dots\r\n"), "{data}");
    let log = sender.wait_log("status=bounced");
    assert!(
        log.contains(&format!(
            "{id}: to=<one@aio.test>, relay=127.0.0.1[127.0.0.1]:{}",
            aio.port
        )),
        "{log}"
    );
    assert!(
        log.contains("to=<three@closed.test>, relay=none")
            && log.contains("dsn=5.7.1, status=bounced (this domain takes no mail)"),
        "{log}"
    );
}

#[test]
fn a_4xx_is_deferred_and_retried_until_250() {
    let aio = Aiosmtpd::start("tempfail", &[]);
    let (sender, _stmp) = relaying_to(&aio, FAST_RETRY);
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["x@far.test"],
        "Subject: retry\r\n\r\nhi\r\n",
    );
    let log = sender.wait_log(&format!("{id}: to=<x@far.test>"));
    let log = if log.contains("status=sent") {
        log
    } else {
        sender.wait_log("status=sent")
    };
    assert!(
        log.contains("dsn=4.3.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 451 4.3.0 Try again later (in reply to end of DATA command))"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{id}: removed"))
            || sender
                .wait_log(&format!("{id}: removed"))
                .contains("removed")
    );
    assert_eq!(aio.wait(1).len(), 1);
}

/// Reads a DSN's report with Python's email parser.
const READ_DSN: &str = r#"
import email, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read())
assert msg.get_content_type() == "multipart/report", msg.get_content_type()
report = msg.get_payload()[1]
assert report.get_content_type() == "message/delivery-status"
for block in report.get_payload()[1:]:
    print(block["Final-Recipient"], "|", block["Action"], "|", block["Status"], "|", block["Diagnostic-Code"])
"#;

#[test]
fn a_5xx_bounces_per_recipient_with_a_dsn() {
    let aio = Aiosmtpd::start("reject", &[]);
    let (sender, _stmp) = relaying_to(&aio, "");
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["nobody@far.test", "somebody@far.test"],
        "Subject: half\r\n\r\nhi\r\n",
    );
    let got = aio.wait(1);
    assert!(got[0].0.contains("to: somebody@far.test"), "{}", got[0].0);
    let log = sender.wait_log(&format!("{id}: removed"));
    assert!(
        log.contains("to=<nobody@far.test>") && log.contains("dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <nobody@far.test>: Recipient address rejected: User unknown (in reply to RCPT TO command))"),
        "{log}"
    );
    let bounces = wait_messages(&sender_postmaster(&sender), 1);
    let path = std::env::temp_dir().join(format!("postern-dsn-{id}"));
    std::fs::write(&path, &bounces[0]).unwrap();
    let out = python(READ_DSN, &[path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.contains("rfc822; nobody@far.test | failed | 5.1.1 | ")
            && out.contains("550 5.1.1 <nobody@far.test>: Recipient address rejected"),
        "{out}"
    );
    assert!(!out.contains("somebody"), "{out}");
}

#[test]
fn null_mx_and_mx_loops_bounce_at_once() {
    let dns = dns::start(
        "test.",
        vec![
            dns::mx("nullmx.test.", 0, "."),
            dns::mx("loop.test.", 10, "sender.test."),
            dns::a("sender.test.", Ipv4Addr::LOCALHOST),
        ],
    );
    let (sender, _stmp) = sender(Some(dns), FAST_RETRY, "");
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["a@nullmx.test", "b@loop.test", "c@missing.test"],
        "Subject: nowhere\r\n\r\nhi\r\n",
    );
    let log = sender.wait_log(&format!("{id}: removed"));
    assert!(
        log.contains("to=<a@nullmx.test>, relay=none")
            && log.contains(
                "dsn=5.1.10, status=bounced (Domain nullmx.test does not accept mail (nullMX))"
            ),
        "{log}"
    );
    assert!(
        log.contains("dsn=5.4.6, status=bounced (mail for loop.test loops back to myself)"),
        "{log}"
    );
    assert!(
        log.contains("to=<c@missing.test>") && log.contains("dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=missing.test type=MX"),
        "{log}"
    );
    assert!(!log.contains("status=deferred"), "{log}");
    wait_messages(&sender_postmaster(&sender), 1);
}

#[test]
fn relayhost_with_sasl_auth() {
    let aio = Aiosmtpd::start("ok", &["--auth", "relayuser:relaypass"]);
    let tables = tempfile::tempdir().unwrap();
    let passwords = table(
        tables.path(),
        "sasl_passwd",
        &format!("[127.0.0.1]:{} relayuser:relaypass\n", aio.port),
    );
    let (sender, _stmp) = relaying_to(
        &aio,
        &format!(
            "smtp_sasl_auth_enable = true\n\
             smtp_sasl_password_maps = \"{passwords}\"\n"
        ),
    );
    submit(
        &sender,
        "postmaster@sender.test",
        &["x@anywhere.test"],
        "Subject: relayed\r\n\r\nhi\r\n",
    );
    let got = aio.wait(1);
    assert!(got[0].0.contains("auth: relayuser"), "{}", got[0].0);
    sender.wait_log("status=sent");
}

#[test]
fn a_connection_is_reused_and_recipients_are_split_by_the_limit() {
    let aio = Aiosmtpd::start("ok", &[]);
    let (sender, _stmp) = relaying_to(
        &aio,
        "smtp_connection_cache_time_limit = \"10s\"\n\
         default_destination_recipient_limit = 2\n",
    );
    submit(
        &sender,
        "postmaster@sender.test",
        &["a@far.test", "b@far.test", "c@far.test"],
        "Subject: 1\r\n\r\nhi\r\n",
    );
    aio.wait(2);
    submit(
        &sender,
        "postmaster@sender.test",
        &["d@far.test"],
        "Subject: 2\r\n\r\nhi\r\n",
    );
    let got = aio.wait(3);
    let to: Vec<&str> = got
        .iter()
        .map(|(head, _)| head.lines().find(|l| l.starts_with("to: ")).unwrap())
        .collect();
    assert_eq!(
        to,
        [
            "to: a@far.test,b@far.test",
            "to: c@far.test",
            "to: d@far.test"
        ]
    );
    // One connection for all three transactions.
    let peer = |head: &str| head.lines().next().unwrap().to_owned();
    assert!(
        got.iter().all(|(h, _)| peer(h) == peer(&got[0].0)),
        "{got:?}"
    );
}

#[test]
fn bad_remote_settings_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |extra: &str| {
        std::fs::write(tmp.path().join("users"), "").unwrap();
        std::fs::write(
            tmp.path().join("postern.toml"),
            config_text(tmp.path(), extra),
        )
        .unwrap();
        let (ok, err) = postern_check(&tmp.path().join("postern.toml"));
        assert!(!ok, "{extra}");
        err
    };
    let err = check("relayhost = \"[relay.example\"\n");
    assert!(
        err.contains("postern.toml:9: relayhost: \"[relay.example\": missing \"]\""),
        "{err}"
    );
    let err = check("smtp_tls_security_level = \"dane\"\n");
    assert!(err.contains("smtp_tls_security_level"), "{err}");
    let err = check("transport_maps = \"hash:/nonexistent/transport\"\n");
    assert!(
        err.contains("transport_maps") && err.contains("/nonexistent/transport"),
        "{err}"
    );
    let err = check("smtp_tcp_port = 0\n");
    assert!(err.contains("smtp_tcp_port: expected a TCP port"), "{err}");
}
