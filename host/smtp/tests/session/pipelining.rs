//! Illegal command pipelining (RFC 2920 §3.1) reaches the policy as
//! `illegal_pipelining`, logged once as Postfix logs it; legal pipelining
//! (after EHLO, MAIL/RCPT/DATA in one group) does not.

use postern_mail::{Decision, PolicyRequest, Stage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{Rule, Server, WAIT, codes, refuse, settings};

/// `reject_unauth_pipelining` in the data list.
fn pipelining_rule() -> Rule {
    Box::new(|r: &PolicyRequest| {
        if r.stage == Stage::Data && r.illegal_pipelining {
            refuse(
                503,
                "5.5.0",
                "<DATA>: Data command rejected: Improper use of SMTP command pipelining",
                "reject_unauth_pipelining",
            )
        } else {
            Decision::permit()
        }
    })
}

#[tokio::test]
async fn commands_before_the_greeting_are_illegal() {
    let server = Server::start(settings(), pipelining_rule()).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    w.write_all(b"EHLO bot.test\r\nMAIL FROM:<a@origin.test>\r\n")
        .await
        .unwrap();
    // Then the rest, after the replies came (legal from here on).
    let mut r = tokio::io::BufReader::new(r);
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while codes(&got).len() < 3 {
        let n = tokio::time::timeout(WAIT, r.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(codes(&got), ["220", "250", "250"], "{got}");
    w.write_all(b"RCPT TO:<alice@local.test>\r\n")
        .await
        .unwrap();
    let mut n = r.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"250"));
    w.write_all(b"DATA\r\n").await.unwrap();
    n = r.read(&mut buf).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining\r\n"
    );
    w.write_all(b"QUIT\r\n").await.unwrap();
    let done = server.done().await;
    let improper: Vec<_> = done
        .logs
        .iter()
        .filter(|l| l.starts_with("improper command pipelining after "))
        .collect();
    // Seen before the greeting or behind EHLO, whichever came first; once.
    assert_eq!(improper.len(), 1, "{:?}", done.logs);
    assert!(
        improper[0].ends_with("from unknown[127.0.0.1]: MAIL FROM:<a@origin.test>\\r\\n")
            || improper[0].contains("after CONNECT from unknown[127.0.0.1]: EHLO bot.test\\r\\n"),
        "{}",
        improper[0]
    );
    assert!(done.requests.iter().all(|r| r.illegal_pipelining));
}

#[tokio::test]
async fn a_group_after_ehlo_is_legal() {
    let server = Server::start(settings(), pipelining_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.send("MAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n")
        .await;
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("354"));
    // After the final dot, the next group may follow at once.
    c.send("Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n").await;
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("221"));
    let done = server.done().await;
    assert_eq!(done.messages.len(), 1);
    assert!(done.requests.iter().all(|r| !r.illegal_pipelining));
    assert!(
        !done.logs.iter().any(|l| l.contains("improper")),
        "{:?}",
        done.logs
    );
}

#[tokio::test]
async fn a_command_behind_helo_is_illegal() {
    let server = Server::start(settings(), pipelining_rule()).await;
    let mut c = server.client().await;
    // HELO offers no PIPELINING: nothing may be sent ahead.
    c.send("HELO client.test\r\nMAIL FROM:<a@origin.test>\r\n")
        .await;
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@local.test>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("503 5.5.0 <DATA>"));
    assert!(c.cmd("QUIT").await.starts_with("221"));
    let done = server.done().await;
    done.logged(
        "improper command pipelining after HELO from unknown[127.0.0.1]: MAIL FROM:<a@origin.test>\\r\\n",
    );
}

/// Permits everything at once, for the timing test below.
struct PermitAll;

impl postern_mail::Policy for PermitAll {
    fn check<'a>(&'a self, _: &'a PolicyRequest) -> postern_mail::BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(Decision::permit()))
    }
}

/// One whole session over an in-memory pipe; how long it took.
async fn one_session() -> std::time::Duration {
    let (server, client) = tokio::io::duplex(1 << 16);
    let conn = postern_smtp::Connection::new(
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:25".parse().unwrap(),
    );
    let queue = std::sync::Arc::new(super::harness::TestQueue::default());
    let start = std::time::Instant::now();
    let session = tokio::spawn(postern_smtp::serve(
        server,
        conn,
        std::sync::Arc::new(settings()),
        std::sync::Arc::new(PermitAll),
        std::sync::Arc::new(super::harness::TestDirectory),
        std::sync::Arc::clone(&queue) as std::sync::Arc<dyn postern_mail::Enqueue>,
    ));
    let (r, mut w) = tokio::io::split(client);
    let mut r = tokio::io::BufReader::new(r);
    let mut replies = Vec::new();
    for send in [
        &b""[..],
        b"EHLO client.test\r\n",
        b"MAIL FROM:<a@origin.test>\r\n",
        b"RCPT TO:<alice@local.test>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\nhi\r\n.\r\n",
        b"QUIT\r\n",
    ] {
        w.write_all(send).await.unwrap();
        loop {
            let mut line = String::new();
            let read = tokio::io::AsyncBufReadExt::read_line(&mut r, &mut line);
            tokio::time::timeout(WAIT, read).await.unwrap().unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                replies.push(line[..3].to_owned());
                break;
            }
        }
    }
    session.await.unwrap();
    let took = start.elapsed();
    assert_eq!(replies, ["220", "250", "250", "250", "354", "250", "221"]);
    assert_eq!(queue.messages.lock().unwrap().len(), 1);
    took
}

/// Regression (issue 8): the checks for input sent ahead (at connect,
/// after EHLO, after DATA) read what has arrived without a timer. A zero
/// timeout there held every session two to three milliseconds, as tokio
/// rounds a timer up to its next millisecond tick. The fastest of 20
/// in-memory sessions shows it whatever else the machine is doing.
#[tokio::test]
async fn checking_for_input_sent_ahead_waits_for_no_timer() {
    let mut fastest = std::time::Duration::MAX;
    for _ in 0..20 {
        fastest = fastest.min(one_session().await);
    }
    assert!(
        fastest < std::time::Duration::from_millis(1),
        "fastest session {fastest:?}"
    );
}
