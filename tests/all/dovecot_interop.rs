//! Postern and a running Dovecot on one Maildir tree (DESIGN §7: "Dovecot
//! must be able to read what we deliver, and we must read what Dovecot
//! delivered"): mail delivered over SMTP and flagged through Postern's IMAP
//! is listed by Dovecot's IMAP with the same UIDs, flags, sizes, dates and
//! bytes; mail appended, flagged and expunged through Dovecot's IMAP and
//! delivered by `dovecot-lda` is read the same way by Postern's IMAP and
//! POP3, and what Postern then changes is what Dovecot shows over its old
//! index files. Skipped, saying so, where Dovecot is not installed.

use std::net::SocketAddr;

use crate::dovecot::{self, Dovecot};
use crate::support::{Client, Server, python, send_accepted, wait_messages};

const SERVICES: &str = "[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n";

/// What one IMAP server shows of alice's mailboxes, read-only (EXAMINE,
/// BODY.PEEK): per mailbox UIDVALIDITY and UIDNEXT, per message UID,
/// flags (without the per-session `\Recent`), RFC822.SIZE, INTERNALDATE
/// and a digest of BODY[]; then, given a POP3 port, whether POP3's LIST
/// and RETR agree with IMAP on the INBOX.
const SNAPSHOT: &str = r#"
import hashlib, imaplib, poplib, re, sys
imap, pop, boxes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
poplib._MAXLINE = 1 << 20  # a 5000-byte line is fine; poplib stops at 2048
m = imaplib.IMAP4("127.0.0.1", imap, timeout=20)
m.login("alice@example.org", "secret")
names = sorted(l.decode().rsplit(" ", 1)[1].strip('"') for l in m.list()[1])
print("list", " ".join(n for n in names if n in boxes))
inbox = []
for box in boxes:
    typ, data = m.select(box, readonly=True)
    assert typ == "OK", (box, data)
    print("box", box, "exists", data[0].decode(),
          "uidvalidity", m.response("UIDVALIDITY")[1][0].decode(),
          "uidnext", m.response("UIDNEXT")[1][0].decode())
    if data[0] == b"0":
        continue
    for item in m.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])")[1]:
        if not isinstance(item, tuple):
            continue
        head, body = item[0].decode(), item[1]
        uid = re.search(r"UID (\d+)", head).group(1)
        flags = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", head).group(1).split() if f != "\\Recent")
        size = re.search(r"RFC822.SIZE (\d+)", head).group(1)
        date = re.search(r'INTERNALDATE "([^"]+)"', head).group(1)
        assert int(size) == len(body), (head, len(body))
        digest = hashlib.sha256(body).hexdigest()[:16]
        print("msg", box, uid, ",".join(flags) or "-", size, date.replace(" ", "_"), digest)
        if box == "INBOX":
            inbox.append((int(size), digest))
m.logout()
if pop:
    p = poplib.POP3("127.0.0.1", pop, timeout=20)
    p.user("alice@example.org"); p.pass_("secret")
    sizes = [int(l.split()[1]) for l in p.list()[1]]
    got = []
    for i, size in enumerate(sizes, 1):
        lines = p.retr(i)[1]
        body = b"".join(l + b"\r\n" for l in lines)
        got.append((size, hashlib.sha256(body).hexdigest()[:16]))
    p.quit()
    print("pop", len(sizes), got == inbox)
"#;

fn snapshot(imap: SocketAddr, pop: Option<SocketAddr>, boxes: &[&str]) -> String {
    let mut args = vec![
        imap.port().to_string(),
        pop.map_or(0, |p| p.port()).to_string(),
    ];
    args.extend(boxes.iter().map(|b| b.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(SNAPSHOT, &args)
}

/// The snapshot's lines about mailboxes and messages (what both servers
/// must agree on).
fn store_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("list ") || l.starts_with("box ") || l.starts_with("msg "))
        .collect()
}

/// Flags three of four messages through Postern's IMAP (system flags and
/// a keyword), copies one into a new folder and expunges another.
const FLAG_IN_POSTERN: &str = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=20)
m.login("alice@example.org", "secret")
m.select("INBOX")
m.store("1", "+FLAGS", "(\\Seen \\Flagged)")
m.store("2", "+FLAGS", "($Work \\Answered)")
m.store("3", "+FLAGS", "(\\Deleted)")
m.expunge()
m.create("Work")
m.copy("3", "Work")
m.store("3", "+FLAGS", "(\\Draft)")
m.logout()
"#;

