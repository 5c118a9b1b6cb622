//! CONDSTORE end to end (RFC 7162 §3.1) with Python's imaplib: two
//! sessions on one INBOX, where one's STORE reaches the other as an
//! untagged FETCH with the same MODSEQ; a delivery over SMTP raising
//! HIGHESTMODSEQ; CHANGEDSINCE, UNCHANGEDSINCE with MODIFIED, SEARCH
//! MODSEQ; MODSEQs that survive a restart; QRESYNC's catch-up at SELECT;
//! malformed CONDSTORE arguments answered with a tagged BAD while the
//! server keeps serving.

use crate::support::{Client, Server, python, send_accepted, wait_messages};

const SERVICES: &str = "[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n";

fn deliver(server: &Server, subject: &str, n: usize) {
    let mut c = Client::connect(server.smtp);
    let body = format!(
        "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: {subject}\r\n\r\nhi\r\n"
    );
    send_accepted(&mut c, "bob@example.org", &["alice@example.org"], &body);
    wait_messages(&server.new_dir("alice"), n);
}

/// Session A enables CONDSTORE with ENABLE, session B with SELECT
/// (CONDSTORE); A stores, B hears of it; a delivery raises the
/// HIGHESTMODSEQ both see. Prints `name value` lines.
const TWO_SESSIONS: &str = r#"
import imaplib, re, smtplib, sys, time
port, smtp = int(sys.argv[1]), int(sys.argv[2])
def modseq(data):
    return int(re.search(rb"MODSEQ \((\d+)\)", data).group(1))
a = imaplib.IMAP4("127.0.0.1", port, timeout=10)
b = imaplib.IMAP4("127.0.0.1", port, timeout=10)
a.login("alice@example.org", "secret"); b.login("alice@example.org", "secret")
print("caps", b"CONDSTORE" in a.capability()[1][0])
print("enable", a.enable("CONDSTORE")[0], a.untagged_responses.get("ENABLED"))
a.select("INBOX")
highest = int(a.response("HIGHESTMODSEQ")[1][0])
typ, data = b._simple_command("SELECT", "INBOX", "(CONDSTORE)")
b.state = "SELECTED"
print("b-select", typ, int(b.response("HIGHESTMODSEQ")[1][0]) == highest)
typ, data = a.store("1", "+FLAGS", "(\\Flagged)")
stored = modseq(data[0])
print("a-store", typ, stored > highest, data[0])
b.noop()
typ, pushed = b.response("FETCH")
print("b-pushed", pushed)
print("same-modseq", modseq(pushed[0]) == stored)
typ, data = b.uid("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % highest)
print("changedsince", typ, len(data), modseq(data[0]) == stored)
typ, data = b._simple_command("UID", "STORE", "1:2", "(UNCHANGEDSINCE %d)" % highest, "+FLAGS.SILENT", "(\\Seen)")
print("unchangedsince", typ, data)
print("search-modseq", b.uid("SEARCH", None, "MODSEQ", str(stored + 1))[1])
print("status", a.status("INBOX", "(HIGHESTMODSEQ)")[1])
# A delivery: a new message with a MODSEQ above everything before.
smtp = smtplib.SMTP("127.0.0.1", smtp, timeout=10)
print("delivered", smtp.sendmail("bob@example.org", ["alice@example.org"], b"Subject: third\r\n\r\nx\r\n") == {})
smtp.quit()
for _ in range(50):
    typ, data = a.status("INBOX", "(MESSAGES HIGHESTMODSEQ)")
    if b"MESSAGES 3" in data[0]:
        break
    time.sleep(0.1)
after = int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1))
print("delivery-raises", after > stored, data[0])
a.noop()
typ, data = a.fetch("3", "(MODSEQ)")
print("new-modseq", modseq(data[-1]) == after, len(data))
a.logout(); b.logout()
"#;

#[test]
fn one_sessions_store_reaches_the_other_with_its_modseq() {
    let (server, _tmp) = Server::start(SERVICES);
    deliver(&server, "one", 1);
    deliver(&server, "two", 2);
    let addr = server.listening("imap");
    let text = python(
        TWO_SESSIONS,
        &[&addr.port().to_string(), &server.smtp.port().to_string()],
    );
    let line = |prefix: &str| -> &str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"))
    };
    assert_eq!(line("caps "), "caps True");
    assert_eq!(line("enable "), "enable OK [b'CONDSTORE']");
    assert_eq!(line("b-select "), "b-select OK True");
    assert!(line("a-store ").starts_with("a-store OK True"), "{text}");
    assert!(
        line("b-pushed ").contains("1 (FLAGS (\\\\Flagged) MODSEQ ("),
        "{text}"
    );
    assert_eq!(line("same-modseq "), "same-modseq True");
    assert_eq!(line("changedsince "), "changedsince OK 1 True");
    assert_eq!(
        line("unchangedsince "),
        "unchangedsince OK [b'[MODIFIED 1] Conditional store failed.']",
        "{text}"
    );
    assert!(line("search-modseq ").contains("2 (MODSEQ "), "{text}");
    assert!(line("status ").contains("HIGHESTMODSEQ "), "{text}");
    assert_eq!(line("delivered "), "delivered True");
    assert!(
        line("delivery-raises ").starts_with("delivery-raises True"),
        "{text}"
    );
    // B's STORE reached A at its NOOP, before the FETCH of the new one.
    assert_eq!(line("new-modseq "), "new-modseq True 2");
    // Kept beside the Maildir, where Dovecot keeps its own files.
    let maildir = server.new_dir("alice").parent().unwrap().to_owned();
    let state = std::fs::read_to_string(maildir.join("postern-state")).unwrap();
    assert!(state.starts_with("postern-state 1 V"), "{state}");
}

