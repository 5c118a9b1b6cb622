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

/// Also the settings of the handed-over session's tests (handover.rs).
pub(super) fn settings(dir: &std::path::Path) -> Arc<Settings> {
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
    let conn = Connection {
        peer: peer.parse().unwrap(),
        local: "192.0.2.1:143".parse().unwrap(),
    };
    exchange(|server| serve(server, conn, settings), input).await
}

/// Runs the session `start` makes of one end of a pipe, sends `input` to
/// it, returns all it answered; also for the handed-over session
/// (handover.rs).
pub(super) async fn exchange<F>(start: impl FnOnce(DuplexStream) -> F, input: &[u8]) -> String
where
    F: Future<Output = ()> + Send + 'static,
{
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(start(server));
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

/// CONDSTORE (RFC 7162): HIGHESTMODSEQ at SELECT and in STATUS, FETCH
/// MODSEQ and CHANGEDSINCE, STORE with MODSEQ in its FETCH and
/// UNCHANGEDSINCE with MODIFIED, SEARCH MODSEQ; bad arguments are BAD.
#[tokio::test]
async fn condstore() {
    let dir = tempfile::tempdir().unwrap();
    let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
    md.deliver(b"Subject: one\r\n\r\n1\r\n").unwrap();
    md.deliver(b"Subject: two\r\n\r\n2\r\n").unwrap();
    let input = "a LOGIN alice@example.org secret\r\n\
         b CAPABILITY\r\n\
         c SELECT INBOX (CONDSTORE)\r\n\
         d FETCH 1:* (UID MODSEQ)\r\n\
         e STORE 1 +FLAGS (\\Seen)\r\n\
         f UID STORE 1:2 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)\r\n\
         g STORE 2 (UNCHANGEDSINCE 9223372036854775807) +FLAGS.SILENT ($Work)\r\n\
         h SEARCH MODSEQ 1\r\n\
         i FETCH 1:* (FLAGS) (CHANGEDSINCE 9223372036854775807)\r\n\
         j STATUS INBOX (HIGHESTMODSEQ MESSAGES)\r\n\
         k FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n\
         l STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)\r\n\
         m SEARCH MODSEQ\r\n\
         n SELECT INBOX (FROB)\r\n\
         o EXAMINE INBOX\r\n\
         p LOGOUT\r\n";
    let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
    assert!(line(&out, "* CAPABILITY").contains(" CONDSTORE"), "{out}");
    let highest: u64 = line(&out, "* OK [HIGHESTMODSEQ ")
        .split(' ')
        .nth(3)
        .unwrap()
        .trim_end_matches(']')
        .parse()
        .unwrap();
    let modseq_of = |prefix: &str| -> u64 {
        let l = line(&out, prefix);
        let at = l.find("MODSEQ (").unwrap() + 8;
        l[at..].split(')').next().unwrap().parse().unwrap()
    };
    assert_eq!(modseq_of("* 2 FETCH (UID 2 MODSEQ"), highest);
    assert!(modseq_of("* 1 FETCH (UID 1 MODSEQ") < highest);
    let seen = modseq_of("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ");
    assert!(seen > highest, "{out}");
    assert_eq!(
        line(&out, "f "),
        "f OK [MODIFIED 1:2] Conditional store failed.",
        "{out}"
    );
    assert!(modseq_of("* 2 FETCH (MODSEQ") > seen, "{out}");
    assert!(line(&out, "g ").starts_with("g OK Store"), "{out}");
    assert!(line(&out, "* SEARCH 1 2 (MODSEQ ").len() > 20, "{out}");
    assert!(out.contains("\r\ni OK"), "nothing changed since: {out}");
    assert!(line(&out, "* STATUS INBOX (HIGHESTMODSEQ ").ends_with(" MESSAGES 2)"));
    for tag in ["k ", "l ", "m ", "n "] {
        assert!(line(&out, tag)[2..].starts_with("BAD"), "{out}");
    }
    // CONDSTORE stays on for the session: EXAMINE reports HIGHESTMODSEQ.
    assert!(out.contains("[HIGHESTMODSEQ ") && line(&out, "o ").starts_with("o OK [READ-ONLY]"));
    assert!(out.matches("* OK [HIGHESTMODSEQ ").count() >= 2, "{out}");
}

/// \Recent (RFC 3501 §2.3.2): EXAMINE shows it without taking it, the
/// first SELECT takes it, a second SELECT sees none; STATUS counts it.
#[tokio::test]
async fn recent_goes_to_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
    md.deliver(b"Subject: one\r\n\r\n1\r\n").unwrap();
    let session = "a LOGIN alice@example.org secret\r\n\
         b STATUS INBOX (RECENT)\r\n\
         c EXAMINE INBOX\r\n\
         d SELECT INBOX\r\n\
         e LOGOUT\r\n";
    let out = talk("127.0.0.1:40000", dir.path(), session.as_bytes()).await;
    assert!(out.contains("* STATUS INBOX (RECENT 1)"), "{out}");
    assert_eq!(out.matches("* 1 RECENT\r\n").count(), 2, "{out}");
    let again = talk("127.0.0.1:40000", dir.path(), session.as_bytes()).await;
    assert!(again.contains("* STATUS INBOX (RECENT 0)"), "{again}");
    assert_eq!(again.matches("* 0 RECENT\r\n").count(), 2, "{again}");
}

