//! What the session tests run against: a real loopback listener, tiny
//! Policy, Directory and Enqueue implementations, a tracing subscriber that
//! captures the `postern/smtpd` lines, and a line-oriented SMTP client.
//! Every wait is bounded, so a broken server fails a test instead of
//! hanging it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_mail::{
    Address, BoxFuture, Decision, Directory, DomainClass, EnhancedCode, Enqueue, EnqueueError,
    Envelope, Policy, PolicyRequest, QueueId, Reply, Stage, Verdict,
};
use postern_smtp::{Connection, SessionSettings, serve};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A policy rule: what the lists answer for one request.
pub type Rule = Box<dyn Fn(&PolicyRequest) -> Decision + Send + Sync>;

/// The test policy: a rule, and a record of every request it saw.
pub struct TestPolicy {
    rule: Rule,
    pub seen: Mutex<Vec<PolicyRequest>>,
}

impl Policy for TestPolicy {
    fn check<'a>(&'a self, request: &'a PolicyRequest) -> BoxFuture<'a, Decision> {
        self.seen.lock().unwrap().push(request.clone());
        let decision = (self.rule)(request);
        Box::pin(async move {
            tokio::task::yield_now().await;
            decision
        })
    }
}

/// `reject_unauth_destination` for example.com, permit for the rest.
pub fn relay_rule() -> Rule {
    Box::new(|r: &PolicyRequest| {
        if r.stage == Stage::Relay && r.recipient.ends_with("@example.com") {
            refuse(
                554,
                "5.7.1",
                &format!("<{}>: Relay access denied", r.recipient),
                "reject_unauth_destination",
            )
        } else {
            Decision::permit()
        }
    })
}

/// A refusal decided by `by`.
pub fn refuse(code: u16, enhanced: &str, text: &str, by: &str) -> Decision {
    let reply = Reply {
        code,
        enhanced: EnhancedCode::parse(enhanced),
        text: text.to_owned(),
    };
    Decision {
        verdict: if code >= 500 {
            Verdict::Reject(reply)
        } else {
            Verdict::Defer(reply)
        },
        decided_by: Some(by.to_owned()),
        actions: Vec::new(),
    }
}

/// A permit carrying `actions`.
pub fn permit_with(actions: Vec<Verdict>) -> Decision {
    Decision {
        actions,
        ..Decision::permit()
    }
}

/// local.test (alice, postmaster) is local, virt.test (bob) virtual,
/// relay.test relayed, everything else other. mx.test is local too, for a
/// bare `<postmaster>`.
pub struct TestDirectory;

impl Directory for TestDirectory {
    fn domain_class(&self, domain: &postern_mail::Domain) -> DomainClass {
        match domain.as_str() {
            "local.test" | "mx.test" => DomainClass::Local,
            "virt.test" => DomainClass::Virtual,
            "relay.test" => DomainClass::Relay,
            _ => DomainClass::Other,
        }
    }

    fn recipient_exists(&self, r: &Address) -> bool {
        match r.domain().as_str() {
            "local.test" | "mx.test" => ["alice", "postmaster"].contains(&r.local()),
            "virt.test" => r.local() == "bob",
            _ => true,
        }
    }
}

/// One queued message.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: QueueId,
    pub envelope: Envelope,
    pub content: Vec<u8>,
}

/// Collects messages; ids are ABC00001, ABC00002, ...
#[derive(Default)]
pub struct TestQueue {
    next: AtomicU32,
    pub fail: AtomicBool,
    pub messages: Mutex<Vec<Queued>>,
}

impl Enqueue for TestQueue {
    fn new_id(&self) -> QueueId {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        QueueId::parse(&format!("ABC{n:05X}")).unwrap()
    }

    fn enqueue<'a>(
        &'a self,
        id: QueueId,
        envelope: Envelope,
        content: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), EnqueueError>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(EnqueueError::Io(std::io::Error::other("disk full")));
            }
            self.messages.lock().unwrap().push(Queued {
                id,
                envelope,
                content,
            });
            Ok(())
        })
    }
}

