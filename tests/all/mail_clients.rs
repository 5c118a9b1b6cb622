//! Real mail clients against a running server: IMAPClient (PyPI's
//! `imapclient`) logging in over imaps, listing, fetching, flagging,
//! moving, expunging and appending, and IDLE seeing a delivery over SMTP;
//! fetchmail and getmail6 (Debian) fetching over POP3 and IMAP, with TLS
//! checked against the server's certificate, into an mbox file or a
//! Maildir, keeping or deleting as told. A test whose client is not
//! installed says so and passes (as `imap::mbsync_round_trip` does).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Client, Server, python, send_message, wait_messages};

const SERVICES: &str = "[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"imaps\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"pop3s\"\nlisten = \"127.0.0.1:0\"\n";

/// The name in the server's self-signed certificate (`myhostname` of the
/// test config): clients check the certificate against it.
const CERT_NAME: &str = "mx.test.example";

/// Where `service` listens, from the server's `listening on` line.
fn port(server: &Server, service: &str) -> SocketAddr {
    let needle = format!("listening on {service} ");
    let log = server.wait_log(&needle);
    let line = log.lines().find_map(|l| l.split(&needle).nth(1)).unwrap();
    line.trim().parse().unwrap()
}

/// Starts a server and delivers `n` messages to alice over SMTP.
fn server_with_mail(n: usize) -> (Server, tempfile::TempDir) {
    let (server, tmp) = Server::start(SERVICES);
    deliver(&server, 0..n);
    wait_messages(&server.new_dir("alice"), n);
    (server, tmp)
}

fn deliver(server: &Server, range: std::ops::Range<usize>) {
    let mut c = Client::connect(server.smtp);
    for i in range {
        let body = format!(
            "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: client test {i}\r\n\r\nmessage {i}\r\n.leading dot\r\n"
        );
        let r = send_message(&mut c, "bob@example.org", &["alice@example.org"], &body);
        assert!(r.starts_with("250"), "{r}");
        c.cmd("RSET");
    }
}

/// The server's self-signed certificate (PEM), made at start.
fn cert(server: &Server) -> PathBuf {
    server.dir.join("tls/cert.pem")
}

/// How many messages alice's INBOX holds on disk.
fn inbox_count(server: &Server) -> usize {
    let root = server.new_dir("alice").parent().unwrap().to_owned();
    ["new", "cur"]
        .iter()
        .map(|d| std::fs::read_dir(root.join(d)).unwrap().count())
        .sum()
}

fn installed(program: &str, package: &str) -> bool {
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
    let addr = port(&server, "imaps");
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
    let addr = port(&server, "imap");
    let text = python(
        IMAPCLIENT_IDLE,
        &[&addr.port().to_string(), &server.smtp.port().to_string()],
    );
    assert_eq!(line(&text, "select"), "select 1");
    assert_eq!(line(&text, "idle"), "idle [(2, b'EXISTS')] True");
    assert_eq!(line(&text, "new"), "new during idle");
}

