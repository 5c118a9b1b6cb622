//! After-queue content filtering (Postfix's FILTER_README) end to end: a
//! real filter, Python's aiosmtpd, that marks each message and re-injects
//! it into a second Postern SMTP service whose override says
//! `content_filter = ""`, as amavis does with Postfix's `127.0.0.1:10025`
//! service. `content_filter` sends every message there once, all its
//! recipients in one delivery, `postern sendmail` mail too; an access-map
//! FILTER action routes only the mail it matches; a filter that is down
//! defers the mail until a flush after it is back; the route is in the
//! queue file, so a restart keeps it; a malformed value is a config error
//! that names the key.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sendmail_modes::sendmail;
use crate::sink::{PythonSmtp, received};
use crate::support::*;

/// The filter: takes a message over SMTP, adds `X-Content-Filter` on top
/// and `[filtered] ` before the subject, re-injects it into Postern and
/// only then answers 250 (a failed re-injection is 451, so nothing is
/// acknowledged that was not passed on). Each message passed on is
/// logged to OUTDIR/msgN.txt as `from:`/`to:` lines, a blank line, the
/// data as received. Prints its port once listening.
const FILTER: &str = r#"
import asyncio, os, smtplib, sys
from aiosmtpd.smtp import SMTP

port, reinject, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
count = [0]

def mark(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = [b"Subject: [filtered] " + l[9:] if l.lower().startswith(b"subject: ") else l
             for l in head.split(b"\r\n")]
    return b"X-Content-Filter: scanned by test-filter\r\n" + b"\r\n".join(lines) + sep + body

def send(sender, rcpts, data):
    with smtplib.SMTP("127.0.0.1", reinject, timeout=30) as s:
        s.sendmail(sender, rcpts, data)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, send, envelope.mail_from, envelope.rcpt_tos, mark(data))
        except Exception as e:
            return "451 4.3.0 re-injection failed: %s" % str(e).replace("\r", " ").replace("\n", " ")
        count[0] += 1
        head = "from: %s\nto: %s\n\n" % (envelope.mail_from, ",".join(envelope.rcpt_tos))
        tmp = os.path.join(outdir, ".msg%d" % count[0])
        with open(tmp, "wb") as f:
            f.write(head.encode() + data)
        os.rename(tmp, os.path.join(outdir, "msg%d.txt" % count[0]))
        return "250 2.0.0 Ok: filtered as F%d" % count[0]

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname="filter.test"), "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"#;

/// The re-injection service: no content filter (or mail would loop), and
/// no sender checks (the FILTER action must not fire again), as
/// FILTER_README's `127.0.0.1:10025` service in master.cf.
const REINJECT: &str = "\n[[service]]\nname = \"smtp\"\nlisten = \"127.0.0.1:0\"\n\
    content_filter = \"\"\n\
    [service.restrictions]\nsender = []\nrecipient = [\"permit_mynetworks\", \"reject\"]\n";

/// Deferred mail is retried only when flushed; a refused connection does
/// not mark the filter dead, so the flush reaches it.
const SLOW_RETRY: &str = "minimal_backoff_time = \"1000s\"\n\
    maximal_backoff_time = \"4000s\"\n\
    queue_run_delay = \"1000s\"\n\
    default_destination_concurrency_failed_cohort_limit = 0\n";

/// The filter process; killed when dropped.
struct Filter {
    _process: PythonSmtp,
    dir: tempfile::TempDir,
}

impl Filter {
    /// Listens on `port`, re-injects into `reinject`.
    fn start(port: u16, reinject: SocketAddr) -> Filter {
        let dir = tempfile::tempdir().unwrap();
        let (process, line) = PythonSmtp::start(
            "the filter (is aiosmtpd installed?)",
            FILTER,
            [
                OsStr::new(&port.to_string()),
                OsStr::new(&reinject.port().to_string()),
                dir.path().as_os_str(),
            ],
        );
        assert_eq!(line.trim(), port.to_string(), "filter port");
        Filter {
            _process: process,
            dir,
        }
    }

    /// What the filter passed on so far: `from:`/`to:` lines and data.
    fn passed(&self) -> Vec<String> {
        received(self.dir.path())
    }
}

/// Writes the test config (`extra` main.cf lines) with the re-injection
/// service after the test one, into `dir`.
fn write_config(dir: &Path, extra: &str) {
    std::fs::write(dir.join("users"), USERS).unwrap();
    let text = format!("{}{REINJECT}", config_text(dir, extra));
    std::fs::write(dir.join("postern.toml"), text).unwrap();
}

