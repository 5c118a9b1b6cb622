//! The session's tests, end to end over a pipe: login rules, malformed
//! commands, UPDATE only at QUIT, the idle timeout and the server's stop.
//! Apart because they outweigh the code they drive; `settings` and
//! `exchange` serve handover.rs's tests too.

use super::*;
use postern_auth::{FailurePolicy, UserDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;

#[derive(Debug)]
struct Fixed(PathBuf);

impl Mailboxes for Fixed {
    fn maildir(&self, _login: &str) -> Option<PathBuf> {
        Some(self.0.clone())
    }
}

/// Also the settings of the handed-over session's tests (handover.rs).
pub(super) fn settings(dir: &std::path::Path, timeout: Duration) -> Arc<Settings> {
    let users = UserDb::parse("alice@example.org:{PLAIN}secret::::\n", "users").unwrap();
    let auth = Arc::new(Authenticator::new(
        Arc::new(users),
        FailurePolicy {
            delay: Duration::from_millis(1),
            limit: 5,
        },
    ));
    let mut s = Settings::new(auth, Arc::new(Fixed(dir.join("Maildir"))));
    s.max_line = 64;
    s.command_timeout = timeout;
    Arc::new(s)
}

/// Runs a session from `peer`, sends `input`, returns all it answered.
async fn talk(peer: &str, dir: &std::path::Path, input: &[u8]) -> String {
    talk_with(peer, dir, input, Duration::from_secs(5)).await
}

async fn talk_with(peer: &str, dir: &std::path::Path, input: &[u8], timeout: Duration) -> String {
    let conn = Connection {
        peer: peer.parse().unwrap(),
        local: "192.0.2.1:110".parse().unwrap(),
    };
    let settings = settings(dir, timeout);
    exchange(|server| serve(server, conn, settings), input).await
}

/// Runs the session `start` makes of one end of a pipe, sends `input`
/// to it, returns all it answered; also for the handed-over session
/// (handover.rs).
pub(super) async fn exchange<F>(start: impl FnOnce(DuplexStream) -> F, input: &[u8]) -> String
where
    F: Future<Output = ()> + Send + 'static,
{
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let task = tokio::spawn(start(server));
    client.write_all(input).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    task.await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn plaintext_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = talk(
        "198.51.100.7:40000",
        dir.path(),
        b"CAPA\r\nUSER alice@example.org\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        out,
        "+OK Postern ready.\r\n\
         +OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n.\r\n\
         -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n\
         -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n\
         +OK Logging out\r\n"
    );
}

#[tokio::test]
async fn auth_plain_and_malformed_commands_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("NOOP {}\r\n", "x".repeat(100));
    let input = format!(
        "STAT\r\nPASS secret\r\nAUTH CRAM-MD5\r\nAUTH PLAIN\r\n*\r\n\
         AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n\r\n\
         AUTH PLAIN\r\nAGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n\
         STAT\r\nRETR 1\r\nLIST 0\r\nDELE x\r\nTOP 1\r\nBOGUS\r\n{long}STLS\r\nQUIT\r\n"
    );
    let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(
        lines,
        [
            "+OK Postern ready.",
            "-ERR Unknown command.",
            "-ERR No username given.",
            "-ERR Unsupported authentication mechanism.",
            "+ ",
            "-ERR Authentication aborted by client.",
            "-ERR [AUTH] Authentication failed.",
            "+ ",
            "+OK Logged in.",
            "+OK 0 0",
            "-ERR There's no message 1.",
            "-ERR Invalid message number: 0",
            "-ERR Invalid message number: x",
            "-ERR TOP: Missing line count.",
            "-ERR Unknown command: BOGUS",
            "-ERR Input line too long.",
            "-ERR Unknown command.",
            "+OK Logging out.",
            "",
        ]
    );
}

/// RETR sets \Seen at QUIT, as Dovecot does; TOP does not, nor does
/// a RETR in a session that ends without QUIT.
#[tokio::test]
async fn retr_sets_seen_at_quit() {
    let dir = tempfile::tempdir().unwrap();
    let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
    for body in ["one", "two", "three"] {
        md.deliver(format!("Subject: {body}\r\n\r\n{body}\r\n").as_bytes())
            .unwrap();
    }
    let login = "USER alice@example.org\r\nPASS secret\r\n";
    let out = talk_with(
        "127.0.0.1:40000",
        dir.path(),
        format!("{login}RETR 1\r\n").as_bytes(),
        Duration::from_millis(100),
    )
    .await;
    assert!(out.contains("one\r\n.\r\n"), "{out}");
    let seen = |md: &postern_mailbox::Maildir| -> Vec<bool> {
        md.scan()
            .unwrap()
            .iter()
            .map(|e| e.path.to_str().unwrap().ends_with(":2,S"))
            .collect()
    };
    assert_eq!(seen(&md), [false, false, false], "no QUIT, no UPDATE");
    let input = format!("{login}RETR 1\r\nTOP 2 0\r\nRETR 3\r\nDELE 3\r\nQUIT\r\n");
    let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
    assert!(out.ends_with("+OK Logging out.\r\n"), "{out}");
    assert_eq!(seen(&md), [true, false]);
}

#[tokio::test]
async fn idle_client_is_logged_out_and_marks_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
    md.deliver(b"Subject: x\r\n\r\nbody\r\n").unwrap();
    let out = talk_with(
        "127.0.0.1:40000",
        dir.path(),
        b"USER alice@example.org\r\nPASS secret\r\nDELE 1\r\n",
        Duration::from_millis(100),
    )
    .await;
    assert!(
        out.ends_with("+OK Marked to be deleted.\r\n-ERR Disconnected for inactivity.\r\n"),
        "{out}"
    );
    // No QUIT, no UPDATE state: the message stays.
    assert_eq!(md.scan().unwrap().len(), 1);
}

#[tokio::test]
async fn stop_closes_the_session_and_keeps_marked_messages() {
    let dir = tempfile::tempdir().unwrap();
    let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
    md.deliver(b"Subject: x\r\n\r\nbody\r\n").unwrap();
    let (tx, rx) = watch::channel(false);
    let mut s = (*settings(dir.path(), Duration::from_secs(5))).clone();
    s.stop = Some(rx);
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let conn = Connection {
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:110".parse().unwrap(),
    };
    let task = tokio::spawn(serve(server, conn, Arc::new(s)));
    client
        .write_all(b"USER alice@example.org\r\nPASS secret\r\nDELE 1\r\n")
        .await
        .unwrap();
    let want = "+OK Marked to be deleted.\r\n";
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).ends_with(want) {
        let mut chunk = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&chunk[..n]);
    }
    tx.send(true).unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"-ERR [SYS/TEMP] Server shutting down.\r\n");
    task.await.unwrap();
    assert_eq!(md.scan().unwrap().len(), 1);
}
