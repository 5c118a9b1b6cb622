//! Real mail clients against a running server: IMAPClient (PyPI's
//! `imapclient`) logging in over imaps, listing, fetching, flagging,
//! moving, expunging and appending, and IDLE seeing a delivery over SMTP.
//! The fetching clients (fetchmail, getmail6) are in `fetch_clients`,
//! on the helpers here. A test whose client is not installed says so and
//! passes (as `imap::mbsync_round_trip` does).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Client, Server, python, send_accepted, wait_messages};

const SERVICES: &str = "[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"imaps\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"pop3s\"\nlisten = \"127.0.0.1:0\"\n";

/// The name in the server's self-signed certificate (`myhostname` of the
/// test config): clients check the certificate against it.
pub(crate) const CERT_NAME: &str = "mx.test.example";

/// Starts a server and delivers `n` messages to alice over SMTP.
pub(crate) fn server_with_mail(n: usize) -> (Server, tempfile::TempDir) {
    let (server, tmp) = Server::start(SERVICES);
    deliver(&server, 0..n);
    wait_messages(&server.new_dir("alice"), n);
    (server, tmp)
}

pub(crate) fn deliver(server: &Server, range: std::ops::Range<usize>) {
    let mut c = Client::connect(server.smtp);
    for i in range {
        let body = format!(
            "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: client test {i}\r\n\r\nmessage {i}\r\n.leading dot\r\n"
        );
        send_accepted(&mut c, "bob@example.org", &["alice@example.org"], &body);
        c.cmd("RSET");
    }
}

/// The server's self-signed certificate (PEM), made at start.
pub(crate) fn cert(server: &Server) -> PathBuf {
    server.dir.join("tls/cert.pem")
}

/// How many messages alice's INBOX holds on disk.
pub(crate) fn inbox_count(server: &Server) -> usize {
    let root = server.new_dir("alice").parent().unwrap().to_owned();
    ["new", "cur"]
        .iter()
        .map(|d| std::fs::read_dir(root.join(d)).unwrap().count())
        .sum()
}

pub(crate) fn installed(program: &str, package: &str) -> bool {
    let ok = Command::new(program).arg("--version").output().is_ok();
    if !ok {
        eprintln!("skipped: {program} is not installed (apt-get install {package})");
    }
    ok
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{text}"))
}

/// IMAPClient over imaps, the certificate checked against the server's
/// own: capabilities, folders, search, fetch with ENVELOPE, flags, MOVE,
/// delete and expunge, APPEND with a date, STATUS.
const IMAPCLIENT: &str = r#"
import datetime, ssl, sys
from imapclient import IMAPClient, SEEN, FLAGGED, DELETED
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the certificate names mx.test.example, not 127.0.0.1
c = IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=ctx, timeout=20)
c.normalise_times = False  # INTERNALDATE with its zone, not in local time
print("login", c.login("alice@example.org", "secret"))
caps = c.capabilities()
print("caps", all(x in caps for x in (b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE")))
print("folders", sorted(f[2] for f in c.list_folders()))
print("special", c.find_special_folder(b"\\Sent"), c.find_special_folder(b"\\Trash"))
sel = c.select_folder("INBOX")
print("select", sel[b"EXISTS"], sel[b"UIDNEXT"])
uids = c.search(["ALL"])
print("search", uids, c.search(["SUBJECT", "client test 1"]))
data = c.fetch(uids, ["FLAGS", "RFC822.SIZE", "ENVELOPE", "BODY.PEEK[]"])
for uid in uids:
    d = data[uid]
    body = d[b"BODY[]"]
    print("fetch", uid, d[b"ENVELOPE"].subject.decode(), d[b"RFC822.SIZE"] == len(body), body.endswith(b"\r\n.leading dot\r\n"))
flags = c.add_flags(uids[0], [SEEN, FLAGGED])[uids[0]]
print("flags", sorted(f.decode() for f in flags if f != b"\\Recent"))
print("seen", c.search(["SEEN"]), c.search(["UNSEEN"]))
print("move", c.move([uids[1]], "Junk"))
print("delete", c.delete_messages([uids[2]]))
print("expunge", c.expunge())
print("left", c.search(["ALL"]))
when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
print("append", c.append("Sent", b"Subject: sent by imapclient\r\n\r\nhi\r\n", flags=[SEEN], msg_time=when))
print("status", c.folder_status("Sent", [b"MESSAGES", b"UNSEEN"]), c.folder_status("Junk", [b"MESSAGES"]))
c.select_folder("Sent", readonly=True)
d = c.fetch(c.search(["ALL"]), ["INTERNALDATE", "FLAGS"])
print("sent", [(v[b"INTERNALDATE"].isoformat(), v[b"FLAGS"]) for v in d.values()])
print("logout", c.logout())
"#;

/// Whether PyPI's imapclient imports.
fn imapclient_installed() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import imapclient"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: imapclient is not installed (python3 -m pip install imapclient)");
    }
    ok
}

