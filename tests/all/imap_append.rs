//! IMAP APPEND and a crash: Python's imaplib appends messages in a loop
//! while the server is killed (SIGKILL) at an arbitrary moment, three
//! times; after each restart every acknowledged message is there with its
//! APPENDUID and its exact bytes, every message there is whole (one that
//! was being saved is either absent or complete, never partial), UIDs
//! ascend, UIDNEXT is above all of them, and the next APPEND gets UIDNEXT.
//! A killed server may leave the UID list's lock behind: the restarted one
//! must not wait for it to go stale.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::{Server, WAIT, python};

const SERVICES: &str = "[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n";

/// Message `i` as the appender sends it: about 5 KiB, so that a write
/// can be cut in the middle.
const MESSAGE: &str = r#"
def message(i):
    return (f"Subject: append {i}\r\n\r\n" + f"line {i} of the body\r\n" * 250).encode()
"#;

/// Appends messages from `first` on until the connection dies, printing
/// `ok INDEX APPENDUID-CODE` for each acknowledged one.
const APPENDER: &str = r#"
import imaplib, sys
host, port, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = imaplib.IMAP4(host, port, timeout=30)
m.login("alice@example.org", "secret")
i = first
while True:
    try:
        typ, data = m.append("INBOX", None, None, message(i))
    except Exception as e:
        print("dead", i, type(e).__name__, flush=True)
        break
    print("ok" if typ == "OK" else "no", i, data[0].decode(), flush=True)
    i += 1
"#;

/// Lists the mailbox after a restart: `status ...`, `msg UID INDEX
/// whole|partial` for each message, then appends message `mine`
/// (`after CODE`).
const CHECKER: &str = r#"
import imaplib, re, sys
host, port, mine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = imaplib.IMAP4(host, port, timeout=60)
m.login("alice@example.org", "secret")
m.select("INBOX")
typ, st = m.status("INBOX", "(UIDNEXT UIDVALIDITY MESSAGES)")
print("status", st[0].decode())
typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
for item in data:
    if not isinstance(item, tuple):
        continue
    uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
    body = item[1]
    i = int(re.match(rb"Subject: append (\d+)\r\n", body).group(1))
    print("msg", uid, i, "whole" if body == message(i) else "partial")
typ, data = m.append("INBOX", None, None, message(mine))
print("after", data[0].decode())
"#;

/// The indices the checker appends with, above the appender's.
const CHECKER_INDEX: u32 = 1_000_000;

/// The UID in `[APPENDUID validity uid]`.
fn appenduid(code: &str) -> (u32, u32) {
    let rest = code
        .split("APPENDUID ")
        .nth(1)
        .unwrap_or_else(|| panic!("{code}"));
    let mut fields = rest.split([' ', ']']);
    let validity = fields.next().unwrap().parse().unwrap();
    let uid = fields.next().unwrap().parse().unwrap();
    (validity, uid)
}

/// A few milliseconds that differ from run to run: where in an APPEND
/// the kill lands.
fn jitter() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_micros(u64::from(nanos % 20_000))
}

#[test]
fn a_killed_server_leaves_no_partial_message_and_no_reused_uid() {
    let (mut server, tmp) = Server::start(SERVICES);
    let mut acknowledged: BTreeMap<u32, u32> = BTreeMap::new();
    let mut validity = None;
    let mut next_index = 0;
    for round in 0..3 {
        let addr = server.listening("imap");
        let script = format!("{MESSAGE}{APPENDER}");
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .args([
                addr.ip().to_string(),
                addr.port().to_string(),
                next_index.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        let mut oks = 0;
        // Some acknowledged, then the kill, somewhere in a later APPEND.
        while oks < 10 {
            let line = lines.next().unwrap().unwrap();
            assert!(line.starts_with("ok "), "round {round}: {line}");
            let mut f = line.splitn(3, ' ');
            let (_, index) = (f.next(), f.next().unwrap().parse::<u32>().unwrap());
            let (v, uid) = appenduid(f.next().unwrap());
            assert_eq!(*validity.get_or_insert(v), v, "UIDVALIDITY changed");
            assert!(
                acknowledged.insert(uid, index).is_none(),
                "UID {uid} given twice"
            );
            oks += 1;
            assert!(started.elapsed() < WAIT);
        }
        std::thread::sleep(jitter());
        server.kill();
        for line in lines {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("ok ") {
                let mut f = rest.splitn(2, ' ');
                let index = f.next().unwrap().parse::<u32>().unwrap();
                let (_, uid) = appenduid(f.next().unwrap());
                assert!(
                    acknowledged.insert(uid, index).is_none(),
                    "UID {uid} given twice"
                );
            }
        }
        child.wait().unwrap();

        server = Server::start_in(tmp.path());
        let addr = server.listening("imap");
        let began = Instant::now();
        let mine = CHECKER_INDEX + round;
        let out = python(
            &format!("{MESSAGE}{CHECKER}"),
            &[
                &addr.ip().to_string(),
                &addr.port().to_string(),
                &mine.to_string(),
            ],
        );
        // No wait for a lock the killed server held.
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{:?}",
            began.elapsed()
        );
        let status = out.lines().find(|l| l.starts_with("status ")).unwrap();
        let uidnext: u32 = status
            .split("UIDNEXT ")
            .nth(1)
            .and_then(|s| s.split([' ', ')']).next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        let mut present = BTreeMap::new();
        for line in out.lines().filter(|l| l.starts_with("msg ")) {
            let f: Vec<&str> = line.split(' ').collect();
            let (uid, index): (u32, u32) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            assert_eq!(
                f[3], "whole",
                "round {round}: UID {uid} is not whole:\n{out}"
            );
            assert!(
                uid < uidnext,
                "UID {uid} not below UIDNEXT {uidnext}:\n{out}"
            );
            assert!(present.insert(uid, index).is_none());
            if index < CHECKER_INDEX {
                next_index = next_index.max(index + 1);
            }
        }
        let indices: std::collections::BTreeSet<u32> = present.values().copied().collect();
        assert_eq!(
            indices.len(),
            present.len(),
            "a message saved twice:\n{out}"
        );
        for (uid, index) in &acknowledged {
            assert_eq!(
                present.get(uid),
                Some(index),
                "round {round}: acknowledged UID {uid} (message {index}) lost:\n{out}"
            );
        }
        let after = out.lines().find(|l| l.starts_with("after ")).unwrap();
        let (v, uid) = appenduid(after);
        assert_eq!(Some(v), validity, "UIDVALIDITY changed:\n{out}");
        assert_eq!(uid, uidnext, "the next APPEND did not get UIDNEXT:\n{out}");
        // The checker's message stays, acknowledged too.
        acknowledged.insert(uid, mine);
        eprintln!(
            "round {round}: {} messages, UIDNEXT {uidnext}, killed after {} acknowledged",
            present.len(),
            acknowledged.len()
        );
    }
}
