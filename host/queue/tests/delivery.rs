//! The delivery loop over real queue files, with a fake delivery agent.

#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use postern_mail::{
    Address, BoxFuture, Deliver, DeliveryStatus, EnhancedCode, Enqueue, Envelope, QueueId,
    Recipient, ReversePath,
};
use postern_queue::{Queue, QueueName, QueueSettings, RecipientStatus};
use tokio::sync::watch;

type Plan = Box<dyn Fn(&str, usize) -> DeliveryStatus + Send + Sync>;

/// A delivery agent that remembers every call and answers by `plan`
/// (recipient, how many times it was tried before).
struct Fake {
    calls: Mutex<Vec<String>>,
    plan: Plan,
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Fake {
    fn new(plan: impl Fn(&str, usize) -> DeliveryStatus + Send + Sync + 'static) -> Arc<Fake> {
        Arc::new(Fake {
            calls: Mutex::new(Vec::new()),
            plan: Box::new(plan),
            delay: Duration::ZERO,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self, rcpt: &str) -> usize {
        self.calls().iter().filter(|c| *c == rcpt).count()
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
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let rcpt = recipient.address.to_string();
            let before = self.count(&rcpt);
            self.calls.lock().unwrap().push(rcpt.clone());
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            (self.plan)(&rcpt, before)
        })
    }
}

fn sent() -> DeliveryStatus {
    DeliveryStatus::Sent {
        dsn: EnhancedCode::new(2, 0, 0),
        detail: "delivered to maildir".to_owned(),
    }
}

fn deferred() -> DeliveryStatus {
    DeliveryStatus::Deferred {
        dsn: EnhancedCode::new(4, 2, 2),
        detail: "mailbox full".to_owned(),
    }
}

fn fast() -> QueueSettings {
    QueueSettings {
        minimal_backoff_time: Duration::from_millis(50),
        maximal_backoff_time: Duration::from_millis(200),
        queue_run_delay: Duration::from_secs(1),
        ..QueueSettings::default()
    }
}

fn envelope(rcpts: &[&str]) -> Envelope {
    let mut env = Envelope::new(ReversePath::Address(
        Address::parse("alice@example.org").unwrap(),
    ));
    env.recipients = rcpts
        .iter()
        .map(|r| Recipient::new(Address::parse(r).unwrap()))
        .collect();
    env
}

fn files(dir: &Path, q: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(q))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn queue_is_empty(dir: &Path) -> bool {
    ["active", "deferred", "incoming"]
        .iter()
        .all(|q| files(dir, q).is_empty())
}

/// Runs the loop until `done` holds (or 10 s pass), then shuts it down
/// and waits for it to return.
async fn run_until(queue: &Arc<Queue>, agent: Arc<Fake>, done: impl Fn() -> bool) {
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(queue).run(agent, shutdown));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

async fn enqueue(queue: &Queue, env: Envelope, content: &[u8]) -> QueueId {
    let id = queue.new_id();
    queue
        .enqueue(id.clone(), env, content.to_vec())
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn deferred_recipient_is_retried_alone() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::open_with(dir.path(), fast()).unwrap());
    enqueue(&queue, envelope(&["a@x.org", "b@x.org"]), b"hi").await;
    let agent = Fake::new(|rcpt, tries| match (rcpt, tries) {
        ("b@x.org", 0) => deferred(),
        _ => sent(),
    });
    let path = dir.path().to_owned();
    run_until(&queue, Arc::clone(&agent), || queue_is_empty(&path)).await;
    assert_eq!(agent.calls(), ["a@x.org", "b@x.org", "b@x.org"]);
    assert!(queue_is_empty(dir.path()));
    assert!(queue.list().unwrap().is_empty());
}

#[tokio::test]
async fn crash_between_recipients_delivers_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let queue = Queue::open(dir.path()).unwrap();
        enqueue(&queue, envelope(&["a@x.org", "b@x.org"]), b"hi").await
    };
    // What the loop had written when the crash came: rcpt 0 delivered.
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("active").join(id.as_str()))
        .unwrap();
    f.write_all(b"D 0 sent 2.0.0 delivered%20to%20maildir\n")
        .unwrap();
    drop(f);

    let queue = Arc::new(Queue::open_with(dir.path(), fast()).unwrap());
    let (_, message) = queue.read(&id).unwrap();
    assert!(message.statuses[0].is_final());
    let agent = Fake::new(|_, _| sent());
    let path = dir.path().to_owned();
    run_until(&queue, Arc::clone(&agent), || queue_is_empty(&path)).await;
    assert_eq!(agent.calls(), ["b@x.org"]);
}

