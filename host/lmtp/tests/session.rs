//! The LMTP session over an in-memory pipe, with fake mailboxes: replies
//! per recipient, refusals, limits, smuggling and the stop signal.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_lmtp::{Connection, Mailboxes, Settings, serve};
use postern_mail::{
    Address, BoxFuture, DeliveryStatus, Domain, EnhancedCode, Envelope, QueueId, Recipient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// alice and bob have mailboxes; broken's cannot be written; looped's
/// delivery finds a loop.
#[derive(Debug, Default)]
struct Fake {
    delivered: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Mailboxes for Fake {
    fn exists(&self, address: &Address) -> bool {
        ["alice", "bob", "broken", "looped", "postmaster"].contains(&address.local())
    }

    fn deliver<'a>(
        &'a self,
        _id: &'a QueueId,
        _envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(async move {
            match recipient.address.local() {
                "broken" => DeliveryStatus::Deferred {
                    dsn: EnhancedCode::new(4, 3, 0),
                    detail: "maildir delivery failed: /x: Permission denied".to_owned(),
                },
                "looped" => DeliveryStatus::Bounced {
                    dsn: EnhancedCode::new(5, 4, 6),
                    detail: "mail forwarding loop for looped@example.org".to_owned(),
                },
                _ => {
                    self.delivered
                        .lock()
                        .unwrap()
                        .push((recipient.address.to_string(), content.to_vec()));
                    DeliveryStatus::Sent {
                        dsn: EnhancedCode::new(2, 0, 0),
                        detail: "delivered to maildir".to_owned(),
                    }
                }
            }
        })
    }
}

fn id() -> QueueId {
    QueueId::parse("ABCDEF0123456789").unwrap()
}

fn settings(fake: &Arc<Fake>) -> Settings {
    let mut s = Settings::new(Domain::parse("mx.test.example").unwrap(), fake.clone(), id);
    s.timeout = Duration::from_secs(5);
    s
}

/// Sends `input` at once (pipelined), closes the write side, and returns
/// everything the server said.
async fn session(settings: Settings, input: &[u8]) -> String {
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(serve(
        server,
        Connection::tcp("127.0.0.1:40000".parse().unwrap()),
        Arc::new(settings),
    ));
    client.write_all(input).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut out))
        .await
        .expect("the session ended")
        .unwrap();
    task.await.unwrap();
    String::from_utf8(out).unwrap()
}

fn lines(out: &str) -> Vec<&str> {
    out.split("\r\n").filter(|l| !l.is_empty()).collect()
}