#[test]
fn imapclient_over_imaps_flags_moves_expunges_and_appends() {
    if !imapclient_installed() {
        return;
    }
    let (server, _tmp) = server_with_mail(3);
    let addr = server.listening("imaps");
    let text = python(
        IMAPCLIENT,
        &[&addr.port().to_string(), cert(&server).to_str().unwrap()],
    );
    assert!(line(&text, "login").contains("Logged in"), "{text}");
    assert_eq!(line(&text, "caps"), "caps True");
    assert_eq!(
        line(&text, "folders"),
        "folders ['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']"
    );
    assert_eq!(line(&text, "special"), "special Sent Trash");
    assert_eq!(line(&text, "select"), "select 3 4");
    assert_eq!(line(&text, "search"), "search [1, 2, 3] [2]");
    assert_eq!(line(&text, "fetch 1"), "fetch 1 client test 0 True True");
    assert_eq!(line(&text, "fetch 3"), "fetch 3 client test 2 True True");
    assert_eq!(line(&text, "flags"), "flags ['\\\\Flagged', '\\\\Seen']");
    assert_eq!(line(&text, "seen"), "seen [1] [2, 3]");
    assert!(line(&text, "delete").contains("\\\\Deleted"), "{text}");
    assert_eq!(line(&text, "left"), "left [1]");
    assert!(line(&text, "append").contains("APPENDUID"), "{text}");
    assert_eq!(
        line(&text, "status"),
        "status {b'MESSAGES': 1, b'UNSEEN': 0} {b'MESSAGES': 1}"
    );
    assert!(
        line(&text, "sent").contains("2024-05-06T07:08:09+00:00"),
        "{text}"
    );
    // What moved is on disk in .Junk, what was expunged is gone.
    let root = server.new_dir("alice").parent().unwrap().to_owned();
    assert_eq!(inbox_count(&server), 1);
    assert_eq!(
        std::fs::read_dir(root.join(".Junk/cur")).unwrap().count(),
        1
    );
}

/// IMAPClient in IDLE on the INBOX while smtplib delivers: the EXISTS
/// arrives within the wait, and the new message is fetched.
const IMAPCLIENT_IDLE: &str = r#"
import smtplib, sys, time
from imapclient import IMAPClient
port, smtp = int(sys.argv[1]), int(sys.argv[2])
c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
c.login("alice@example.org", "secret")
print("select", c.select_folder("INBOX")[b"EXISTS"])
c.idle()
with smtplib.SMTP("127.0.0.1", smtp, timeout=20) as s:
    s.sendmail("bob@example.org", ["alice@example.org"], "Subject: during idle\r\n\r\nwake up\r\n")
start, seen = time.time(), []
while time.time() - start < 30 and not any(r[1] == b"EXISTS" for r in seen):
    seen += c.idle_check(timeout=5)
print("idle", [r for r in seen if r[1] == b"EXISTS"], time.time() - start < 30)
print("done", c.idle_done()[0])
d = c.fetch([2], ["ENVELOPE"])
print("new", d[2][b"ENVELOPE"].subject.decode())
c.logout()
"#;

#[test]
fn imapclient_idle_sees_delivery_over_smtp() {
    if !imapclient_installed() {
        return;
    }
    let (server, _tmp) = server_with_mail(1);
    let addr = server.listening("imap");
    let text = python(
        IMAPCLIENT_IDLE,
        &[&addr.port().to_string(), &server.smtp.port().to_string()],
    );
    assert_eq!(line(&text, "select"), "select 1");
    assert_eq!(line(&text, "idle"), "idle [(2, b'EXISTS')] True");
    assert_eq!(line(&text, "new"), "new during idle");
}