/// SEARCH matches what a reader sees: RFC 2047 encoded-words in SUBJECT,
/// FROM and HEADER, base64 and quoted-printable bodies, case-insensitively
/// beyond ASCII; and the raw octets still match.
#[tokio::test]
async fn search_decodes_encoded_words_and_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let md = postern_mailbox::Maildir::create(dir.path().join("Maildir")).unwrap();
    md.deliver(
        b"From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\n\
          Subject: =?UTF-8?B?w4l0w6kgw6AgUGFyaXM=?=\r\n\
          Content-Type: text/plain; charset=utf-8\r\n\
          Content-Transfer-Encoding: base64\r\n\r\nQ3LDqG1lIGJyw7tsw6llCg==\r\n",
    )
    .unwrap();
    md.deliver(
        b"Subject: plain\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
          Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve soft=\r\nbreak\r\n",
    )
    .unwrap();
    let input = "a LOGIN alice@example.org secret\r\n\
         b SELECT INBOX\r\n\
         c SEARCH CHARSET UTF-8 SUBJECT \"été à\"\r\n\
         d SEARCH FROM \"andrÉ\"\r\n\
         e SEARCH BODY \"CRÈME\"\r\n\
         f SEARCH TEXT softbreak\r\n\
         g SEARCH SUBJECT w4l0\r\n\
         h SEARCH HEADER Subject paris\r\n\
         i SEARCH TEXT \"andré\"\r\n\
         j SEARCH BODY nowhere\r\n\
         k LOGOUT\r\n";
    let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
    for (tag, hits) in [
        ("c", "1"),
        ("d", "1"),
        ("e", "1"),
        ("f", "2"),
        ("g", "1"),
        ("h", "1"),
        ("i", "1"),
    ] {
        assert!(
            out.contains(&format!("* SEARCH {hits}\r\n{tag} OK")),
            "{tag}: {out}"
        );
    }
    assert!(out.contains("* SEARCH\r\nj OK"), "{out}");
}

/// QRESYNC (RFC 7162 §3.2): SELECT with the client's UIDVALIDITY and
/// MODSEQ gets VANISHED (EARLIER) and the changed flags; UID FETCH with
/// CHANGEDSINCE and VANISHED; EXPUNGE told as VANISHED with the new
/// HIGHESTMODSEQ; [CLOSED] on a second SELECT; BAD unless enabled.
#[tokio::test]
async fn qresync() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let md = postern_mailbox::Maildir::create(&root).unwrap();
    for n in 1..=3 {
        md.deliver(format!("Subject: {n}\r\n\r\n{n}\r\n").as_bytes())
            .unwrap();
    }
    let mb = postern_mailbox::Mailbox::open(&root).unwrap();
    let before = mb.sync().unwrap();
    // What the client missed: 2 expunged, 3 flagged.
    mb.expunge(&before.messages[1]).unwrap();
    let mut flagged = postern_mailbox::Flags::new();
    flagged.insert("\\Flagged");
    mb.set_flags(&before.messages[2], &flagged).unwrap();
    let (v, h) = (before.validity, before.highest_modseq);
    let input = format!(
        "a LOGIN alice@example.org secret\r\n\
         b SELECT INBOX (QRESYNC ({v} {h}))\r\n\
         c ENABLE QRESYNC\r\n\
         d SELECT INBOX (QRESYNC ({v} {h} 1:5))\r\n\
         e UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h} VANISHED)\r\n\
         f STORE 1 +FLAGS.SILENT (\\Deleted)\r\n\
         g EXPUNGE\r\n\
         h EXAMINE INBOX (QRESYNC (1 1))\r\n\
         i LOGOUT\r\n"
    );
    let out = talk("127.0.0.1:40000", dir.path(), input.as_bytes()).await;
    assert_eq!(line(&out, "b "), "b BAD QRESYNC not enabled.", "{out}");
    assert!(out.contains("* ENABLED QRESYNC\r\n"), "{out}");
    let select = &out[out.find("d OK").unwrap().saturating_sub(600)..out.find("d OK").unwrap()];
    assert!(select.contains("* VANISHED (EARLIER) 2\r\n"), "{out}");
    assert!(
        select.contains("* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ ("),
        "{out}"
    );
    assert!(!select.contains("UID 1 "), "unchanged: {out}");
    assert!(
        out.contains("* VANISHED (EARLIER) 2\r\n* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ ("),
        "{out}"
    );
    assert!(
        out.contains("* VANISHED 1\r\ng OK [HIGHESTMODSEQ "),
        "{out}"
    );
    assert!(!out.contains(" EXPUNGE\r\n"), "{out}");
    assert!(
        out.contains("* OK [CLOSED] Previous mailbox closed.\r\n"),
        "{out}"
    );
    assert!(line(&out, "h ").starts_with("h OK [READ-ONLY]"), "{out}");
}