/// Runs fetchmail once on `rc` (written mode 0600, as fetchmail demands)
/// with its pid and id files under `dir`; returns its exit code and output.
fn fetchmail(dir: &Path, rc: &str) -> (i32, String) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fetchmailrc");
    std::fs::write(&path, rc).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("fetchmail")
        .arg("--fetchmailrc")
        .arg(&path)
        .arg("--pidfile")
        .arg(dir.join("fetchmail.pid"))
        .arg("--idfile")
        .arg(dir.join("fetchids"))
        .args(["--nosyslog", "--nodetach", "-v"])
        .env("HOME", dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A fetchmail poll of alice's mailbox at `port` with `protocol`, TLS as
/// `tls` says (`ssl` for implicit TLS, `sslproto 'tls1.2+'` for
/// STLS/STARTTLS), the certificate checked, each message handed to an MDA
/// that appends it to the mbox file `mbox`.
fn fetchmail_rc(
    server: &Server,
    port: SocketAddr,
    protocol: &str,
    tls: &str,
    then: &str,
    mbox: &Path,
) -> String {
    format!(
        "poll 127.0.0.1 service {port} protocol {protocol} timeout 20\n  \
         user \"alice@example.org\" password \"secret\"\n  \
         {tls} sslcertck sslcertfile \"{cert}\" sslcommonname \"{CERT_NAME}\"\n  \
         {then}\n  \
         mda \"python3 -c 'import mailbox, sys; mailbox.mbox(sys.argv[1]).add(sys.stdin.buffer.read())' {mbox}\"\n",
        port = port.port(),
        cert = cert(server).display(),
        mbox = mbox.display(),
    )
}

fn mbox_subjects(mbox: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(mbox).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("Subject: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn fetchmail_pop3_keeps_then_deletes_over_tls() {
    if !installed("fetchmail", "fetchmail") {
        return;
    }
    let (server, tmp) = server_with_mail(2);
    let mbox = tmp.path().join("fetched.mbox");
    // pop3s, keep: both fetched, both left on the server, their UIDLs
    // remembered in fetchmail's id file.
    let rc = fetchmail_rc(
        &server,
        port(&server, "pop3s"),
        "POP3",
        "ssl",
        "keep",
        &mbox,
    );
    let (code, text) = fetchmail(tmp.path(), &rc);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 messages for alice@example.org"), "{text}");
    assert_eq!(mbox_subjects(&mbox), ["client test 0", "client test 1"]);
    assert_eq!(inbox_count(&server), 2);
    // pop3 with STLS, keep: UIDL says both were seen; nothing fetched
    // (fetchmail's "no mail" exit code).
    let pop3 = port(&server, "pop3");
    let stls = "sslproto 'tls1.2+'";
    let rc = fetchmail_rc(&server, pop3, "POP3", stls, "keep", &mbox);
    let (code, text) = fetchmail(tmp.path(), &rc);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("POP3> STLS"), "{text}");
    assert!(text.contains("2 messages (2 seen)"), "{text}");
    // A third arrives; no keep: only the new one is fetched, and deleted.
    deliver(&server, 2..3);
    wait_messages(&server.new_dir("alice"), 1);
    let rc = fetchmail_rc(&server, pop3, "POP3", stls, "nokeep", &mbox);
    let (code, text) = fetchmail(tmp.path(), &rc);
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(&mbox).last().unwrap(), "client test 2");
    assert_eq!(inbox_count(&server), 2, "{text}");
    // fetchall, no keep: the two old ones too; the mailbox is empty.
    let rc = fetchmail_rc(&server, pop3, "POP3", stls, "fetchall nokeep", &mbox);
    let (code, text) = fetchmail(tmp.path(), &rc);
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(&mbox).len(), 5, "{text}");
    assert_eq!(inbox_count(&server), 0, "{text}");
    // The dot-stuffed line arrived unstuffed in every copy.
    let text = std::fs::read_to_string(&mbox).unwrap();
    assert_eq!(text.matches("\n.leading dot\n").count(), 5, "{text}");
}

#[test]
fn fetchmail_imap_fetches_unseen_then_deletes_over_tls() {
    if !installed("fetchmail", "fetchmail") {
        return;
    }
    let (server, tmp) = server_with_mail(2);
    let mbox = tmp.path().join("fetched.mbox");
    // imaps, keep: both fetched and marked seen.
    let rc = fetchmail_rc(
        &server,
        port(&server, "imaps"),
        "IMAP",
        "ssl",
        "keep",
        &mbox,
    );
    let (code, text) = fetchmail(tmp.path(), &rc);
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(&mbox), ["client test 0", "client test 1"]);
    assert_eq!(inbox_count(&server), 2);
    // imap with STARTTLS, keep: nothing unseen, nothing fetched.
    let imap = port(&server, "imap");
    let rc = fetchmail_rc(&server, imap, "IMAP", "sslproto 'tls1.2+'", "keep", &mbox);
    let (code, text) = fetchmail(tmp.path(), &rc);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("STARTTLS"), "{text}");
    // A third message arrives; fetchall, no keep: all three fetched,
    // flagged \Deleted and expunged.
    deliver(&server, 2..3);
    wait_messages(&server.new_dir("alice"), 1);
    let rc = fetchmail_rc(
        &server,
        imap,
        "IMAP",
        "sslproto 'tls1.2+'",
        "fetchall nokeep",
        &mbox,
    );
    let (code, text) = fetchmail(tmp.path(), &rc);
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(&mbox).len(), 5, "{text}");
    assert_eq!(inbox_count(&server), 0, "{text}");
}

/// Runs getmail once with `rc` as its rc file and its state (what it
/// has already retrieved) under `dir/getmail`; returns its output.
fn getmail(dir: &Path, rc: &str) -> String {
    let state = dir.join("getmail");
    std::fs::create_dir_all(&state).unwrap();
    let path = state.join("getmailrc");
    std::fs::write(&path, rc).unwrap();
    let out = Command::new("getmail")
        .arg(format!("--getmaildir={}", state.display()))
        .arg(format!("--rcfile={}", path.display()))
        .env("HOME", dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "getmail failed:\n{text}");
    text
}

