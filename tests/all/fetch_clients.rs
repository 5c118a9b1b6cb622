//! The fetching mail clients against a running server: fetchmail and
//! getmail6 (Debian) fetching over POP3 and IMAP, with TLS checked
//! against the server's certificate, into an mbox file or a Maildir,
//! keeping or deleting as told. A test whose client is not installed says
//! so and passes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mail_clients::{CERT_NAME, cert, deliver, inbox_count, installed, server_with_mail};
use crate::support::{Server, message_files, output_text, wait_messages};

/// fetchmail polling alice's mailbox on a server, its files (rc, pid, id
/// file) in `dir`, each message handed to an MDA that appends it to the
/// mbox file `mbox`.
struct Fetchmail<'a> {
    server: &'a Server,
    dir: &'a Path,
    mbox: PathBuf,
}

impl<'a> Fetchmail<'a> {
    fn new(server: &'a Server, dir: &'a Path) -> Fetchmail<'a> {
        let mbox = dir.join("fetched.mbox");
        Fetchmail { server, dir, mbox }
    }

    /// Runs fetchmail once, polling `port` with `protocol`, TLS as `tls`
    /// says (`ssl` for implicit TLS, `sslproto 'tls1.2+'` for
    /// STLS/STARTTLS), the certificate checked, then `then` (keep,
    /// fetchall, ...); its exit code and output.
    fn poll(&self, port: SocketAddr, protocol: &str, tls: &str, then: &str) -> (i32, String) {
        use std::os::unix::fs::PermissionsExt;
        let rc = format!(
            "poll 127.0.0.1 service {port} protocol {protocol} timeout 20\n  \
             user \"alice@example.org\" password \"secret\"\n  \
             {tls} sslcertck sslcertfile \"{cert}\" sslcommonname \"{CERT_NAME}\"\n  \
             {then}\n  \
             mda \"python3 -c 'import mailbox, sys; mailbox.mbox(sys.argv[1]).add(sys.stdin.buffer.read())' {mbox}\"\n",
            port = port.port(),
            cert = cert(self.server).display(),
            mbox = self.mbox.display(),
        );
        // Mode 0600, as fetchmail demands.
        let dir = self.dir;
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
        let text = output_text(&out);
        (out.status.code().unwrap_or(-1), text)
    }
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
    let f = Fetchmail::new(&server, tmp.path());
    let mbox = &f.mbox;
    // pop3s, keep: both fetched, both left on the server, their UIDLs
    // remembered in fetchmail's id file.
    let (code, text) = f.poll(server.listening("pop3s"), "POP3", "ssl", "keep");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 messages for alice@example.org"), "{text}");
    assert_eq!(mbox_subjects(mbox), ["client test 0", "client test 1"]);
    assert_eq!(inbox_count(&server), 2);
    // pop3 with STLS, keep: UIDL says both were seen; nothing fetched
    // (fetchmail's "no mail" exit code).
    let pop3 = server.listening("pop3");
    let stls = "sslproto 'tls1.2+'";
    let (code, text) = f.poll(pop3, "POP3", stls, "keep");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("POP3> STLS"), "{text}");
    assert!(text.contains("2 messages (2 seen)"), "{text}");
    // A third arrives; no keep: only the new one is fetched, and deleted.
    deliver(&server, 2..3);
    wait_messages(&server.new_dir("alice"), 1);
    let (code, text) = f.poll(pop3, "POP3", stls, "nokeep");
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(mbox).last().unwrap(), "client test 2");
    assert_eq!(inbox_count(&server), 2, "{text}");
    // fetchall, no keep: the two old ones too; the mailbox is empty.
    let (code, text) = f.poll(pop3, "POP3", stls, "fetchall nokeep");
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(mbox).len(), 5, "{text}");
    assert_eq!(inbox_count(&server), 0, "{text}");
    // The dot-stuffed line arrived unstuffed in every copy.
    let text = std::fs::read_to_string(mbox).unwrap();
    assert_eq!(text.matches("\n.leading dot\n").count(), 5, "{text}");
}

#[test]
fn fetchmail_imap_fetches_unseen_then_deletes_over_tls() {
    if !installed("fetchmail", "fetchmail") {
        return;
    }
    let (server, tmp) = server_with_mail(2);
    let f = Fetchmail::new(&server, tmp.path());
    let mbox = &f.mbox;
    // imaps, keep: both fetched and marked seen.
    let (code, text) = f.poll(server.listening("imaps"), "IMAP", "ssl", "keep");
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(mbox), ["client test 0", "client test 1"]);
    assert_eq!(inbox_count(&server), 2);
    // imap with STARTTLS, keep: nothing unseen, nothing fetched.
    let imap = server.listening("imap");
    let (code, text) = f.poll(imap, "IMAP", "sslproto 'tls1.2+'", "keep");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("STARTTLS"), "{text}");
    // A third message arrives; fetchall, no keep: all three fetched,
    // flagged \Deleted and expunged.
    deliver(&server, 2..3);
    wait_messages(&server.new_dir("alice"), 1);
    let (code, text) = f.poll(imap, "IMAP", "sslproto 'tls1.2+'", "fetchall nokeep");
    assert_eq!(code, 0, "{text}");
    assert_eq!(mbox_subjects(mbox).len(), 5, "{text}");
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
    let text = output_text(&out);
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

/// getmail options: fetch what is new and keep it on the server.
const KEEP: &str = "read_all = false\ndelete = false";

/// getmail options: fetch everything and delete it from the server.
const DELETE: &str = "read_all = true\ndelete = true";

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
    let pop3s = server.listening("pop3s");
    let rc = |options| getmail_rc(&server, "SimplePOP3SSLRetriever", pop3s, &local, options);
    let keep = rc(KEEP);
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 2);
    // Known UIDLs are not fetched again; a new message is.
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 0);
    deliver(&server, 2..3);
    wait_messages(&server.new_dir("alice"), 1);
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 1);
    assert_eq!(maildir_count(&local), 3);
    assert_eq!(inbox_count(&server), 3);
    let delete = rc(DELETE);
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
    let imaps = server.listening("imaps");
    let rc = |options| getmail_rc(&server, "SimpleIMAPSSLRetriever", imaps, &local, options);
    let keep = rc(KEEP);
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 2);
    assert_eq!(retrieved(&getmail(tmp.path(), &keep)), 0);
    assert_eq!(inbox_count(&server), 2);
    let delete = rc(DELETE);
    assert_eq!(retrieved(&getmail(tmp.path(), &delete)), 2);
    assert_eq!(inbox_count(&server), 0);
    // What getmail wrote is the message, with its own headers on top.
    let new = local.join("new");
    let first = message_files(&new).remove(0);
    let text = std::fs::read_to_string(first).unwrap();
    assert!(
        text.contains("X-getmail-retrieved-from-mailbox: INBOX"),
        "{text}"
    );
    assert!(text.contains("\n.leading dot\n"), "{text}");
}