#[tokio::test]
async fn held_messages_are_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::open_with(dir.path(), fast()).unwrap());
    let mut env = envelope(&["a@x.org"]);
    env.hold = true;
    let id = enqueue(&queue, env, b"hi").await;
    let agent = Fake::new(|_, _| sent());
    let start = Instant::now();
    run_until(&queue, Arc::clone(&agent), || {
        start.elapsed() > Duration::from_millis(300)
    })
    .await;
    assert!(agent.calls().is_empty());
    assert_eq!(files(dir.path(), "hold"), [id.to_string()]);
    let listed = queue.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].queue, QueueName::Hold);
}

#[tokio::test]
async fn corrupt_files_are_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let good = {
        let queue = Queue::open(dir.path()).unwrap();
        enqueue(&queue, envelope(&["a@x.org"]), b"hi").await
    };
    let bytes = fs::read(dir.path().join("active").join(good.as_str())).unwrap();
    // Truncated before the open: recovery quarantines it.
    fs::write(
        dir.path().join("active/AAAAAA000001"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let queue = Arc::new(Queue::open_with(dir.path(), fast()).unwrap());
    // Damaged after the open: the delivery attempt quarantines it.
    let mut damaged = bytes.clone();
    damaged.truncate(bytes.len() - 1);
    fs::write(dir.path().join("active/AAAAAA000002"), &damaged).unwrap();

    let agent = Fake::new(|_, _| sent());
    let path = dir.path().to_owned();
    run_until(&queue, Arc::clone(&agent), || {
        files(&path, "corrupt").len() == 2 && queue_is_empty(&path)
    })
    .await;
    assert_eq!(agent.calls(), ["a@x.org"]);
    assert_eq!(
        files(dir.path(), "corrupt"),
        ["AAAAAA000001", "AAAAAA000002"]
    );
}

#[tokio::test]
async fn bounced_recipients_complete_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::open_with(dir.path(), fast()).unwrap());
    enqueue(&queue, envelope(&["nobody@x.org", "a@x.org"]), b"hi").await;
    let agent = Fake::new(|rcpt, _| match rcpt {
        "nobody@x.org" => DeliveryStatus::Bounced {
            dsn: EnhancedCode::new(5, 1, 1),
            detail: "unknown user: \"nobody\"".to_owned(),
        },
        _ => sent(),
    });
    let path = dir.path().to_owned();
    run_until(&queue, Arc::clone(&agent), || queue_is_empty(&path)).await;
    // The third delivery is the bounce notice to the sender.
    assert_eq!(
        agent.calls(),
        ["nobody@x.org", "a@x.org", "alice@example.org"]
    );
}

#[tokio::test]
async fn deferred_message_waits_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings {
        minimal_backoff_time: Duration::from_secs(3600),
        maximal_backoff_time: Duration::from_secs(7200),
        ..QueueSettings::default()
    };
    let queue = Arc::new(Queue::open_with(dir.path(), settings).unwrap());
    let id = enqueue(&queue, envelope(&["a@x.org"]), b"hi").await;
    let agent = Fake::new(|_, _| deferred());
    let path = dir.path().to_owned();
    run_until(&queue, Arc::clone(&agent), || {
        !files(&path, "deferred").is_empty()
    })
    .await;
    assert_eq!(agent.calls(), ["a@x.org"]);
    let listed = queue.list().unwrap();
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_eq!(
        (entry.id.clone(), entry.queue),
        (id.clone(), QueueName::Deferred)
    );
    assert_eq!(entry.size, 2);
    assert!(matches!(
        &entry.recipients[0].1,
        RecipientStatus::Deferred { detail, .. } if detail == "mailbox full"
    ));
    let next = entry.next_attempt.unwrap();
    assert!(next > SystemTime::now() + Duration::from_secs(3500));
    // The file's mtime is the next attempt: what a restart schedules by.
    let mtime = fs::metadata(dir.path().join("deferred").join(id.as_str()))
        .unwrap()
        .modified()
        .unwrap();
    assert!(mtime > SystemTime::now() + Duration::from_secs(3500));
}