#[tokio::test]
async fn one_reply_per_accepted_recipient_in_order() {
    let fake = Arc::new(Fake::default());
    let out = session(
        settings(&fake),
        b"LHLO mx.sender.example\r\nMAIL FROM:<bob@sender.example> SIZE=100 BODY=8BITMIME\r\n\
          RCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n\
          RCPT TO:<broken@example.org>\r\nRCPT TO:<looped@example.org>\r\nRCPT TO:<Postmaster>\r\n\
          DATA\r\nSubject: hi\r\n\r\n..stuffed\r\n.\r\nQUIT\r\n",
    )
    .await;
    let l = lines(&out);
    assert_eq!(l[0], "220 mx.test.example LMTP Postern ready");
    assert_eq!(
        &l[1..6],
        [
            "250-mx.test.example",
            "250-PIPELINING",
            "250-SIZE 10240000",
            "250-ENHANCEDSTATUSCODES",
            "250 8BITMIME"
        ]
    );
    assert_eq!(l[6], "250 2.1.0 Ok");
    assert_eq!(l[7], "250 2.1.5 Ok");
    assert!(l[8].starts_with("550 5.1.1 <nobody@example.org>"), "{out}");
    assert_eq!(&l[9..12], ["250 2.1.5 Ok"; 3]);
    assert!(l[12].starts_with("354 "), "{out}");
    assert_eq!(
        l[13],
        "250 2.0.0 <alice@example.org> ABCDEF0123456789 Saved"
    );
    assert!(
        l[14].starts_with("451 4.3.0 <broken@example.org> Temporary failure"),
        "{out}"
    );
    // The path of the failure stays in the log.
    assert!(!l[14].contains("/x"), "{out}");
    assert_eq!(
        l[15],
        "554 5.4.6 <looped@example.org> mail forwarding loop for looped@example.org"
    );
    assert_eq!(
        l[16],
        "250 2.0.0 <postmaster@mx.test.example> ABCDEF0123456789 Saved"
    );
    assert_eq!(l[17], "221 2.0.0 Bye");
    assert_eq!(l.len(), 18, "{out}");
    let delivered = fake.delivered.lock().unwrap();
    assert_eq!(delivered.len(), 2);
    let (rcpt, content) = &delivered[0];
    assert_eq!(rcpt, "alice@example.org");
    let text = String::from_utf8_lossy(content);
    assert!(
        text.starts_with("Received: from mx.sender.example (unknown [127.0.0.1])\r\n\tby mx.test.example (Postern) with LMTP id ABCDEF0123456789;\r\n\t"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\nSubject: hi\r\n\r\n.stuffed\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn helo_and_ehlo_are_refused() {
    let fake = Arc::new(Fake::default());
    let out = session(
        settings(&fake),
        b"HELO x\r\nEHLO x\r\nMAIL FROM:<a@b.example>\r\nLHLO\r\nQUIT\r\n",
    )
    .await;
    let l = lines(&out);
    assert!(l[1].starts_with("500 5.5.1 "), "{out}");
    assert!(l[2].starts_with("500 5.5.1 "), "{out}");
    assert_eq!(l[3], "503 5.5.1 Error: send LHLO first");
    assert_eq!(l[4], "501 5.5.4 Syntax: LHLO hostname");
}

#[tokio::test]
async fn sequence_errors() {
    let fake = Arc::new(Fake::default());
    let out = session(
        settings(&fake),
        b"LHLO x\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nMAIL FROM:<>\r\nMAIL FROM:<>\r\n\
          RCPT TO:<nobody@example.org>\r\nDATA\r\nRSET\r\nDATA\r\nVRFY alice\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n",
    )
    .await;
    let l = lines(&out);
    assert_eq!(
        &l[6..],
        [
            "503 5.5.1 Error: need MAIL command",
            "503 5.5.1 Error: need MAIL command",
            "250 2.1.0 Ok",
            "503 5.5.1 Error: nested MAIL command",
            "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
            "503 5.5.1 Error: need RCPT command",
            "250 2.0.0 Ok",
            "503 5.5.1 Error: need MAIL command",
            "252 2.3.3 Try RCPT instead",
            "502 5.5.2 Error: command not recognized",
            "250 2.0.0 Ok",
            "221 2.0.0 Bye",
        ]
    );
}

/// Every `<CRLF>.<CRLF>` look-alike is content: the smuggled MAIL below
/// is part of the one message, never a second transaction.
#[tokio::test]
async fn only_crlf_dot_crlf_ends_the_data() {
    for fake_end in [&b"\n.\n"[..], b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"] {
        let fake = Arc::new(Fake::default());
        let mut input = b"LHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: s\r\n\r\nhello".to_vec();
        input.extend_from_slice(fake_end);
        input.extend_from_slice(
            b"MAIL FROM:<evil@b.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n",
        );
        let out = session(settings(&fake), &input).await;
        let delivered = fake.delivered.lock().unwrap();
        assert_eq!(delivered.len(), 1, "{out}");
        assert_eq!(delivered[0].0, "alice@example.org");
        let text = String::from_utf8_lossy(&delivered[0].1);
        assert!(text.contains("smuggled"), "{text}");
        assert!(text.contains("MAIL FROM:<evil@b.example>"), "{text}");
    }
}

#[tokio::test]
async fn size_limits() {
    let fake = Arc::new(Fake::default());
    let mut s = settings(&fake);
    s.message_size_limit = 100;
    let mut input = b"LHLO x\r\nMAIL FROM:<a@b.example> SIZE=101\r\nMAIL FROM:<a@b.example>\r\n\
        RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
        .to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
    let out = session(s, &input).await;
    let l = lines(&out);
    assert_eq!(l[3], "250-SIZE 100");
    assert_eq!(l[6], "552 5.3.4 Message size exceeds fixed limit");
    assert_eq!(
        &l[11..],
        [
            "552 5.3.4 <alice@example.org> Error: message file too big",
            "552 5.3.4 <bob@example.org> Error: message file too big",
            "221 2.0.0 Bye",
        ]
    );
    assert!(fake.delivered.lock().unwrap().is_empty());
}

#[tokio::test]
async fn recipient_limit() {
    let fake = Arc::new(Fake::default());
    let mut s = settings(&fake);
    s.recipient_limit = 1;
    let out = session(
        s,
        b"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nQUIT\r\n",
    )
    .await;
    assert!(
        out.contains("\r\n452 4.5.3 Error: too many recipients\r\n"),
        "{out}"
    );
}

#[tokio::test]
async fn long_lines_and_the_error_limit() {
    let fake = Arc::new(Fake::default());
    let mut s = settings(&fake);
    s.line_length_limit = 100;
    s.hard_error_limit = 3;
    let mut input = vec![b'x'; 100_000];
    input.extend_from_slice(b"\r\nLHLO x\r\nbogus\r\nbogus\r\nNOOP\r\n");
    let out = session(s, &input).await;
    let l = lines(&out);
    assert_eq!(l[1], "500 5.5.2 Error: line too long");
    assert_eq!(l[2], "250-mx.test.example");
    assert_eq!(l[7], "500 5.5.2 Error: command not recognized");
    assert_eq!(l[8], "500 5.5.2 Error: command not recognized");
    assert_eq!(l[9], "421 4.7.0 mx.test.example Error: too many errors");
    assert_eq!(l.len(), 10, "{out}");
}

#[tokio::test]
async fn a_stop_closes_an_idle_session() {
    let fake = Arc::new(Fake::default());
    let mut s = settings(&fake);
    let (tx, rx) = tokio::sync::watch::channel(false);
    s.stop = Some(rx);
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let task = tokio::spawn(serve(server, Connection::unix(), Arc::new(s)));
    client.write_all(b"LHLO x\r\n").await.unwrap();
    let mut buf = vec![0; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("250 8BITMIME") {
        let n = client.read(&mut buf).await.unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    tx.send(true).unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(rest).unwrap(),
        "421 4.3.2 mx.test.example Service shutting down\r\n"
    );
    task.await.unwrap();
}
