//! The transaction's tests against a scripted server on loopback: apart
//! because they outweigh the code they test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use postern_mail::{Address, ReversePath};

use super::*;
use crate::client::{ClientSettings, Timeouts, TlsLevel};

/// A scripted server on loopback: `answer` replies to each command
/// line (the reply text without CRLF, lines joined by `\r\n`); after
/// DATA's 354 the message is read to `.` and `after_data` answered.
/// Returns its address and what it received.
async fn server(
    greeting: &'static str,
    answer: fn(&str) -> String,
    after_data: &'static str,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        if !greeting.is_empty() {
            write
                .write_all(format!("{greeting}\r\n").as_bytes())
                .await
                .unwrap();
        }
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().unwrap().push(line.clone());
            let reply = if in_data {
                if line != "." {
                    continue;
                }
                in_data = false;
                after_data.to_owned()
            } else {
                let reply = answer(&line);
                in_data = reply.starts_with("354");
                reply
            };
            if reply.is_empty() {
                continue;
            }
            let _ = write.write_all(format!("{reply}\r\n").as_bytes()).await;
        }
    });
    (addr, seen)
}

fn settings(lmtp: bool) -> ClientSettings {
    let short = Duration::from_secs(2);
    ClientSettings {
        helo_name: "client.test".to_owned(),
        lmtp,
        tls_level: TlsLevel::None,
        tls: None,
        timeouts: Timeouts {
            connect: short,
            helo: short,
            starttls: short,
            mail: short,
            rcpt: short,
            data_init: short,
            data_xfer: short,
            data_done: short,
            rset: short,
            quit: short,
        },
    }
}

fn addresses(list: &[&str]) -> Vec<Recipient> {
    list.iter()
        .map(|a| Recipient::new(Address::parse(a).unwrap()))
        .collect()
}

fn sender() -> Envelope {
    Envelope::new(ReversePath::Address(
        Address::parse("s@client.test").unwrap(),
    ))
}

fn esmtp(line: &str) -> String {
    match line.split(' ').next().unwrap_or("") {
        "EHLO" => "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME".to_owned(),
        "RCPT" if line.contains("bad@") => "550 5.1.1 unknown user".to_owned(),
        "RCPT" if line.contains("later@") => "450 4.2.0 try later".to_owned(),
        "DATA" => "354 go ahead".to_owned(),
        _ => "250 2.0.0 ok".to_owned(),
    }
}

#[tokio::test]
async fn pipelined_transaction_with_a_reply_per_recipient() {
    let (addr, seen) = server("220 mx.test ESMTP", esmtp, "250 2.0.0 Ok: queued as X").await;
    let mut s = Session::connect(addr, "mx.test", &settings(false))
        .await
        .unwrap();
    assert!(s.extensions.pipelining);
    let rcpts = addresses(&["a@x.test", "bad@x.test", "later@x.test", "b@x.test"]);
    let replies = s
        .send(&sender(), &rcpts, "caf\u{e9}\r\n.dot\r\n".as_bytes())
        .await
        .unwrap();
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 550, 450, 250]);
    assert_eq!(
        replies[1].text,
        "unknown user (in reply to RCPT TO command)"
    );
    assert_eq!(replies[0].text, "Ok: queued as X");
    // A second transaction on the same session goes straight to
    // MAIL: the first ended with its end-of-data reply.
    let replies = s.send(&sender(), &rcpts[..1], b"x").await.unwrap();
    assert_eq!(replies[0].code, 250);
    assert_eq!(s.transactions(), 2);
    s.quit().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], "EHLO client.test");
    assert_eq!(seen[1], "MAIL FROM:<s@client.test> SIZE=13 BODY=8BITMIME");
    assert!(seen.contains(&"..dot".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"RSET".to_owned()), "{seen:?}");
}

#[tokio::test]
async fn too_big_for_the_server_is_refused_before_sending() {
    let (addr, seen) = server("220 mx.test", esmtp, "250 ok").await;
    let mut s = Session::connect(addr, "mx.test", &settings(false))
        .await
        .unwrap();
    let replies = s
        .send(&sender(), &addresses(&["a@x.test"]), &[b'x'; 2000])
        .await
        .unwrap();
    assert_eq!(replies[0].code, 552);
    assert_eq!(replies[0].enhanced, Some(EnhancedCode::new(5, 3, 4)));
    assert!(!seen.lock().unwrap().iter().any(|l| l.starts_with("MAIL")));
}

