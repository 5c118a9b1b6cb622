use super::*;
use postern_auth::{FailurePolicy, UserDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

#[derive(Debug)]
struct Fixed(PathBuf);

impl Mailboxes for Fixed {
    fn maildir(&self, _login: &str) -> Option<PathBuf> {
        Some(self.0.clone())
    }
}

fn settings(dir: &std::path::Path) -> Arc<Settings> {
    let users = UserDb::parse("alice@example.org:{PLAIN}secret::::\n", "users").unwrap();
    let auth = Arc::new(Authenticator::new(
        Arc::new(users),
        FailurePolicy {
            delay: Duration::from_millis(1),
            limit: 5,
        },
    ));
    let mut s = Settings::new(auth, Arc::new(Fixed(dir.join("Maildir"))));
    s.max_line = 200;
    s.max_literal = 1000;
    s.command_timeout = Duration::from_secs(5);
    Arc::new(s)
}

/// Runs a session from `peer`, sends `input`, returns all it answered.
async fn talk(peer: &str, dir: &std::path::Path, input: &[u8]) -> String {
    talk_with(peer, settings(dir), input).await
}

async fn talk_with(peer: &str, settings: Arc<Settings>, input: &[u8]) -> String {
    let (server, mut client): (DuplexStream, DuplexStream) = tokio::io::duplex(1 << 20);
    let conn = Connection {
        peer: peer.parse().unwrap(),
        local: "192.0.2.1:143".parse().unwrap(),
    };
    let task = tokio::spawn(serve(server, conn, settings));
    client.write_all(input).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    task.await.unwrap();
    String::from_utf8(out).unwrap()
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

#[tokio::test]
async fn plaintext_login_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = talk(
        "198.51.100.7:40000",
        dir.path(),
        b"a CAPABILITY\r\nb LOGIN alice@example.org secret\r\nc AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\nd SELECT INBOX\r\ne LOGOUT\r\n",
    )
    .await;
    assert!(
        line(&out, "* CAPABILITY").contains("LOGINDISABLED"),
        "{out}"
    );
    assert!(
        line(&out, "b ").starts_with("b NO [PRIVACYREQUIRED]"),
        "{out}"
    );
    assert!(
        line(&out, "c ").starts_with("c NO [PRIVACYREQUIRED]"),
        "{out}"
    );
    assert_eq!(line(&out, "d "), "d BAD Please log in first.");
    assert!(
        out.ends_with("* BYE Logging out\r\ne OK Logout completed.\r\n"),
        "{out}"
    );
}

#[tokio::test]
async fn mail_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
    md.deliver(b"From: Bob <bob@example.org>\r\nSubject: first\r\n\r\nhello\r\n")
        .unwrap();
    let msg = "Subject: appended\r\n\r\nbody\r\n";
    let input = format!(
        "a AUTHENTICATE PLAIN\r\nAGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n\
         b LIST \"\" *\r\n\
         b2 LIST (SUBSCRIBED) \"\" (INBOX Junk) RETURN (STATUS (MESSAGES UNSEEN))\r\n\
         c SELECT INBOX\r\n\
         d APPEND INBOX (\\Flagged) {{{}}}\r\n{msg}\r\n\
         e NOOP\r\n\
         f FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)\r\n\
         g UID FETCH 2 (BODY[HEADER.FIELDS (SUBJECT)] BODY[TEXT]<0.2>)\r\n\
         h STORE 1 +FLAGS (\\Deleted $Junk)\r\n\
         i SEARCH DELETED\r\n\
         j UID SEARCH FLAGGED SUBJECT appended\r\n\
         k UID COPY 1:* Trash\r\n\
         l EXPUNGE\r\n\
         m STATUS Trash (MESSAGES UIDNEXT UNSEEN)\r\n\
         n FETCH 1 FLAGS\r\n\
         o LOGOUT\r\n",
        msg.len()
    );
    let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
    assert!(
        line(&out, "a ").starts_with("a OK [CAPABILITY IMAP4rev1"),
        "{out}"
    );
    assert!(
        out.contains("* LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "* LIST (\\HasNoChildren \\Subscribed) \".\" INBOX\r\n* STATUS INBOX (MESSAGES 1 UNSEEN 1)\r\n\
             * LIST (\\HasNoChildren \\Subscribed \\Junk) \".\" Junk\r\n* STATUS Junk (MESSAGES 0 UNSEEN 0)\r\nb2 OK"
        ),
        "{out}"
    );
    assert!(out.contains("* 1 EXISTS\r\n* 1 RECENT\r\n"), "{out}");
    assert_eq!(line(&out, "c "), "c OK [READ-WRITE] Select completed.");
    assert!(line(&out, "d ").starts_with("d OK [APPENDUID "), "{out}");
    assert!(out.contains("* 2 EXISTS\r\n"), "{out}");
    assert!(
        out.contains("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE 54 ENVELOPE (NIL \"first\" ((\"Bob\" NIL \"bob\" \"example.org\"))"),
        "{out}"
    );
    assert!(
        out.contains("* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent)"),
        "{out}"
    );
    assert!(
        out.contains("* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {21}\r\nSubject: appended\r\n\r\n BODY[TEXT]<0> {2}\r\nbo FLAGS (\\Flagged \\Seen \\Recent))"),
        "{out}"
    );
    assert!(
        out.contains("* 1 FETCH (FLAGS ($Junk \\Deleted \\Recent))"),
        "{out}"
    );
    assert!(out.contains("* SEARCH 1\r\ni OK"), "{out}");
    assert!(out.contains("* SEARCH 2\r\nj OK"), "{out}");
    assert!(line(&out, "k ").starts_with("k OK [COPYUID "), "{out}");
    assert!(line(&out, "k ").contains(" 1:2 1:2]"), "{out}");
    assert!(
        out.contains("* 1 EXPUNGE\r\nl OK Expunge completed."),
        "{out}"
    );
    assert!(
        out.contains("* STATUS Trash (MESSAGES 2 UIDNEXT 3 UNSEEN 1)"),
        "{out}"
    );
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\nn OK"),
        "{out}"
    );
    // On disk: Maildir++ with Dovecot's files.
    let root = dir.path().join("Maildir");
    assert!(root.join("dovecot-uidlist").exists());
    assert!(root.join(".Trash/dovecot-uidlist").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("dovecot-keywords")).unwrap(),
        "0 $Junk\n"
    );
}

