//! POP3 end to end: mail delivered over SMTP, read with Python's poplib
//! over pop3 (plain on loopback, and STLS) and pop3s.

use std::path::{Path, PathBuf};

use crate::support::{Client, Server, python, send_accepted, wait_messages};

const SERVICES: &str = "auth_failure_delay = \"1s\"\n\
    [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"pop3s\"\nlisten = \"127.0.0.1:0\"\n";

/// A body with a line that must be dot-stuffed on the way out.
const BODY: &str = "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: pop\r\n\r\nfirst line\r\n.leading dot\r\n..two dots\r\nlast line\r\n";

/// Starts a server with pop3 and pop3s and delivers BODY to alice.
fn server_with_mail() -> (Server, tempfile::TempDir, Vec<u8>) {
    let (server, tmp) = Server::start(SERVICES);
    let mut c = Client::connect(server.smtp);
    send_accepted(&mut c, "bob@example.org", &["alice@example.org"], BODY);
    let m = wait_messages(&server.new_dir("alice"), 1);
    (server, tmp, m[0].clone())
}

fn maildir(server: &Server) -> PathBuf {
    server.new_dir("alice").parent().unwrap().to_owned()
}

fn files(dir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|d| std::fs::read_dir(dir.join(d)).unwrap().count())
        .sum()
}

/// Logs in with USER/PASS (or STLS first, or pop3s), prints STAT, LIST,
/// UIDL, writes RETR 1 (rebuilt with CRLF) to a file, then runs `then`
/// (`dele-quit`, `dele-rset`, `quit`).
const SESSION: &str = r#"
import poplib, ssl, sys
host, port, mode, then, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode == "pop3s":
    p = poplib.POP3_SSL(host, port, context=ctx, timeout=10)
else:
    p = poplib.POP3(host, port, timeout=10)
    if mode == "stls":
        print("capa-before", "STLS" in p.capa())
        print(p.stls(context=ctx).decode())
        print("capa-after", "STLS" in p.capa())
print(p.user("alice@example.org").decode())
print(p.pass_("secret").decode())
print("stat", p.stat())
resp, lines, _ = p.list()
print("list", [l.decode() for l in lines])
resp, uids, _ = p.uidl()
print("uidl", [u.decode() for u in uids])
resp, lines, octets = p.retr(1)
open(out, "wb").write(b"\r\n".join(lines) + b"\r\n")
print("retr", resp.decode())
resp, lines, _ = p.top(1, 1)
print("top", [l.decode() for l in lines])
if then.startswith("dele"):
    print(p.dele(1).decode())
    if then == "dele-rset":
        print(p.rset().decode())
print(p.quit().decode())
"#;

fn session(server: &Server, service: &str, mode: &str, then: &str) -> (String, Vec<u8>) {
    let addr = server.listening(service);
    let out = server.dir.join(format!("retr-{mode}-{then}"));
    let text = python(
        SESSION,
        &[
            "127.0.0.1",
            &addr.port().to_string(),
            mode,
            then,
            out.to_str().unwrap(),
        ],
    );
    (text, std::fs::read(out).unwrap())
}

fn uidl_line(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("uidl "))
        .unwrap()
        .to_owned()
}