/// Starts the server on `dir`'s config; answers it and the re-injection
/// service's address (the second `listening on smtp`).
fn start_in(dir: &Path) -> (Server, SocketAddr) {
    let server = Server::start_in(dir);
    let log = server.wait_log_count("listening on smtp ", 2);
    let addrs: Vec<SocketAddr> = log
        .lines()
        .filter_map(|l| l.split("listening on smtp ").nth(1))
        .map(|a| a.trim().parse().unwrap())
        .collect();
    assert_eq!(addrs[0], server.smtp);
    (server, addrs[1])
}

fn filter_param(port: u16) -> String {
    format!("content_filter = \"smtp:[127.0.0.1]:{port}\"\n")
}

/// Sends one message; answers its queue id.
fn send(server: &Server, from: &str, rcpts: &[&str], subject: &str) -> String {
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        from,
        rcpts,
        &format!("Subject: {subject}\r\n\r\nbody\r\n"),
    );
    let id = r
        .trim_end()
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    assert!(c.cmd("QUIT").starts_with("221"));
    id
}

/// Waits until `queue/deferred` holds `n` files; answers their text.
fn wait_deferred(dir: &Path, n: usize) -> Vec<String> {
    let deferred = dir.join("queue/deferred");
    let start = Instant::now();
    loop {
        let files: Vec<String> = std::fs::read_dir(&deferred)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| {
                        String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if files.len() >= n {
            return files;
        }
        assert!(start.elapsed() < WAIT, "{n} deferred files never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn filtered(message: &[u8]) -> bool {
    let text = String::from_utf8_lossy(message);
    text.matches("X-Content-Filter: scanned by test-filter\r\n")
        .count()
        == 1
        && text.contains("Subject: [filtered] ")
}

#[test]
fn content_filter_passes_each_message_through_the_filter_once() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(tmp.path(), &filter_param(port));
    let (server, reinject) = start_in(tmp.path());
    let filter = Filter::start(port, reinject);

    // Two recipients, one delivery to the filter.
    send(
        &server,
        "carol@elsewhere.example",
        &["alice@example.org", "bob@example.org"],
        "hello",
    );
    for user in ["alice", "bob"] {
        let got = wait_messages(&server.new_dir(user), 1);
        assert!(filtered(&got[0]), "{}", String::from_utf8_lossy(&got[0]));
    }
    let passed = filter.passed();
    assert_eq!(passed.len(), 1, "{passed:?}");
    assert!(
        passed[0]
            .starts_with("from: carol@elsewhere.example\nto: alice@example.org,bob@example.org\n"),
        "{}",
        passed[0]
    );
    let log = server.wait_log("delivered to maildir");
    assert!(
        log.contains(&format!(
            "to=<alice@example.org>, relay=127.0.0.1[127.0.0.1]:{port}, "
        )),
        "{log}"
    );
    assert!(
        log.contains("status=sent (250 2.0.0 Ok: filtered as F1)"),
        "{log}"
    );

    // `postern sendmail` mail follows main.cf's content_filter too.
    let config = tmp.path().join("postern.toml");
    let out = sendmail(&config, &["alice"], "Subject: from cron\n\nline\n", false);
    assert!(out.status.success(), "{out:?}");
    let got = wait_messages(&server.new_dir("alice"), 2);
    assert!(got.iter().all(|m| filtered(m)));
    assert_eq!(filter.passed().len(), 2);
    // Exactly once: nothing more arrives.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(filter.passed().len(), 2);
    assert_eq!(messages(&server.new_dir("alice")).len(), 2);
    assert_eq!(messages(&server.new_dir("bob")).len(), 1);
}

#[test]
fn a_filter_action_routes_only_the_mail_it_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let access = tmp.path().join("access");
    std::fs::write(
        &access,
        format!("scan-me@elsewhere.example FILTER smtp:[127.0.0.1]:{port}\n"),
    )
    .unwrap();
    write_config(
        tmp.path(),
        &format!(
            "smtpd_sender_restrictions = [\"check_sender_access hash:{}\"]\n",
            access.display()
        ),
    );
    let (server, reinject) = start_in(tmp.path());
    let filter = Filter::start(port, reinject);
    send(
        &server,
        "scan-me@elsewhere.example",
        &["alice@example.org"],
        "one",
    );
    send(
        &server,
        "plain@elsewhere.example",
        &["alice@example.org"],
        "two",
    );
    let got = wait_messages(&server.new_dir("alice"), 2);
    let (one, two): (Vec<_>, Vec<_>) = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .partition(|m| m.contains("Subject: [filtered] one"));
    assert_eq!(one.len(), 1, "{got:?}");
    assert!(filtered(one[0].as_bytes()));
    assert!(!two[0].contains("X-Content-Filter"), "{}", two[0]);
    let passed = filter.passed();
    assert_eq!(passed.len(), 1, "{passed:?}");
    assert!(passed[0].starts_with("from: scan-me@elsewhere.example\n"));
    server.wait_log(&format!(
        "filter: RCPT from unknown[127.0.0.1]: triggers FILTER smtp:[127.0.0.1]:{port}; \
         from=<scan-me@elsewhere.example> to=<alice@example.org> proto=ESMTP"
    ));
}

#[test]
fn a_filter_that_is_down_defers_until_a_flush_after_it_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(tmp.path(), &format!("{}{SLOW_RETRY}", filter_param(port)));
    let (server, reinject) = start_in(tmp.path());
    send(
        &server,
        "carol@elsewhere.example",
        &["alice@example.org"],
        "later",
    );
    let log = server.wait_log("status=deferred");
    assert!(
        log.contains(&format!("127.0.0.1[127.0.0.1]:{port}")),
        "the deferral names the filter:\n{log}"
    );
    wait_deferred(tmp.path(), 1);
    assert!(messages(&server.new_dir("alice")).is_empty());

    let filter = Filter::start(port, reinject);
    flush(tmp.path());
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(filtered(&got[0]));
    assert_eq!(filter.passed().len(), 1);
    assert!(!server.log().contains("status=bounced"));
}