/// Captures the message of every `postern/smtpd` event.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if event.metadata().target() == "postern/smtpd" {
            let mut m = Message(String::new());
            event.record(&mut m);
            self.0.lock().unwrap().push(m.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Test settings: host name mx.test, everything else default.
pub fn settings() -> SessionSettings {
    SessionSettings {
        hostname: "mx.test".to_owned(),
        banner: "mx.test ESMTP Postern".to_owned(),
        ..SessionSettings::default()
    }
}

/// One server session on a loopback listener.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub queue: Arc<TestQueue>,
    pub policy: Arc<TestPolicy>,
    logs: Capture,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts a listener that serves one connection with `settings`.
    pub async fn start(settings: SessionSettings, rule: Rule) -> Server {
        Server::start_as(settings, rule, None).await
    }

    /// As [`Server::start`], but the session believes the client is at
    /// `peer` when given (to test what a non-loopback client sees).
    pub async fn start_as(
        settings: SessionSettings,
        rule: Rule,
        peer: Option<std::net::SocketAddr>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let queue = Arc::new(TestQueue::default());
        let policy = Arc::new(TestPolicy {
            rule,
            seen: Mutex::new(Vec::new()),
        });
        let logs = Capture::default();
        let (q, p, l) = (Arc::clone(&queue), Arc::clone(&policy), logs.clone());
        let task = tokio::spawn(async move {
            let (socket, real) = listener.accept().await.unwrap();
            let local = socket.local_addr().unwrap();
            let conn = Connection::new(peer.unwrap_or(real), local);
            serve(
                socket,
                conn,
                Arc::new(settings),
                p,
                Arc::new(TestDirectory),
                q,
            )
            .with_subscriber(l)
            .await;
        });
        Server {
            addr,
            queue,
            policy,
            logs,
            task,
        }
    }

    /// Connects a client and reads the greeting.
    pub async fn client(&self) -> Client {
        let mut c = self.connect().await;
        assert_eq!(c.reply().await, "220 mx.test ESMTP Postern\r\n");
        c
    }

    /// Connects a client, the greeting left unread.
    pub async fn connect(&self) -> Client {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(self.addr))
            .await
            .unwrap()
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let (r, w) = stream.into_split();
        Client {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    /// Waits for the session to end.
    pub async fn done(self) -> Finished {
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("session did not end")
            .unwrap();
        let messages = self.queue.messages.lock().unwrap().clone();
        let logs = self.logs.0.lock().unwrap().clone();
        let requests = self.policy.seen.lock().unwrap().clone();
        Finished {
            messages,
            logs,
            requests,
        }
    }
}

/// What a finished session left behind.
pub struct Finished {
    pub messages: Vec<Queued>,
    pub logs: Vec<String>,
    pub requests: Vec<PolicyRequest>,
}

impl Finished {
    /// Asserts that `line` was logged.
    pub fn logged(&self, line: &str) {
        assert!(
            self.logs.iter().any(|l| l == line),
            "no log line {line:?} in\n{}",
            self.logs.join("\n")
        );
    }

    /// The only queued message.
    pub fn message(&self) -> &Queued {
        assert_eq!(self.messages.len(), 1, "{:?}", self.messages);
        &self.messages[0]
    }
}

/// The client side of a session.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

impl Client {
    /// Writes bytes as they are.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.writer.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Reads one reply, all its lines, CRLFs included.
    pub async fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(WAIT, self.reader.read_until(b'\n', &mut line))
                .await
                .expect("no reply in time")
                .unwrap();
            assert!(n > 0, "connection closed; got so far {out:?}");
            let line = String::from_utf8_lossy(&line).into_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            out.push_str(&line);
            if last {
                return out;
            }
        }
    }

    /// Sends a command and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n")).await;
        self.reply().await
    }

    /// EHLO client.test, checking the reply.
    pub async fn ehlo(&mut self) {
        assert!(
            self.cmd("EHLO client.test")
                .await
                .starts_with("250-mx.test\r\n")
        );
    }

    /// Reads everything until the server closes.
    pub async fn rest(&mut self) -> String {
        let mut all = Vec::new();
        tokio::time::timeout(WAIT, self.reader.read_to_end(&mut all))
            .await
            .expect("server did not close")
            .unwrap();
        String::from_utf8_lossy(&all).into_owned()
    }
}

/// The reply codes in a stream of replies, one per final line.
pub fn codes(replies: &str) -> Vec<&str> {
    replies
        .split("\r\n")
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .map(|l| &l[..3])
        .collect()
}

/// Knuth's MMIX LCG: deterministic "random" bytes without a crate.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
}