#[test]
fn user_pass_lists_retrieves_byte_identically_and_uidl_is_stable() {
    let (server, _tmp, stored) = server_with_mail();
    let (first, retr) = session(&server, "pop3", "plain", "quit");
    assert!(first.contains("+OK Logged in."), "{first}");
    let size = stored.len();
    assert!(first.contains(&format!("stat (1, {size})")), "{first}");
    assert!(first.contains(&format!("list ['1 {size}']")), "{first}");
    assert!(
        first.contains(&format!("retr +OK {size} octets")),
        "{first}"
    );
    // What poplib returns is the Maildir file byte for byte: the
    // Return-Path and Delivered-To Postern added, then the message as sent.
    assert_eq!(retr, stored);
    let text = String::from_utf8(retr).unwrap();
    assert!(
        text.starts_with("Return-Path: <bob@example.org>\r\nDelivered-To: alice@example.org\r\n"),
        "{text}"
    );
    assert!(text.contains(BODY), "{text}");
    assert!(first.contains("'', 'first line']"), "TOP 1 1: {first}");
    // The message moved to cur/ and keeps its id in the next session.
    assert!(
        std::fs::read_dir(server.new_dir("alice"))
            .unwrap()
            .next()
            .is_none()
    );
    let (second, _) = session(&server, "pop3", "plain", "quit");
    assert_eq!(uidl_line(&first), uidl_line(&second));
    let name = std::fs::read_dir(maildir(&server).join("cur"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let base = name.to_str().unwrap().split(':').next().unwrap().to_owned();
    assert_eq!(uidl_line(&first), format!("uidl ['1 {base}']"));

    let log = server.wait_log("Disconnected: Logged out");
    assert!(
        log.contains(
            "Login: user=<alice@example.org>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid="
        ),
        "{log}"
    );
    assert!(log.contains(", secured"), "{log}");
    assert!(
        log.contains("pop3(alice@example.org): Disconnected: Logged out top=1/"),
        "{log}"
    );
    assert!(
        log.contains(&format!("retr=1/{size}, del=0/1, size={size}")),
        "{log}"
    );
}

#[test]
fn dele_then_rset_keeps_and_dele_then_quit_removes() {
    let (server, _tmp, _) = server_with_mail();
    let dir = maildir(&server);
    let (out, _) = session(&server, "pop3", "plain", "dele-rset");
    assert!(out.contains("+OK Marked to be deleted."), "{out}");
    assert_eq!(files(&dir), 1, "RSET unmarked it");
    let (out, _) = session(&server, "pop3", "plain", "dele-quit");
    assert!(out.contains("+OK Logging out."), "{out}");
    assert_eq!(files(&dir), 0, "QUIT removed it");
    server.wait_log("del=1/1");
}

#[test]
fn stls_and_pop3s() {
    let (server, _tmp, stored) = server_with_mail();
    let (out, retr) = session(&server, "pop3", "stls", "quit");
    assert!(out.contains("capa-before True"), "{out}");
    assert!(out.contains("+OK Begin TLS negotiation now."), "{out}");
    assert!(out.contains("capa-after False"), "{out}");
    assert_eq!(retr, stored);
    let (out, retr) = session(&server, "pop3s", "pop3s", "quit");
    assert!(out.contains("+OK Logged in."), "{out}");
    assert_eq!(retr, stored);
    let log = server.wait_log(", TLS");
    assert!(log.contains("method=PLAIN, rip=127.0.0.1"), "{log}");
}

#[test]
fn second_session_is_in_use_and_wrong_password_fails() {
    let (server, _tmp, _) = server_with_mail();
    let addr = server.listening("pop3");
    let script = r#"
import poplib, sys, base64
port = int(sys.argv[1])
a = poplib.POP3("127.0.0.1", port, timeout=10)
a.user("alice@example.org"); a.pass_("secret")
b = poplib.POP3("127.0.0.1", port, timeout=10)
b.user("alice@example.org")
try:
    b.pass_("secret")
    print("second login worked")
except poplib.error_proto as e:
    print(e.args[0].decode())
a.quit()
# Once the first session is gone the mailbox is free again, here by
# AUTH PLAIN with an initial response (RFC 5034).
ir = base64.b64encode(b"\0alice@example.org\0secret").decode()
print(b._shortcmd("AUTH PLAIN " + ir).decode())
print(b.stat())
b.quit()
c = poplib.POP3("127.0.0.1", port, timeout=10)
c.user("alice@example.org")
try:
    c.pass_("wrong")
    print("wrong password worked")
except poplib.error_proto as e:
    print(e.args[0].decode())
print(c.quit().decode())
"#;
    let out = python(script, &[&addr.port().to_string()]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "-ERR [IN-USE] Mailbox is locked by another POP3 session.",
            "+OK Logged in.",
            &format!(
                "(1, {})",
                std::fs::read(
                    std::fs::read_dir(maildir(&server).join("cur"))
                        .unwrap()
                        .next()
                        .unwrap()
                        .unwrap()
                        .path()
                )
                .unwrap()
                .len()
            ),
            "-ERR [AUTH] Authentication failed.",
            "+OK Logging out",
        ]
    );
    server.wait_log("Authentication failed: user=<alice@example.org>");
}

/// RETR sets \Seen when the session ends with QUIT, as Dovecot does by
/// default, and an IMAP client of the same mailbox sees it; TOP sets
/// nothing, and a RETR in a session that ends without QUIT neither.
#[test]
fn retr_sets_seen_at_quit_and_imap_sees_it() {
    let (server, _tmp) = Server::start(&format!(
        "{SERVICES}[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n"
    ));
    for n in 1..=3 {
        let mut c = Client::connect(server.smtp);
        send_accepted(&mut c, "bob@example.org", &["alice@example.org"], BODY);
        wait_messages(&server.new_dir("alice"), n);
    }
    let pop = server.listening("pop3").port().to_string();
    let imap = server.listening("imap").port().to_string();
    let text = python(
        r#"
import imaplib, poplib, sys, time
pop, imap = int(sys.argv[1]), int(sys.argv[2])
# No QUIT: the RETR leaves no mark.
p = poplib.POP3("127.0.0.1", pop, timeout=10)
p.user("alice@example.org"); p.pass_("secret"); p.retr(3)
p.sock.close()
# The server frees the mailbox once it sees the close: until then, IN-USE.
for _ in range(50):
    p = poplib.POP3("127.0.0.1", pop, timeout=10)
    p.user("alice@example.org")
    try:
        p.pass_("secret")
        break
    except poplib.error_proto:
        p.sock.close()
        time.sleep(0.1)
p.retr(1); p.top(2, 0)
print("quit", p.quit().decode())
m = imaplib.IMAP4("127.0.0.1", imap, timeout=10)
m.login("alice@example.org", "secret")
m.select("INBOX")
print("unseen", m.search(None, "UNSEEN")[1])
print("seen", m.search(None, "SEEN")[1])
m.logout()
"#,
        &[&pop, &imap],
    );
    assert!(text.contains("quit +OK Logging out."), "{text}");
    assert!(text.contains("unseen [b'2 3']"), "{text}");
    assert!(text.contains("seen [b'1']"), "{text}");
    server.wait_log("retr=1/");
}