#[test]
fn dovecot_reads_what_postern_delivered_and_flagged() {
    if !dovecot::installed() {
        return;
    }
    let (server, tmp) = Server::start(SERVICES);
    let mut c = Client::connect(server.smtp);
    for i in 0..4 {
        let body = format!(
            "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: m{i}\r\n\r\n{}.dot line\r\n",
            "line of text\r\n".repeat(i * 40)
        );
        send_accepted(&mut c, "bob@example.org", &["alice@example.org"], &body);
        c.cmd("RSET");
    }
    wait_messages(&server.new_dir("alice"), 4);
    let imap = server.listening("imap");
    let pop = server.listening("pop3");
    python(FLAG_IN_POSTERN, &[&imap.port().to_string()]);
    let boxes = ["INBOX", "Work"];
    let ours = snapshot(imap, Some(pop), &boxes);
    assert!(ours.contains("pop 3 True"), "{ours}");
    // POP3's RETR may have set \Seen (Dovecot's does): what Dovecot must
    // show is the store as it is now.
    let now = snapshot(imap, None, &boxes);
    drop(server);

    let mail = tmp.path().join("mail");
    let dir = tmp.path().join("dovecot");
    std::fs::create_dir(&dir).unwrap();
    let dovecot = Dovecot::start(&dir, &tmp.path().join("users"), &mail);
    dovecot.hand_over(&mail);
    let theirs = snapshot(dovecot.imap, Some(dovecot.pop3), &boxes);
    assert_eq!(
        store_lines(&theirs),
        store_lines(&now),
        "Dovecot:\n{theirs}\nPostern:\n{now}\nDovecot's log:\n{}",
        dovecot.log()
    );
    // What was compared: three messages left in INBOX with the flags set
    // above, UIDs 1, 2 and 4 (3 was expunged), one in Work.
    let msgs: Vec<&str> = store_lines(&ours)
        .into_iter()
        .filter(|l| l.starts_with("msg "))
        .collect();
    assert_eq!(msgs.len(), 4, "{ours}");
    assert!(
        msgs[0].starts_with("msg INBOX 1 \\Flagged,\\Seen "),
        "{ours}"
    );
    assert!(
        msgs[1].starts_with("msg INBOX 2 $Work,\\Answered "),
        "{ours}"
    );
    assert!(msgs[2].starts_with("msg INBOX 4 \\Draft "), "{ours}");
    assert!(msgs[3].starts_with("msg Work 1 - "), "{ours}");
    assert!(theirs.contains("pop 3 True"), "{theirs}");
    // Nothing Postern wrote (uidlist, keywords, names) made Dovecot
    // complain or rebuild.
    let log = dovecot.log();
    assert!(!log.contains("Error:") && !log.contains("Panic:"), "{log}");
}

/// Through Dovecot's IMAP: a folder created, messages appended with flags
/// and a keyword, one expunged (a gap in the UIDs).
const WRITE_IN_DOVECOT: &str = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=20)
m.login("alice@example.org", "secret")
date = imaplib.Time2Internaldate(1700000000)
msg = lambda i, extra="": ("From: carol@example.net\r\nTo: alice@example.org\r\nSubject: d%d\r\n\r\nbody %d\r\n%s" % (i, i, extra)).encode()
print(m.append("INBOX", "(\\Seen \\Answered)", date, msg(1))[0])
print(m.append("INBOX", "(\\Flagged $Label1)", date, msg(2, "x" * 5000 + "\r\n"))[0])
print(m.append("INBOX", "(\\Deleted)", date, msg(3))[0])
print(m.append("INBOX", "()", date, msg(4, ".leading dot\r\n"))[0])
m.select("INBOX")
print(m.expunge()[0])
print(m.create("Work")[0])
print(m.append("Work", "(\\Seen)", date, msg(5))[0])
m.logout()
"#;

