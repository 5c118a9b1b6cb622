//! Bounce notices over real queue files: who gets one, what it says, and
//! that notices never loop.

#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_mail::{
    Address, BoxFuture, Deliver, DeliveryStatus, Domain, EnhancedCode, Enqueue, Envelope, QueueId,
    Recipient, ReversePath,
};
use postern_queue::{Queue, QueueSettings};
use tokio::sync::watch;

/// One delivery the agent saw: recipient, sender, content.
type Seen = (String, String, String);

/// Bounces every recipient at `x.org`, delivers the rest.
#[derive(Default)]
struct Agent {
    seen: Mutex<Vec<Seen>>,
    bounce_all: bool,
}

impl Agent {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Deliver for Agent {
    fn agent(&self) -> &'static str {
        "local"
    }

    fn deliver<'a>(
        &'a self,
        _id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(async move {
            let rcpt = recipient.address.to_string();
            self.seen.lock().unwrap().push((
                rcpt.clone(),
                envelope.sender.to_string(),
                String::from_utf8_lossy(content).into_owned(),
            ));
            if self.bounce_all || rcpt.ends_with("@x.org") {
                DeliveryStatus::Bounced {
                    dsn: EnhancedCode::new(5, 1, 1),
                    detail: format!("unknown user: \"{}\"", recipient.address.local()),
                }
            } else {
                DeliveryStatus::Sent {
                    dsn: EnhancedCode::new(2, 0, 0),
                    detail: "delivered to maildir".to_owned(),
                }
            }
        })
    }
}

fn settings() -> QueueSettings {
    QueueSettings {
        minimal_backoff_time: Duration::from_millis(50),
        maximal_backoff_time: Duration::from_millis(100),
        myhostname: Domain::parse("mx.example.org").unwrap(),
        ..QueueSettings::default()
    }
}

fn envelope(sender: Option<&str>, rcpts: &[&str]) -> Envelope {
    let mut env = Envelope::new(match sender {
        Some(s) => ReversePath::Address(Address::parse(s).unwrap()),
        None => ReversePath::Null,
    });
    env.recipients = rcpts
        .iter()
        .map(|r| Recipient::new(Address::parse(r).unwrap()))
        .collect();
    env
}

fn empty(dir: &Path) -> bool {
    ["active", "deferred", "incoming"]
        .iter()
        .all(|q| fs::read_dir(dir.join(q)).unwrap().next().is_none())
}

/// Runs the loop until the queue is empty (at most 10 s).
async fn drain(queue: &Arc<Queue>, agent: Arc<Agent>) {
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(queue).run(agent, shutdown));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !empty(queue.dir()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A moment more: nothing further may be queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert!(empty(queue.dir()), "queue not drained");
}

#[tokio::test]
async fn sender_gets_one_notice_for_the_failed_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::open_with(dir.path(), settings()).unwrap());
    let content = b"Subject: hello\r\nMessage-ID: <m1@example.net>\r\n\r\nbody text\r\n";
    let id = queue.new_id();
    queue
        .enqueue(
            id.clone(),
            envelope(
                Some("carol@example.net"),
                &["a@x.org", "ok@y.org", "b@x.org"],
            ),
            content.to_vec(),
        )
        .await
        .unwrap();
    let agent = Arc::new(Agent::default());
    drain(&queue, Arc::clone(&agent)).await;
    let seen = agent.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let (rcpt, sender, notice) = &seen[3];
    assert_eq!((rcpt.as_str(), sender.as_str()), ("carol@example.net", ""));
    for needle in [
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n",
        "To: carol@example.net\r\n",
        "Content-Type: multipart/report; report-type=delivery-status;",
        &format!("X-Postern-Queue-ID: {id}\r\n"),
        "Final-Recipient: rfc822; a@x.org\r\n",
        "Final-Recipient: rfc822; b@x.org\r\n",
        "Status: 5.1.1\r\n",
        "Subject: hello\r\nMessage-ID: <m1@example.net>\r\n",
    ] {
        assert!(notice.contains(needle), "{needle:?} missing:\n{notice}");
    }
    assert!(!notice.contains("ok@y.org"));
    assert!(!notice.contains("body text"));
}

#[tokio::test]
async fn a_bounce_that_bounces_goes_to_postmaster_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::open_with(dir.path(), settings()).unwrap());
    queue
        .enqueue(
            queue.new_id(),
            envelope(None, &["gone@example.net"]),
            b"Subject: a bounce\r\n\r\nx\r\n".to_vec(),
        )
        .await
        .unwrap();
    // Everything bounces, the postmaster included: the double bounce is
    // then dropped, not bounced again.
    let agent = Arc::new(Agent {
        bounce_all: true,
        ..Agent::default()
    });
    drain(&queue, Arc::clone(&agent)).await;
    let seen = agent.seen();
    let who: Vec<(&str, &str)> = seen
        .iter()
        .map(|(r, s, _)| (r.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            ("gone@example.net", ""),
            ("postmaster@mx.example.org", "double-bounce@mx.example.org")
        ]
    );
    assert!(
        seen[1]
            .2
            .contains("Subject: Postmaster Copy: Undelivered Mail\r\n")
    );
}

#[tokio::test]
async fn a_notice_owed_before_a_crash_is_sent_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let queue = Queue::open_with(dir.path(), settings()).unwrap();
        let id = queue.new_id();
        queue
            .enqueue(
                id.clone(),
                envelope(Some("carol@example.net"), &["a@x.org"]),
                b"Subject: s\r\n\r\nx\r\n".to_vec(),
            )
            .await
            .unwrap();
        id
    };
    // The crash: the bounce was recorded, the notice never queued.
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("active").join(id.as_str()))
        .unwrap();
    f.write_all(b"D 0 bounced 5.1.1 unknown%20user\n").unwrap();
    drop(f);
    let queue = Arc::new(Queue::open_with(dir.path(), settings()).unwrap());
    let agent = Arc::new(Agent::default());
    drain(&queue, Arc::clone(&agent)).await;
    let seen = agent.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "carol@example.net");
    assert!(
        seen[0]
            .2
            .contains("Diagnostic-Code: X-Postern; unknown user\r\n")
    );
}
