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
