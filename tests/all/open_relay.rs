//! Open-relay tricks (issue 8, security batteries): every address form
//! that has made some MTA relay (the percent hack, bang paths, source
//! routes, quoted local parts holding `@`, IP literals, trailing dots,
//! case, Unicode, overlong addresses) sent by a client outside mynetworks,
//! against the embedded default config (its smtp service, and its
//! submission and smtps services without a login) and the test config. None may
//! relay: each is refused, or accepted for a local mailbox only. The
//! relayhost is a listener of this test that counts connections: mail
//! relayed anywhere would reach it, so it must count none.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;

/// The root of the repository.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Recipient forms that try to reach `evil.example` through a local
/// domain (`@LOCAL`, replaced by the config's local domain).
fn tricks(local: &str) -> Vec<String> {
    let long_local = "a".repeat(300);
    let long_domain = format!("{}.example", "d".repeat(300));
    [
        // Controls: a local mailbox is accepted and delivered here.
        "alice@LOCAL".to_owned(),
        "ALICE@LOCAL.".to_owned(),
        "user@evil.example".to_owned(),
        "user%evil.example@LOCAL".to_owned(),
        "user%evil.example%LOCAL@LOCAL".to_owned(),
        "\"user%evil.example\"@LOCAL".to_owned(),
        "evil.example!user@LOCAL".to_owned(),
        "evil.example!user".to_owned(),
        "LOCAL!evil.example!user".to_owned(),
        "@LOCAL:user@evil.example".to_owned(),
        "@LOCAL,@mx.LOCAL:user@evil.example".to_owned(),
        "@evil.example:user@LOCAL".to_owned(),
        "\"user@evil.example\"@LOCAL".to_owned(),
        "\"user@evil.example\"".to_owned(),
        "user@evil.example@LOCAL".to_owned(),
        "user@LOCAL@evil.example".to_owned(),
        "user@[192.0.2.1]".to_owned(),
        "user@[IPv6:2001:db8::1]".to_owned(),
        "user@[127.0.0.1]".to_owned(),
        "user@evil.example.".to_owned(),
        "user@evil.example..".to_owned(),
        "user@LOCAL.evil.example".to_owned(),
        "user@evil.example.LOCAL.".to_owned(),
        "USER@EVIL.EXAMPLE".to_owned(),
        "user@Evil.Example".to_owned(),
        "user@évil.example".to_owned(),
        "user@xn--vil-9la.example".to_owned(),
        "usér@evil.example".to_owned(),
        format!("{long_local}@evil.example"),
        format!("{long_local}@LOCAL"),
        format!("user@{long_domain}"),
        "user@evil.example\0@LOCAL".to_owned(),
        " user@evil.example".to_owned(),
    ]
    .into_iter()
    .map(|t| t.replace("LOCAL", local))
    .collect()
}

/// A relayhost that counts the connections it gets and answers none.
struct Trap {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Trap {
    fn start() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap { port, connections }
    }
}

/// Sends one transaction from an untrusted client to `rcpt` with a local
/// sender (so that a bounce stays local). Returns the RCPT reply and
/// whether the message was queued.
fn attempt(server: &Server, sender: &str, rcpt: &str) -> (String, bool) {
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    let r = c.cmd("EHLO client.test.example");
    assert!(r.starts_with("250"), "{r}");
    let smtputf8 = if rcpt.is_ascii() { "" } else { " SMTPUTF8" };
    let r = c.cmd(&format!("MAIL FROM:<{sender}>{smtputf8}"));
    assert!(r.starts_with("250"), "{r}");
    let reply = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    let mut queued = false;
    if reply.starts_with("250") {
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(b"Subject: relay test\r\n\r\nrelay test\r\n.\r\n");
        let r = c.reply();
        queued = r.starts_with("250");
    }
    c.cmd("QUIT");
    (reply, queued)
}

/// Runs every trick against a server whose local domain is `local` and
/// whose relayhost is `trap`; checks the queue and the trap afterwards.
fn battery(server: &Server, trap: &Trap, local: &str) {
    let sender = format!("alice@{local}");
    let mut queued = 0;
    let mut accepted = Vec::new();
    for rcpt in tricks(local) {
        let (reply, was_queued) = attempt(server, &sender, &rcpt);
        eprintln!("{rcpt:?} -> {}", reply.lines().last().unwrap_or(""));
        let code = reply.get(..1).unwrap_or("");
        assert!(
            matches!(code, "2" | "4" | "5"),
            "{rcpt:?}: no sensible reply: {reply:?}"
        );
        if was_queued {
            queued += 1;
            accepted.push(rcpt);
        }
    }
    // Every queued message is done with (delivered here or bounced to the
    // local sender) before we look for relaying.
    assert!(queued >= 1, "not even the local control was accepted");
    server.wait_log_count("removed", queued);
    std::thread::sleep(Duration::from_millis(500));
    let log = server.log();
    // Delivery attempts (`to=<...>, relay=..., status=...`), not the
    // NOQUEUE reject lines.
    for line in log
        .lines()
        .filter(|l| l.contains(" to=<") && l.contains("status="))
    {
        assert!(
            line.contains("relay=local") || line.contains("status=bounced"),
            "a message left the server: {line}\naccepted: {accepted:?}"
        );
        assert!(
            !line.contains("evil.example") || !line.contains("status=sent"),
            "delivered to evil.example: {line}"
        );
    }
    assert_eq!(
        trap.connections.load(Ordering::SeqCst),
        0,
        "the relayhost was contacted; accepted: {accepted:?}\n{log}"
    );
}