/// A getmail rc: `retriever` (a getmail class) at `port`, the certificate
/// checked, into the Maildir `maildir`, with `options`.
fn getmail_rc(
    server: &Server,
    retriever: &str,
    port: SocketAddr,
    maildir: &Path,
    options: &str,
) -> String {
    format!(
        "[retriever]\ntype = {retriever}\nserver = 127.0.0.1\nport = {port}\n\
         username = alice@example.org\npassword = secret\n\
         ca_certs = {cert}\nssl_cert_hostname = {CERT_NAME}\n\
         [destination]\ntype = Maildir\npath = {maildir}/\n{user}\
         [options]\nverbose = 1\nmessage_log_syslog = false\n{options}\n",
        port = port.port(),
        cert = cert(server).display(),
        maildir = maildir.display(),
        // getmail refuses to write a Maildir as root; it switches to `user`.
        user = if rustix::process::geteuid().is_root() {
            "user = nobody\n"
        } else {
            ""
        },
    )
}

/// getmail's summary line: "N messages (B bytes) retrieved, S skipped".
fn retrieved(text: &str) -> usize {
    let l = text
        .lines()
        .find(|l| l.contains(" retrieved, "))
        .unwrap_or_else(|| panic!("no summary in:\n{text}"));
    l.trim().split(' ').next().unwrap().parse().unwrap()
}

/// A Maildir for getmail to fill; as root, owned by `nobody` (whom
/// getmail becomes to write it) below a directory it may enter.
fn local_maildir(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let m = dir.join("Local");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(m.join(sub)).unwrap();
    }
    if rustix::process::geteuid().is_root() {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let f: Vec<&str> = passwd
            .lines()
            .find(|l| l.starts_with("nobody:"))
            .expect("a nobody user")
            .split(':')
            .collect();
        let (uid, gid) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        for p in [m.clone(), m.join("cur"), m.join("new"), m.join("tmp")] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    m
}

fn maildir_count(m: &Path) -> usize {
    std::fs::read_dir(m.join("new")).unwrap().count()
        + std::fs::read_dir(m.join("cur")).unwrap().count()
}

#[test]
fn getmail_pop3_remembers_uidls_then_deletes() {
    if !installed("getmail", "getmail6") {
        return;
    }
    let (server, tmp) = server_with_mail(2);
    let local = local_maildir(tmp.path());
    let pop3s = port(&server, "pop3s");
    let keep = getmail_rc(
        &server,
        "SimplePOP3SSLRetriever",
        pop3s,
        &local,
        "read_all = false\ndelete = false",
    );
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 2);
    // Known UIDLs are not fetched again; a new message is.
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 0);
    deliver(&server, 2..3);
    wait_messages(&server.new_dir("alice"), 1);
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 1);
    assert_eq!(maildir_count(&local), 3);
    assert_eq!(inbox_count(&server), 3);
    let delete = getmail_rc(
        &server,
        "SimplePOP3SSLRetriever",
        pop3s,
        &local,
        "read_all = true\ndelete = true",
    );
    assert_eq!(retrieved(&getmail(tmp.path(), &delete)), 3);
    assert_eq!(inbox_count(&server), 0);
    assert_eq!(maildir_count(&local), 6);
}

#[test]
fn getmail_imap_into_maildir_then_deletes() {
    if !installed("getmail", "getmail6") {
        return;
    }
    let (server, tmp) = server_with_mail(2);
    let local = local_maildir(tmp.path());
    let imaps = port(&server, "imaps");
    let keep = getmail_rc(
        &server,
        "SimpleIMAPSSLRetriever",
        imaps,
        &local,
        "read_all = false\ndelete = false",
    );
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 2);
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 0);
    assert_eq!(inbox_count(&server), 2);
    let delete = getmail_rc(
        &server,
        "SimpleIMAPSSLRetriever",
        imaps,
        &local,
        "read_all = true\ndelete = true",
    );
    assert_eq!(retrieved(&getmail(tmp.path(), &delete)), 2);
    assert_eq!(inbox_count(&server), 0);
    // What getmail wrote is the message, with its own headers on top.
    let new = local.join("new");
    let first = std::fs::read_dir(&new)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(first).unwrap();
    assert!(
        text.contains("X-getmail-retrieved-from-mailbox: INBOX"),
        "{text}"
    );
    assert!(text.contains("\n.leading dot\n"), "{text}");
}