#[test]
fn postern_reads_what_dovecot_appended_flagged_and_delivered() {
    if !dovecot::installed() {
        return;
    }
    let (server, tmp) = Server::start(SERVICES);
    let mail = tmp.path().join("mail");
    let dir = tmp.path().join("dovecot");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let dovecot = Dovecot::start(&dir, &tmp.path().join("users"), &mail);
    dovecot.hand_over(&mail);
    let text = python(WRITE_IN_DOVECOT, &[&dovecot.imap.port().to_string()]);
    assert_eq!(text, "OK\n".repeat(7), "{}", dovecot.log());
    // dovecot-lda stores what it is given; a pipe from an MTA has bare LFs.
    dovecot.lda(
        "alice@example.org",
        b"From: dave@example.net\nTo: alice@example.org\nSubject: lda\n\nvia dovecot-lda\n",
    );
    let boxes = ["INBOX", "Work"];
    let theirs = snapshot(dovecot.imap, None, &boxes);
    let log = dovecot.log();
    assert!(!log.contains("Error:") && !log.contains("Panic:"), "{log}");
    drop(dovecot);

    let imap = server.listening("imap");
    let pop = server.listening("pop3");
    let ours = snapshot(imap, Some(pop), &boxes);
    assert_eq!(
        store_lines(&ours),
        store_lines(&theirs),
        "Postern:\n{ours}\nDovecot:\n{theirs}\nPostern's log:\n{}",
        server.log()
    );
    let msgs: Vec<&str> = store_lines(&theirs)
        .into_iter()
        .filter(|l| l.starts_with("msg "))
        .collect();
    assert_eq!(msgs.len(), 5, "{theirs}");
    assert!(
        msgs[0].starts_with("msg INBOX 1 \\Answered,\\Seen "),
        "{theirs}"
    );
    assert!(
        msgs[1].starts_with("msg INBOX 2 $Label1,\\Flagged "),
        "{theirs}"
    );
    assert!(msgs[2].starts_with("msg INBOX 4 - "), "{theirs}");
    assert!(msgs[3].starts_with("msg INBOX 5 - "), "{theirs}");
    assert!(msgs[4].starts_with("msg Work 1 \\Seen "), "{theirs}");
    // POP3 sees the four INBOX messages, sizes and bytes as IMAP does.
    assert!(ours.contains("pop 4 True"), "{ours}");

    // And back: Postern changes what Dovecot had indexed (a keyword added
    // and one removed, an expunge, an append); Dovecot, started again
    // over its old index files, shows Postern's state.
    python(CHANGE_IN_POSTERN, &[&imap.port().to_string()]);
    let now = snapshot(imap, None, &boxes);
    drop(server);
    let dir = tmp.path().join("dovecot-again");
    std::fs::create_dir(&dir).unwrap();
    let dovecot = Dovecot::start(&dir, &tmp.path().join("users"), &mail);
    dovecot.hand_over(&mail);
    let again = snapshot(dovecot.imap, None, &boxes);
    assert_eq!(
        store_lines(&again),
        store_lines(&now),
        "Dovecot:\n{again}\nPostern:\n{now}\nDovecot's log:\n{}",
        dovecot.log()
    );
    assert!(
        now.contains("msg INBOX 1 $Postern,\\Answered,\\Flagged,\\Seen "),
        "{now}"
    );
    assert!(now.contains("msg Work 2 $Postern "), "{now}");
    assert!(
        !now.contains("$Label1") && !now.contains("msg INBOX 4 "),
        "{now}"
    );
    let log = dovecot.log();
    assert!(!log.contains("Error:") && !log.contains("Panic:"), "{log}");
}

/// Through Postern's IMAP, on what Dovecot wrote: a new keyword and a
/// flag on UID 1, Dovecot's keyword taken off UID 2, UID 4 expunged, a
/// message appended to Work with the new keyword.
const CHANGE_IN_POSTERN: &str = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=20)
m.login("alice@example.org", "secret")
m.select("INBOX")
m.uid("STORE", "1", "+FLAGS", "($Postern \\Flagged)")
m.uid("STORE", "2", "-FLAGS", "($Label1)")
m.uid("STORE", "4", "+FLAGS", "(\\Deleted)")
m.expunge()
m.append("Work", "($Postern)", None, b"Subject: from postern\r\n\r\nhi\r\n")
m.logout()
"#;