/// MODSEQs are durable: after a restart the same messages have the same
/// MODSEQs and HIGHESTMODSEQ has not gone back.
#[test]
fn modseqs_survive_a_restart() {
    let (server, tmp) = Server::start(SERVICES);
    deliver(&server, "one", 1);
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=10)
m.login("alice@example.org", "secret")
m.select("INBOX")
if sys.argv[2] == "store":
    m.store("1", "+FLAGS", "(\\Answered)")
print(m.fetch("1", "(MODSEQ)")[1][0].decode())
print(m.status("INBOX", "(HIGHESTMODSEQ)")[1][0].decode())
m.logout()
"#;
    let first = python(
        script,
        &[&server.listening("imap").port().to_string(), "store"],
    );
    server.kill();
    let server = Server::start_in(tmp.path());
    let second = python(
        script,
        &[&server.listening("imap").port().to_string(), "look"],
    );
    assert_eq!(first, second);
    assert!(first.contains("MODSEQ ("), "{first}");
}

/// QRESYNC (RFC 7162 §3.2): a client that saw the mailbox at some
/// HIGHESTMODSEQ comes back after another session expunged one message
/// and flagged another, and learns both at SELECT; that session's own
/// EXPUNGE is told as VANISHED.
#[test]
fn qresync_catches_up_at_select() {
    let (server, _tmp) = Server::start(SERVICES);
    for (n, subject) in ["one", "two", "three"].iter().enumerate() {
        deliver(&server, subject, n + 1);
    }
    let script = r#"
import imaplib, re, sys
port = int(sys.argv[1])
def login():
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    m.login("alice@example.org", "secret")
    return m
a = login()
typ, data = a.status("INBOX", "(UIDVALIDITY HIGHESTMODSEQ)")
v, h = re.search(rb"UIDVALIDITY (\d+) HIGHESTMODSEQ (\d+)", data[0]).groups()
a.logout()
b = login()
b.enable("QRESYNC")
b.select("INBOX")
b.store("1", "+FLAGS.SILENT", "(\\Deleted)")
b.store("2", "+FLAGS.SILENT", "(\\Flagged)")
print("expunge", b.expunge(), b.untagged_responses.get("VANISHED"))
b.logout()
c = login()
print("enable", c.enable("QRESYNC")[0], c.untagged_responses.get("ENABLED"))
typ, data = c._simple_command("SELECT", "INBOX", "(QRESYNC (%s %s))" % (v.decode(), h.decode()))
print("select", typ, c.untagged_responses.get("VANISHED"), c.untagged_responses.get("FETCH"))
c.logout()
"#;
    let text = python(script, &[&server.listening("imap").port().to_string()]);
    assert!(text.contains("expunge ('OK', [None]) [b'1']"), "{text}");
    assert!(text.contains("enable OK [b'QRESYNC']"), "{text}");
    assert!(
        text.contains("select OK [b'(EARLIER) 1'] [b'1 (UID 2 FLAGS (\\\\Flagged) MODSEQ ("),
        "{text}"
    );
}

/// Malformed CONDSTORE arguments: each gets a tagged BAD, and the
/// session (and server) go on.
const MALFORMED: &str = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
f.readline()
def cmd(data, tag):
    s.sendall(data)
    while True:
        l = f.readline().decode(errors="replace").strip()
        if l.startswith(tag + " ") or l == "":
            return l
cmd(b"a LOGIN alice@example.org secret\r\n", "a")
print(cmd(b"b SELECT INBOX (CONDSTORE FROB)\r\n", "b"))
print(cmd(b"c SELECT INBOX (CONDSTORE)\r\n", "c"))
print(cmd(b"d FETCH 1 (FLAGS) (CHANGEDSINCE)\r\n", "d"))
print(cmd(b"e FETCH 1 (FLAGS) (CHANGEDSINCE 0)\r\n", "e"))
print(cmd(b"f FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999)\r\n", "f"))
print(cmd(b"g STORE 1 (UNCHANGEDSINCE abc) +FLAGS (\\Seen)\r\n", "g"))
print(cmd(b"h STORE 1 (UNCHANGEDSINCE 5 +FLAGS (\\Seen)\r\n", "h"))
print(cmd(b"i UID SEARCH MODSEQ\r\n", "i"))
print(cmd(b"j UID SEARCH MODSEQ \"/flags/\\\\seen\" everyone 1\r\n", "j"))
print(cmd(b"k STATUS INBOX (HIGHESTMODSEQ BOGUS)\r\n", "k"))
print(cmd(b"l UID SEARCH MODSEQ \"/flags/\\\\seen\" all 1\r\n", "l"))
print(cmd(b"m LOGOUT\r\n", "m"))
"#;

#[test]
fn malformed_condstore_arguments_get_tagged_bad() {
    let (server, _tmp) = Server::start(SERVICES);
    deliver(&server, "one", 1);
    let addr = server.listening("imap");
    let text = python(MALFORMED, &[&addr.port().to_string()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12, "{text}");
    let bad: Vec<&str> = lines
        .iter()
        .filter(|l| l.split(' ').nth(1) == Some("BAD"))
        .map(|l| &l[..1])
        .collect();
    assert_eq!(bad, ["b", "d", "e", "f", "g", "h", "i", "j", "k"], "{text}");
    assert!(lines[1].starts_with("c OK [READ-WRITE]"), "{text}");
    assert!(lines[10].starts_with("l OK"), "{text}");
    assert!(lines[11].starts_with("m OK"), "{text}");
}
