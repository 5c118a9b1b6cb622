//! `immediate_local_delivery`: what the queue offers its agent before it
//! writes a queue file, and what it queues, with a fake agent.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_mail::{
    Address, BoxFuture, Deliver, Delivered, DeliveryStatus, EnhancedCode, Enqueue, Envelope,
    Notify, QueueId, Recipient, ReversePath,
};
use postern_queue::{Queue, QueueSettings};
use tokio::sync::watch;

/// Takes at once the recipients whose local part starts with `now`
/// (delivered) or `fail` (deferred); leaves the others to the queue,
/// whose deliveries it answers `sent`. Remembers both kinds of call.
#[derive(Default)]
struct Fake {
    at_once: Mutex<Vec<String>>,
    queued: Mutex<Vec<String>>,
}

fn status(ok: bool) -> DeliveryStatus {
    if ok {
        DeliveryStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: "delivered to maildir".to_owned(),
        }
    } else {
        DeliveryStatus::Deferred {
            dsn: EnhancedCode::new(4, 2, 0),
            detail: "mailbox busy".to_owned(),
        }
    }
}

impl Deliver for Fake {
    fn agent(&self) -> &'static str {
        "local"
    }

    fn deliver<'a>(
        &'a self,
        _id: &'a QueueId,
        _envelope: &'a Envelope,
        recipient: &'a Recipient,
        _content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        let rcpt = recipient.address.to_string();
        self.queued.lock().unwrap().push(rcpt);
        Box::pin(std::future::ready(status(true)))
    }

    fn deliver_at_once<'a>(
        &'a self,
        _envelope: &'a Envelope,
        recipient: &'a Recipient,
        _content: &'a [u8],
    ) -> BoxFuture<'a, Option<Delivered>> {
        let rcpt = recipient.address.to_string();
        self.at_once.lock().unwrap().push(rcpt.clone());
        let answer = (rcpt.starts_with("now") || rcpt.starts_with("fail")).then(|| Delivered {
            agent: "local",
            relay: "local".to_owned(),
            status: status(rcpt.starts_with("now")),
            remote: None,
            next_hop_notifies: false,
        });
        Box::pin(std::future::ready(answer))
    }
}

fn envelope(rcpts: &[&str]) -> Envelope {
    let mut env = Envelope::new(ReversePath::Address(
        Address::parse("sender@example.org").unwrap(),
    ));
    env.recipients = rcpts
        .iter()
        .map(|r| Recipient::new(Address::parse(r).unwrap()))
        .collect();
    env
}

fn files(dir: &Path, q: &str) -> Vec<String> {
    fs::read_dir(dir.join(q))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A queue in a fresh directory whose delivery loop runs with `fake`;
/// `immediate` sets `immediate_local_delivery`.
async fn running(
    immediate: bool,
    fake: &Arc<Fake>,
) -> (Arc<Queue>, tempfile::TempDir, watch::Sender<bool>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings {
        immediate_local_delivery: immediate,
        minimal_backoff_time: Duration::from_secs(3600),
        ..QueueSettings::default()
    };
    let queue = Arc::new(Queue::open_with(dir.path(), settings).unwrap());
    let (stop, shutdown) = watch::channel(false);
    let agent: Arc<dyn Deliver> = Arc::clone(fake) as Arc<dyn Deliver>;
    tokio::spawn(Arc::clone(&queue).run(agent, shutdown));
    // The loop hands its agent over before its first wait.
    tokio::task::yield_now().await;
    (queue, dir, stop)
}

/// Waits (10 s at most) until the loop has delivered `n` queued copies.
async fn queued_calls(fake: &Fake, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = fake.queued.lock().unwrap().clone();
        if calls.len() >= n || Instant::now() > deadline {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn mail_delivered_at_once_has_no_queue_file() {
    let fake = Arc::new(Fake::default());
    let (queue, dir, _stop) = running(true, &fake).await;
    let id = queue.new_id();
    let env = envelope(&["now1@example.org", "now2@example.org"]);
    queue.enqueue(id, env, b"x".to_vec()).await.unwrap();
    assert_eq!(
        *fake.at_once.lock().unwrap(),
        ["now1@example.org", "now2@example.org"]
    );
    for q in ["incoming", "active", "deferred"] {
        assert!(files(dir.path(), q).is_empty(), "{q}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(fake.queued.lock().unwrap().is_empty());
}

#[tokio::test]
async fn what_is_not_delivered_at_once_is_queued_and_delivered_by_the_loop() {
    let fake = Arc::new(Fake::default());
    let (queue, _dir, _stop) = running(true, &fake).await;
    let mut env = envelope(&[
        "now1@example.org",
        "later@example.org",
        "fail@example.org",
        "now2@example.org",
    ]);
    // A success notice is the queue's to send: not offered at once.
    env.recipients[3].notify = Some(Notify {
        success: true,
        failure: true,
        delay: false,
    });
    queue
        .enqueue(queue.new_id(), env, b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(
        *fake.at_once.lock().unwrap(),
        ["now1@example.org", "later@example.org", "fail@example.org"]
    );
    // The three, and the success notice now2 asked for, to the sender.
    let mut queued = queued_calls(&fake, 4).await;
    queued.sort();
    assert_eq!(
        queued,
        [
            "fail@example.org",
            "later@example.org",
            "now2@example.org",
            "sender@example.org"
        ]
    );
}

#[tokio::test]
async fn held_and_filtered_mail_and_the_default_are_not_offered() {
    let fake = Arc::new(Fake::default());
    let (queue, dir, _stop) = running(true, &fake).await;
    let mut held = envelope(&["now1@example.org"]);
    held.hold = true;
    queue
        .enqueue(queue.new_id(), held, b"x".to_vec())
        .await
        .unwrap();
    let mut filtered = envelope(&["now2@example.org"]);
    filtered.content_filter = Some("smtp:[127.0.0.1]:10025".to_owned());
    queue
        .enqueue(queue.new_id(), filtered, b"x".to_vec())
        .await
        .unwrap();
    assert!(fake.at_once.lock().unwrap().is_empty());
    assert_eq!(files(dir.path(), "hold").len(), 1);
    assert_eq!(queued_calls(&fake, 1).await, ["now2@example.org"]);

    let fake = Arc::new(Fake::default());
    let (queue, _dir, _stop) = running(false, &fake).await;
    let env = envelope(&["now1@example.org"]);
    queue
        .enqueue(queue.new_id(), env, b"x".to_vec())
        .await
        .unwrap();
    assert!(fake.at_once.lock().unwrap().is_empty());
    assert_eq!(queued_calls(&fake, 1).await, ["now1@example.org"]);
}
