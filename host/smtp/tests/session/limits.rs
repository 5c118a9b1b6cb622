//! The session's limits and stop signal over a real socket: the stop
//! closes an idle session with `421 4.3.2` and lets a transaction finish;
//! the per-client counters refuse a connection past the limit; the
//! POP-before-SMTP ledger reaches the policy request.

use std::sync::Arc;
use std::time::Duration;

use postern_auth::Ledger;
use postern_smtp::{Anvil, ClientLimits, Shutdown};
use tokio::sync::watch;

use crate::harness::{Server, relay_rule, settings};

#[tokio::test]
async fn stop_closes_an_idle_session() {
    let (tx, rx) = watch::channel(false);
    let s = postern_smtp::SessionSettings {
        shutdown: Shutdown::new(rx),
        ..settings()
    };
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    tx.send(true).unwrap();
    assert_eq!(c.rest().await, "421 4.3.2 Service shutting down\r\n");
    server
        .done()
        .await
        .logged("shutdown after EHLO from unknown[127.0.0.1]");
}

#[tokio::test]
async fn stop_lets_the_transaction_finish() {
    let (tx, rx) = watch::channel(false);
    let s = postern_smtp::SessionSettings {
        shutdown: Shutdown::new(rx),
        ..settings()
    };
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    assert!(c.cmd("MAIL FROM:<a@origin.test>").await.starts_with("250"));
    tx.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(c.cmd("RCPT TO:<alice@local.test>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send("Subject: late\r\n\r\nstill here\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0 Ok: queued as"));
    assert_eq!(c.rest().await, "421 4.3.2 Service shutting down\r\n");
    let done = server.done().await;
    assert!(done.message().content.ends_with(b"still here\r\n"));
}

#[tokio::test]
async fn connection_count_past_the_limit_is_421() {
    let anvil = Arc::new(Anvil::new(Duration::from_secs(60)));
    // Another connection from the same address is open already.
    let held = anvil.connect("127.0.0.1".parse().unwrap());
    let s = postern_smtp::SessionSettings {
        anvil: Some(Arc::clone(&anvil)),
        client_limits: ClientLimits {
            connection_count: 1,
            ..ClientLimits::default()
        },
        ..settings()
    };
    let server = Server::start(s, relay_rule()).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut all = Vec::new();
    let mut stream = stream;
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut all)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&all),
        "421 4.7.0 mx.test Error: too many connections from 127.0.0.1\r\n"
    );
    let done = server.done().await;
    assert!(
        done.logs.iter().any(|l| l.contains(
            "Connection concurrency limit exceeded: 2 from unknown[127.0.0.1] for service smtp"
        )),
        "{:?}",
        done.logs
    );
    drop(held);
    // The refused connection left the count.
    assert_eq!(anvil.connect("127.0.0.1".parse().unwrap()).count, 1);
}

#[tokio::test]
async fn a_recent_mailbox_login_reaches_the_policy() {
    let ledger = Arc::new(Ledger::new(Duration::from_secs(600)));
    ledger.record("127.0.0.1".parse().unwrap());
    let s = postern_smtp::SessionSettings {
        pop_before_smtp: Some(ledger),
        ..settings()
    };
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    assert!(c.cmd("MAIL FROM:<a@origin.test>").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@local.test>").await.starts_with("250"));
    assert!(c.cmd("QUIT").await.starts_with("221"));
    let done = server.done().await;
    assert!(!done.requests.is_empty());
    assert!(done.requests.iter().all(|r| r.pop_before_smtp));
}