/// Sends one command and reads up to its tagged completion.
async fn command(client: &mut DuplexStream, tag: &str, text: &str) -> String {
    client
        .write_all(format!("{tag} {text}\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let done = format!("{tag} ");
    loop {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if text.lines().any(|l| l.starts_with(&done)) && text.ends_with("\r\n") {
            return text.into_owned();
        }
    }
}

/// A selected session sees what others do to its mailbox behind its back
/// (the store keeps listings between syncs, brought up to date by
/// inotify): a delivery, a flag change made by renaming the file (as
/// Dovecot or mutt do), an expunge by removing it, a flag change and an
/// expunge by another session, each at the next command.
#[tokio::test]
async fn changes_made_elsewhere_reach_a_selected_session() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let md = postern_mailbox::Maildir::create(&root).unwrap();
    md.deliver(b"Subject: one\r\n\r\n1\r\n").unwrap();
    md.deliver(b"Subject: two\r\n\r\n2\r\n").unwrap();
    let (server, mut c): (DuplexStream, DuplexStream) = tokio::io::duplex(1 << 20);
    let conn = Connection {
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:143".parse().unwrap(),
    };
    let settings = settings(dir.path());
    let task = tokio::spawn(serve(server, conn, Arc::clone(&settings)));
    let mut greeting = [0u8; 512];
    let _ = c.read(&mut greeting).await.unwrap();
    command(&mut c, "a", "LOGIN alice@example.org secret").await;
    let out = command(&mut c, "b", "SELECT INBOX").await;
    assert!(out.contains("* 2 EXISTS"), "{out}");
    // A delivery.
    md.deliver(b"Subject: three\r\n\r\n3\r\n").unwrap();
    let out = command(&mut c, "c", "NOOP").await;
    assert!(out.contains("* 3 EXISTS"), "{out}");
    // Flags changed by renaming the file, as another server would.
    let cur = root.join("cur");
    let first = std::fs::read_dir(&cur)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .min_by(|a, b| postern_mailbox::reader::delivery_order(a, b))
        .unwrap();
    let flagged = format!("{}:2,FS", postern_mailbox::reader::base_name(&first));
    std::fs::rename(cur.join(&first), cur.join(&flagged)).unwrap();
    let out = command(&mut c, "d", "NOOP").await;
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))"),
        "{out}"
    );
    // Expunged by removing the file.
    std::fs::remove_file(cur.join(&flagged)).unwrap();
    let out = command(&mut c, "e", "NOOP").await;
    assert!(out.contains("* 1 EXPUNGE"), "{out}");
    // Another session flags and expunges: this one hears of both.
    let other = "a LOGIN alice@example.org secret\r\n\
         b SELECT INBOX\r\n\
         c STORE 2 +FLAGS (\\Answered)\r\n\
         d STORE 1 +FLAGS (\\Deleted)\r\n\
         e EXPUNGE\r\n\
         f LOGOUT\r\n";
    let out = talk_with("127.0.0.1:40001", Arc::clone(&settings), other.as_bytes()).await;
    assert!(out.contains("e OK"), "{out}");
    // Reported at the next command: UID 2 expunged, UID 3 (now message
    // 1) answered.
    let out = command(&mut c, "f", "NOOP").await;
    assert!(out.contains("* 1 EXPUNGE"), "{out}");
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Answered \\Recent))"),
        "{out}"
    );
    let out = command(&mut c, "g", "FETCH 1:* (UID FLAGS)").await;
    assert!(
        out.contains("* 1 FETCH (UID 3 FLAGS (\\Answered \\Recent))"),
        "{out}"
    );
    assert!(!out.contains("* 2 FETCH"), "{out}");
    command(&mut c, "z", "LOGOUT").await;
    task.await.unwrap();
}