#[tokio::test]
async fn deferred_mail_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let queue = Arc::new(Queue::open_with(dir.path(), fast()).unwrap());
        enqueue(&queue, envelope(&["a@x.org"]), b"hi").await;
        let agent = Fake::new(|_, _| deferred());
        let path = dir.path().to_owned();
        run_until(&queue, agent, || !files(&path, "deferred").is_empty()).await;
    }
    let queue = Arc::new(Queue::open_with(dir.path(), fast()).unwrap());
    let agent = Fake::new(|_, _| sent());
    let path = dir.path().to_owned();
    run_until(&queue, Arc::clone(&agent), || queue_is_empty(&path)).await;
    assert_eq!(agent.calls(), ["a@x.org"]);
}

#[tokio::test]
async fn too_old_mail_expires() {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings {
        maximal_queue_lifetime: Duration::from_secs(3600),
        ..fast()
    };
    let queue = Arc::new(Queue::open_with(dir.path(), settings).unwrap());
    let mut env = envelope(&["a@x.org", "b@x.org"]);
    env.arrival = SystemTime::now() - Duration::from_secs(7200);
    enqueue(&queue, env, b"hi").await;
    let agent = Fake::new(|rcpt, _| {
        if rcpt == "b@x.org" {
            deferred()
        } else {
            sent()
        }
    });
    let path = dir.path().to_owned();
    run_until(&queue, Arc::clone(&agent), || queue_is_empty(&path)).await;
    // b@ expired; the sender hears of it.
    assert_eq!(agent.calls(), ["a@x.org", "b@x.org", "alice@example.org"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_within_the_concurrency_limit() {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings {
        process_limit: 3,
        ..fast()
    };
    let queue = Arc::new(Queue::open_with(dir.path(), settings).unwrap());
    let agent = Arc::new(Fake {
        delay: Duration::from_millis(5),
        ..Arc::into_inner(Fake::new(|_, _| sent())).unwrap()
    });
    let (stop, shutdown) = watch::channel(false);
    let task =
        tokio::spawn(Arc::clone(&queue).run(Arc::clone(&agent) as Arc<dyn Deliver>, shutdown));
    // Enqueued while the loop runs: each wakes it.
    for i in 0..40 {
        let rcpt = format!("u{i}@x.org");
        enqueue(&queue, envelope(&[&rcpt]), b"hi").await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !queue_is_empty(dir.path()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    let mut calls = agent.calls();
    calls.sort();
    calls.dedup();
    assert_eq!(calls.len(), 40);
    assert_eq!(agent.calls().len(), 40);
    assert!(agent.max_in_flight.load(Ordering::SeqCst) <= 3);
    assert!(queue_is_empty(dir.path()));
}

#[tokio::test]
async fn dropping_the_shutdown_sender_stops_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::open(dir.path()).unwrap());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&queue).run(Fake::new(|_, _| sent()), shutdown));
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn flush_tries_deferred_mail_now() {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings {
        minimal_backoff_time: Duration::from_secs(3600),
        maximal_backoff_time: Duration::from_secs(3600),
        ..QueueSettings::default()
    };
    let queue = Arc::new(Queue::open_with(dir.path(), settings).unwrap());
    enqueue(&queue, envelope(&["a@x.org"]), b"hi").await;
    let agent = Fake::new(|rcpt, tries| {
        if (rcpt, tries) == ("a@x.org", 0) {
            deferred()
        } else {
            sent()
        }
    });
    let (stop, shutdown) = watch::channel(false);
    let task =
        tokio::spawn(Arc::clone(&queue).run(Arc::clone(&agent) as Arc<dyn Deliver>, shutdown));
    let deadline = Instant::now() + Duration::from_secs(10);
    while files(dir.path(), "deferred").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A message another process (postern sendmail) left in active/.
    let other = Queue::open(dir.path()).unwrap();
    enqueue(&other, envelope(&["b@x.org"]), b"hi").await;
    queue.flush();
    while !queue_is_empty(dir.path()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert!(queue_is_empty(dir.path()));
    let mut calls = agent.calls();
    calls.sort();
    assert_eq!(calls, ["a@x.org", "a@x.org", "b@x.org"]);
}