#[tokio::test]
async fn malformed_input_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("t5 NOOP {}\r\n", "x".repeat(300));
    let input = format!(
        "t1 LOGIN alice@example.org secret\r\n\
         t2 FROB\r\n\
         (bad\r\n\
         t3 SELECT \"unterminated\r\n\
         t4 APPEND INBOX {{5000}}\r\n\
         {long}\
         t6 FETCH 1 (FLAGS\r\n\
         t7 SEARCH CHARSET KOI8-R ALL\r\n\
         t8 SELECT {{2}}\r\nZZ\r\n\
         t9 SELECT INBOX\r\n\
         t10 FETCH 5 FLAGS\r\n\
         t11 APPEND INBOX {{9000+}}\r\n"
    );
    // Invalid UTF-8 in a mailbox name.
    let input = input.replace("ZZ", "\u{1}\u{1}").into_bytes();
    let input: Vec<u8> = input
        .into_iter()
        .map(|b| if b == 1 { 0xff } else { b })
        .collect();
    let out = talk("127.0.0.1:40000", dir.path(), &input).await;
    assert!(line(&out, "t1 ").starts_with("t1 OK"), "{out}");
    assert_eq!(
        line(&out, "t2 "),
        "t2 BAD Error in IMAP command: Unknown command."
    );
    assert!(
        line(&out, "* BAD").contains("Error in IMAP command"),
        "{out}"
    );
    assert!(line(&out, "t3 ").starts_with("t3 BAD"), "{out}");
    assert_eq!(line(&out, "t4 "), "t4 NO [TOOBIG] Literal too large.");
    assert!(line(&out, "t5 ").contains("Too long argument"), "{out}");
    assert!(line(&out, "t6 ").starts_with("t6 BAD"), "{out}");
    assert!(line(&out, "t7 ").starts_with("t7 NO [BADCHARSET"), "{out}");
    assert!(line(&out, "t8 ").starts_with("t8 BAD"), "{out}");
    assert!(line(&out, "t9 ").starts_with("t9 OK"), "{out}");
    assert!(line(&out, "t10 ").starts_with("t10 BAD"), "{out}");
    assert!(
        out.ends_with("t11 BAD [TOOBIG] Literal too large.\r\n* BYE Literal too large.\r\n"),
        "{out}"
    );
}

#[tokio::test]
async fn sessions_per_user_and_address_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let ip = "127.0.0.1".parse().unwrap();
    let held: Vec<_> = (0..10)
        .map(|_| settings.userip.enter("alice@example.org", ip, 10).unwrap())
        .collect();
    let out = talk_with(
        "127.0.0.1:40000",
        settings.clone(),
        b"a LOGIN alice@example.org secret\r\nb LOGOUT\r\n",
    )
    .await;
    assert!(
        line(&out, "a ")
            .starts_with("a NO [LIMIT] Maximum number of connections from user+IP exceeded"),
        "{out}"
    );
    drop(held);
    let out = talk_with(
        "127.0.0.1:40000",
        settings,
        b"a LOGIN alice@example.org secret\r\nb LOGOUT\r\n",
    )
    .await;
    assert!(line(&out, "a ").starts_with("a OK"), "{out}");
}

#[tokio::test]
async fn stop_answers_what_was_read_then_says_bye() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = watch::channel(false);
    let mut s = (*settings(dir.path())).clone();
    s.stop = Some(rx);
    tx.send(true).unwrap();
    // Stopped already: the commands that came are carried out (IDLE
    // included), then the wait for DONE ends with BYE.
    let out = talk_with(
        "127.0.0.1:40000",
        Arc::new(s),
        b"a LOGIN alice@example.org secret\r\nb SELECT INBOX\r\nc IDLE\r\n",
    )
    .await;
    assert!(line(&out, "a ").starts_with("a OK"), "{out}");
    assert!(line(&out, "b ").starts_with("b OK"), "{out}");
    assert!(out.contains("+ idling\r\n"), "{out}");
    assert!(out.ends_with("* BYE Server shutting down.\r\n"), "{out}");
    assert!(!out.contains("c OK"), "{out}");
    drop(tx);
}