#[test]
fn the_test_config_relays_nothing() {
    let trap = Trap::start();
    let (server, _tmp) = Server::start(&format!("relayhost = \"[127.0.0.1]:{}\"\n", trap.port));
    battery(&server, &trap, "example.org");
}

/// The embedded default (examples/postern.toml) with its ports made
/// ephemeral, its data in `dir`, a users file, and mynetworks narrowed to
/// 127.0.0.1 (by default all of loopback is trusted, which is every client
/// a loopback-only server can have) so that 127.0.0.2 stands for a client
/// from the Internet.
fn default_config(dir: &Path, relay_port: u16) -> String {
    let example = std::fs::read_to_string(Path::new(ROOT).join("examples/postern.toml")).unwrap();
    let mut body = String::new();
    for line in example.lines() {
        let line = if line.starts_with("mynetworks") {
            "mynetworks = [\"127.0.0.1/32\"]".to_owned()
        } else if let Some(rest) = line.strip_prefix("listen = \"127.0.0.1:") {
            let _ = rest;
            "listen = \"127.0.0.1:0\"".to_owned()
        } else {
            line.to_owned()
        };
        body.push_str(&line);
        body.push('\n');
    }
    let d = dir.display();
    format!(
        "plugin_cache_directory = \"{SHARED_CACHE}\"\n\
         myhostname = \"mx.test.example\"\n\
         data_directory = \"{d}\"\n\
         queue_directory = \"{d}/queue\"\n\
         virtual_mailbox_base = \"{d}/mail\"\n\
         relayhost = \"[127.0.0.1]:{relay_port}\"\n\
         {body}\n\
         [auth]\n\
         users_file = \"{d}/users\"\n"
    )
}

/// A server on the embedded default ([`default_config`]) relaying to
/// `trap`, with alice@localhost in its users file.
fn start_default(trap: &Trap) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("users"),
        "alice@localhost:{PLAIN}secret::::\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("postern.toml"),
        default_config(tmp.path(), trap.port),
    )
    .unwrap();
    let server = Server::start_in(tmp.path());
    (server, tmp)
}

#[test]
fn the_default_config_relays_nothing() {
    let trap = Trap::start();
    let (server, _tmp) = start_default(&trap);
    battery(&server, &trap, "localhost");
}

/// Every trick sent without logging in to the default's submission
/// service (plain, STARTTLS offered) and to its smtps service (implicit
/// TLS, Python's smtplib): neither takes a MAIL FROM, let alone a
/// recipient, and the relayhost hears nothing. (Once logged in, a client
/// may relay: that is what submission is for.)
#[test]
fn the_default_configs_submission_services_relay_nothing_without_auth() {
    let trap = Trap::start();
    let (server, _tmp) = start_default(&trap);
    let tricks = tricks("localhost");
    // A session per trick: each costs two errors, and the server hangs
    // up after `smtpd_hard_error_limit` (20) of them, as Postfix does.
    for rcpt in &tricks {
        let mut c = Client::connect_from(server.listening("submission"), "127.0.0.2");
        assert!(c.cmd("EHLO client.test.example").starts_with("250"));
        let smtputf8 = if rcpt.is_ascii() { "" } else { " SMTPUTF8" };
        let mail = c.cmd(&format!("MAIL FROM:<alice@localhost>{smtputf8}"));
        assert!(
            mail.starts_with("530 5.7.0"),
            "submission, {rcpt:?}: {mail}"
        );
        let reply = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(!reply.starts_with('2'), "submission, {rcpt:?}: {reply}");
        c.cmd("QUIT");
    }
    let smtps = server.listening("smtps");
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for arg in sys.argv[3:]:
    rcpt = bytes.fromhex(arg).decode("utf-8")
    s = smtplib.SMTP_SSL(sys.argv[1], int(sys.argv[2]), context=ctx,
                         source_address=("127.0.0.2", 0), timeout=20)
    s.command_encoding = "utf-8"
    s.ehlo("client.test.example")
    mail = s.docmd("MAIL FROM:<alice@localhost>")
    reply = s.docmd("RCPT TO:<%s>" % rcpt)
    print(mail[0], reply[0])
    s.quit()
"#;
    let port = smtps.port().to_string();
    // In hex: one of the tricks holds a NUL, which no argument can.
    let hex: Vec<String> = tricks
        .iter()
        .map(|t| t.bytes().map(|b| format!("{b:02x}")).collect())
        .collect();
    let mut args = vec!["127.0.0.1", port.as_str()];
    args.extend(hex.iter().map(String::as_str));
    let out = python(script, &args);
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes.len(), tricks.len(), "{out}");
    for (rcpt, codes) in tricks.iter().zip(codes) {
        let (mail, reply) = codes.split_once(' ').unwrap();
        assert_eq!(mail, "530", "smtps, {rcpt:?}: {codes}");
        assert!(!reply.starts_with('2'), "smtps, {rcpt:?}: {codes}");
    }
    assert!(!server.log().contains("(queue active)"), "{}", server.log());
    assert_eq!(trap.connections.load(Ordering::SeqCst), 0);
}