#[tokio::test]
async fn helo_when_ehlo_is_refused_and_one_command_at_a_time() {
    fn old(line: &str) -> String {
        match line.split(' ').next().unwrap_or("") {
            "EHLO" => "502 5.5.2 what?".to_owned(),
            "HELO" => "250 old.test".to_owned(),
            "RCPT" if line.contains("bad@") => "550 no".to_owned(),
            "DATA" => "354 go".to_owned(),
            _ => "250 ok".to_owned(),
        }
    }
    let (addr, seen) = server("220 old.test", old, "250 ok").await;
    let mut s = Session::connect(addr, "old.test", &settings(false))
        .await
        .unwrap();
    assert_eq!(s.extensions, Default::default());
    let replies = s
        .send(&sender(), &addresses(&["bad@x.test"]), b"x")
        .await
        .unwrap();
    assert_eq!(replies[0].code, 550);
    assert_eq!(replies[0].enhanced, Some(EnhancedCode::new(5, 0, 0)));
    // The transaction was left open (MAIL taken, no DATA): the next
    // one starts with RSET.
    let replies = s
        .send(&sender(), &addresses(&["a@x.test"]), b"x")
        .await
        .unwrap();
    assert_eq!(replies[0].code, 250);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[1], "HELO client.test");
    assert_eq!(seen[2], "MAIL FROM:<s@client.test>");
    // No recipient accepted: no DATA.
    assert_eq!(seen[4], "RSET", "{seen:?}");
    assert_eq!(seen[5], "MAIL FROM:<s@client.test>");
}

#[tokio::test]
async fn a_closing_server_is_an_error_worth_a_new_connection() {
    fn closing(line: &str) -> String {
        match line.split(' ').next().unwrap_or("") {
            "EHLO" => "250-mx.test\r\n250 PIPELINING".to_owned(),
            "MAIL" => "421 4.4.2 mx.test Error: timeout exceeded".to_owned(),
            _ => "503 5.5.1 Error: need MAIL command".to_owned(),
        }
    }
    let (addr, _) = server("220 mx.test", closing, "250 ok").await;
    let mut s = Session::connect(addr, "mx.test", &settings(false))
        .await
        .unwrap();
    let err = s
        .send(&sender(), &addresses(&["a@x.test"]), b"x")
        .await
        .unwrap_err();
    assert!(err.retry_fresh(), "{err}");
    assert!(err.to_string().contains("421 4.4.2"), "{err}");
    let lost = ClientError::Lost {
        relay: "r".to_owned(),
        stage: "end of DATA",
        error: "closed".to_owned(),
    };
    assert!(!lost.retry_fresh(), "the content may have arrived");
}

#[tokio::test]
async fn lmtp_reads_a_reply_per_accepted_recipient() {
    fn lmtp(line: &str) -> String {
        match line.split(' ').next().unwrap_or("") {
            "LHLO" => "250-store.test\r\n250 PIPELINING".to_owned(),
            "RCPT" if line.contains("bad@") => "550 5.1.1 no".to_owned(),
            "DATA" => "354 go".to_owned(),
            _ => "250 ok".to_owned(),
        }
    }
    let (addr, _) = server(
        "220 store.test LMTP",
        lmtp,
        "250 2.0.0 a ok\r\n452 4.2.2 c over quota",
    )
    .await;
    let mut s = Session::connect(addr, "store.test", &settings(true))
        .await
        .unwrap();
    let rcpts = addresses(&["a@x.test", "bad@x.test", "c@x.test"]);
    let replies = s.send(&sender(), &rcpts, b"x").await.unwrap();
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 550, 452]);
}

#[tokio::test]
async fn garbage_and_silence_are_errors_not_hangs() {
    fn nothing(_: &str) -> String {
        String::new()
    }
    let (addr, _) = server("hello there", nothing, "").await;
    let err = Session::connect(addr, "x.test", &settings(false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Protocol {
                stage: "greeting",
                ..
            }
        ),
        "{err}"
    );
    let (addr, _) = server("554 5.7.1 go away", nothing, "").await;
    let err = Session::connect(addr, "x.test", &settings(false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("554 5.7.1 go away"), "{err}");
    let (addr, _) = server("220 x", nothing, "").await;
    let err = Session::connect(addr, "x.test", &settings(false))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { stage: "EHLO", .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("timed out while performing the EHLO handshake"),
        "{err}"
    );
    let err = Session::connect("127.0.0.1:1".parse().unwrap(), "x.test", &settings(false))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    // Worded as Postfix's log: the C library's text, no Rust suffix.
    assert_eq!(
        err.to_string(),
        "connect to x.test[127.0.0.1]:1: Connection refused"
    );
}