#[test]
fn a_restart_keeps_the_route_of_a_queued_message() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(tmp.path(), &format!("{}{SLOW_RETRY}", filter_param(port)));
    let (server, _) = start_in(tmp.path());
    let id = send(
        &server,
        "carol@elsewhere.example",
        &["alice@example.org"],
        "kept",
    );
    let files = wait_deferred(tmp.path(), 1);
    assert!(
        files[0].contains(&format!("\nfilter smtp:[127.0.0.1]:{port}\n")),
        "{}",
        files[0]
    );
    // `postern queue show` (postcat) names it.
    let out = Command::new(POSTERN)
        .arg("--config")
        .arg(tmp.path().join("postern.toml"))
        .args(["queue", "show", &id])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(&format!("\ncontent_filter: smtp:[127.0.0.1]:{port}\n")),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill();

    // The filter is gone from the config: the route is the queue file's.
    write_config(tmp.path(), SLOW_RETRY);
    let (server, reinject) = start_in(tmp.path());
    let filter = Filter::start(port, reinject);
    flush(tmp.path());
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(filtered(&got[0]), "{}", String::from_utf8_lossy(&got[0]));
    assert_eq!(filter.passed().len(), 1);
}

#[test]
fn a_malformed_content_filter_is_a_config_error_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |extra: &str, service: &str| {
        std::fs::write(tmp.path().join("users"), USERS).unwrap();
        let text = format!("{}{service}", config_text(tmp.path(), extra));
        let file = tmp.path().join("postern.toml");
        std::fs::write(&file, text).unwrap();
        postern_check(&file)
    };
    let f = tmp.path().join("postern.toml").display().to_string();
    for (value, why) in [
        ("127.0.0.1:10025x", "unknown transport"),
        ("smtp:", "no destination"),
        ("smtp:[127.0.0.1", "missing"),
        ("scan", "expected transport:destination"),
        ("error:5.7.1", "an smtp: or lmtp: destination"),
        ("smtp:[a] b", "expected transport:destination"),
    ] {
        let (ok, err) = check(&format!("content_filter = \"{value}\"\n"), "");
        assert!(!ok, "{value} passed");
        let text = std::fs::read_to_string(tmp.path().join("postern.toml")).unwrap();
        let line = 1 + text
            .lines()
            .position(|l| l.starts_with("content_filter"))
            .unwrap();
        assert!(
            err.contains(&format!("{f}:{line}: content_filter: ")) && err.contains(why),
            "{value}: {err}"
        );
    }
    // Per service, the error names the service's key.
    let (ok, err) = check("", "content_filter = \"smtp\"\n");
    assert!(!ok);
    assert!(err.contains("service.content_filter"), "{err}");
    // Good values pass, empty included.
    for value in ["smtp:[127.0.0.1]:10025", "lmtp:unix:/run/filter", ""] {
        let (ok, err) = check(&format!("content_filter = \"{value}\"\n"), "");
        assert!(ok, "{value}: {err}");
    }
}
