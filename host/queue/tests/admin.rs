//! Operator commands racing the delivery loop: a message held or deleted
//! while it is being delivered is left alone, never delivered again,
//! never a panic.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_mail::{
    Address, BoxFuture, Deliver, DeliveryStatus, EnhancedCode, Enqueue, Envelope, QueueId,
    Recipient, ReversePath,
};
use postern_queue::{Queue, QueueName, QueueSettings, RecipientStatus};
use tokio::sync::watch;

/// Runs the operator command `op` on the message in the middle of its
/// delivery (from a second handle on the directory, as the CLI does),
/// then answers `answer`.
struct Meddler {
    dir: PathBuf,
    op: fn(&Queue, &QueueId),
    answer: DeliveryStatus,
    calls: Mutex<usize>,
}

impl Deliver for Meddler {
    fn agent(&self) -> &'static str {
        "local"
    }

    fn deliver<'a>(
        &'a self,
        id: &'a QueueId,
        _envelope: &'a Envelope,
        _recipient: &'a Recipient,
        _content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(async move {
            *self.calls.lock().unwrap() += 1;
            (self.op)(&Queue::attach(&self.dir).unwrap(), id);
            self.answer.clone()
        })
    }
}

async fn meddle(
    op: fn(&Queue, &QueueId),
    answer: DeliveryStatus,
) -> (tempfile::TempDir, QueueId, usize) {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings {
        minimal_backoff_time: Duration::from_millis(20),
        maximal_backoff_time: Duration::from_millis(20),
        queue_run_delay: Duration::from_millis(50),
        ..QueueSettings::default()
    };
    let queue = Arc::new(Queue::open_with(dir.path(), settings).unwrap());
    let mut env = Envelope::new(ReversePath::Null);
    env.recipients
        .push(Recipient::new(Address::parse("a@x.org").unwrap()));
    let id = queue.new_id();
    queue.enqueue(id.clone(), env, b"x".to_vec()).await.unwrap();
    let agent = Arc::new(Meddler {
        dir: dir.path().to_owned(),
        op,
        answer,
        calls: Mutex::new(0),
    });
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&queue).run(agent.clone(), shutdown));
    let deadline = Instant::now() + Duration::from_secs(5);
    while *agent.calls.lock().unwrap() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Several scans and backoffs more: nothing may be tried again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let calls = *agent.calls.lock().unwrap();
    (dir, id, calls)
}

fn deferred() -> DeliveryStatus {
    DeliveryStatus::Deferred {
        dsn: EnhancedCode::new(4, 2, 2),
        detail: "mailbox full".to_owned(),
    }
}

#[tokio::test]
async fn held_during_delivery_stays_held_with_its_record() {
    let (dir, id, calls) = meddle(
        |q, id| {
            q.hold(id).unwrap();
        },
        deferred(),
    )
    .await;
    assert_eq!(calls, 1);
    let (queue, message) = Queue::attach(dir.path()).unwrap().read(&id).unwrap();
    assert_eq!(queue, QueueName::Hold);
    assert!(matches!(
        message.statuses[0],
        RecipientStatus::Deferred { .. }
    ));
}

#[tokio::test]
async fn deleted_during_delivery_is_gone() {
    let (dir, id, calls) = meddle(
        |q, id| {
            q.delete(id).unwrap();
        },
        deferred(),
    )
    .await;
    assert_eq!(calls, 1);
    assert!(Queue::attach(dir.path()).unwrap().read(&id).is_err());
    let sent = DeliveryStatus::Sent {
        dsn: EnhancedCode::new(2, 0, 0),
        detail: "ok".to_owned(),
    };
    let (dir, _, calls) = meddle(
        |q, id| {
            q.delete(id).unwrap();
        },
        sent,
    )
    .await;
    assert_eq!(calls, 1);
    assert!(
        Queue::attach(dir.path())
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );
}
