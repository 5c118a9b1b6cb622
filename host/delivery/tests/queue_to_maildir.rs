//! From the queue to a Maildir: the queue's delivery loop driving the
//! local delivery agent over real files.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_auth::UserDb;
use postern_delivery::{LocalDelivery, LocalSettings};
use postern_mail::{Address, Domain, Enqueue, Envelope, Recipient, ReversePath};
use postern_queue::{Queue, QueueSettings};
use tokio::sync::watch;

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn queued_mail_reaches_the_maildirs() {
    let root = tempfile::tempdir().unwrap();
    let users = UserDb::parse("alice@example.org:{PLAIN}x\nbob:{PLAIN}x\n", "users").unwrap();
    let settings = LocalSettings::new(
        root.path().join("vmail"),
        Domain::parse("mx.example.org").unwrap(),
        Arc::new(users),
    );
    let agent = Arc::new(LocalDelivery::new(settings));
    let queue = Arc::new(
        Queue::open_with(
            root.path().join("queue"),
            QueueSettings {
                minimal_backoff_time: Duration::from_millis(20),
                maximal_backoff_time: Duration::from_millis(40),
                ..QueueSettings::default()
            },
        )
        .unwrap(),
    );
    let mut env = Envelope::new(ReversePath::Address(
        Address::parse("carol@example.net").unwrap(),
    ));
    for r in [
        "alice@example.org",
        "bob@mx.example.org",
        "nobody@example.org",
    ] {
        env.recipients
            .push(Recipient::new(Address::parse(r).unwrap()));
    }
    let id = queue.new_id();
    queue
        .enqueue(id, env, b"Subject: hi\r\n\r\nhello\r\n".to_vec())
        .await
        .unwrap();

    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&queue).run(agent, shutdown));
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&root.path().join("queue/active")) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();

    let alice = root.path().join("vmail/example.org/alice/Maildir/new");
    let bob = root.path().join("vmail/bob/Maildir/new");
    assert_eq!((count(&alice), count(&bob)), (1, 1));
    let message = fs::read(
        fs::read_dir(&alice)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert_eq!(
        message,
        b"Return-Path: <carol@example.net>\r\nDelivered-To: alice@example.org\r\n\
          Subject: hi\r\n\r\nhello\r\n"
    );
    // nobody@ bounced (5.1.1): the message is done and gone, and its
    // bounce notice to carol@example.net waits for remote delivery.
    let left = queue.list().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].sender, ReversePath::Null);
    assert_eq!(
        left[0].recipients[0].0.address,
        Address::parse("carol@example.net").unwrap()
    );
}
