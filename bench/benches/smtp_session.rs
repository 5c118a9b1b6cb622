//! The receive side's CPU per message (issue 8), piece by piece: what one
//! message of `bench/mta.py` (smtp-source, 4 KiB, one message per
//! connection) costs the SMTP session and the queue, without the kernel's
//! share that the whole-server benchmarks include.
//!
//! - **data decode 4 KiB**: [`DataDecoder`] over a 4 KiB message of
//!   76-byte lines in one chunk, as it arrives from one read.
//! - **reply wire**: the EHLO reply and `250 ... queued as ID` written
//!   into a reused buffer by [`write_reply`], and the same through
//!   [`Reply::to_wire`] (the allocating form), for comparison.
//! - **session**: one whole session (greeting, EHLO, MAIL, RCPT, DATA,
//!   4 KiB, QUIT) over an in-memory pipe, with a policy that permits
//!   everything and a queue that keeps nothing: the session's own cost.
//! - **enqueue 4 KiB**: [`Queue::enqueue`] into a queue directory on tmpfs
//!   (`/dev/shm`, where fsync costs nothing): the queue file's build and
//!   write, the move into `active/` and the hand-off to a blocking thread.
//!
//! Run: `cargo bench -p postern-bench --bench smtp_session`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use postern_mail::{
    Address, BoxFuture, Decision, Directory, DomainClass, EnhancedCode, Enqueue, EnqueueError,
    Envelope, Policy, PolicyRequest, QueueId, Recipient, Reply, ReversePath,
};
use postern_queue::Queue;
use postern_smtp::codec::{BareNewline, DataDecoder, write_reply};
use postern_smtp::{Connection, SessionSettings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A 4 KiB message as smtp-source sends it: a few headers, then lines
/// of 76 characters.
fn message() -> Vec<u8> {
    let mut m = b"From: <sender@client.test>\r\nTo: <bench@localhost>\r\n\
                  Subject: bench\r\nMessage-Id: <1.2@client.test>\r\n\r\n"
        .to_vec();
    while m.len() < 4096 {
        m.extend_from_slice(&[b'x'; 76]);
        m.extend_from_slice(b"\r\n");
    }
    m
}

fn decode(c: &mut Criterion) {
    let mut input = message();
    input.extend_from_slice(b".\r\n");
    c.bench_function("data decode 4 KiB", |b| {
        b.iter(|| {
            let mut d = DataDecoder::new(10_240_000, BareNewline::Normalize);
            let used = d.decode(black_box(&input));
            assert_eq!(used, input.len());
            black_box(d.finish().unwrap())
        });
    });
}

fn replies(c: &mut Criterion) {
    let ehlo = Reply::plain(
        250,
        "mx.test\nPIPELINING\nSIZE 10240000\nVRFY\nETRN\nENHANCEDSTATUSCODES\n\
         8BITMIME\nDSN\nSMTPUTF8\nCHUNKING",
    );
    let queued = Reply::new(
        250,
        EnhancedCode::new(2, 0, 0),
        "Ok: queued as 0005F3A1B2C3D4E000A1F2",
    );
    let mut out = Vec::with_capacity(512);
    c.bench_function("reply wire: write_reply", |b| {
        b.iter(|| {
            out.clear();
            write_reply(&mut out, black_box(&ehlo));
            write_reply(&mut out, black_box(&queued));
            black_box(out.len())
        });
    });
    c.bench_function("reply wire: to_wire", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&ehlo).to_wire().as_bytes());
            out.extend_from_slice(black_box(&queued).to_wire().as_bytes());
            black_box(out.len())
        });
    });
}

/// Permits everything, at once.
struct Permit;

impl Policy for Permit {
    fn check<'a>(&'a self, _: &'a PolicyRequest) -> BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(Decision::permit()))
    }
}

/// `localhost` is local and everyone there exists.
struct Local;

impl Directory for Local {
    fn domain_class(&self, domain: &postern_mail::Domain) -> DomainClass {
        if domain.as_str() == "localhost" {
            DomainClass::Local
        } else {
            DomainClass::Other
        }
    }

    fn recipient_exists(&self, _: &Address) -> bool {
        true
    }
}

/// Takes every message and keeps none.
struct Discard;

impl Enqueue for Discard {
    fn new_id(&self) -> QueueId {
        postern_queue::id::next_id()
    }

    fn enqueue<'a>(
        &'a self,
        _: QueueId,
        envelope: Envelope,
        content: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), EnqueueError>> {
        black_box((envelope, content));
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One session as smtp-source runs it, the client waiting for each reply.
async fn session(settings: &Arc<SessionSettings>, message: &[u8]) {
    let (server, client) = tokio::io::duplex(64 * 1024);
    let conn = Connection::new(
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:25".parse().unwrap(),
    );
    let served = tokio::spawn(postern_smtp::serve(
        server,
        conn,
        Arc::clone(settings),
        Arc::new(Permit),
        Arc::new(Local),
        Arc::new(Discard),
    ));
    let (r, mut w) = tokio::io::split(client);
    let mut r = BufReader::new(r);
    let mut line = String::new();
    // Reads one whole (multi-line) reply; returns its code's first digit.
    async fn reply(
        r: &mut BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
        line: &mut String,
    ) -> u8 {
        loop {
            line.clear();
            r.read_line(line).await.unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.as_bytes()[0];
            }
        }
    }
    assert_eq!(reply(&mut r, &mut line).await, b'2');
    for cmd in [
        &b"EHLO client.test\r\n"[..],
        b"MAIL FROM:<sender@client.test>\r\n",
        b"RCPT TO:<bench@localhost>\r\n",
    ] {
        w.write_all(cmd).await.unwrap();
        assert_eq!(reply(&mut r, &mut line).await, b'2');
    }
    w.write_all(b"DATA\r\n").await.unwrap();
    assert_eq!(reply(&mut r, &mut line).await, b'3');
    w.write_all(message).await.unwrap();
    w.write_all(b".\r\n").await.unwrap();
    assert_eq!(reply(&mut r, &mut line).await, b'2', "{line}");
    w.write_all(b"QUIT\r\n").await.unwrap();
    assert_eq!(reply(&mut r, &mut line).await, b'2');
    served.await.unwrap();
}

fn sessions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = Arc::new(SessionSettings {
        hostname: "mx.test".to_owned(),
        banner: "mx.test ESMTP Postern".to_owned(),
        ..SessionSettings::default()
    });
    let message = message();
    c.bench_function("session: EHLO MAIL RCPT DATA 4 KiB QUIT", |b| {
        b.iter(|| rt.block_on(session(&settings, &message)));
    });
}

fn enqueue(c: &mut Criterion) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let queue = rt.block_on(async { Queue::open(dir.path()).unwrap() });
    let mut envelope = Envelope::new(ReversePath::Address(
        Address::parse("sender@client.test").unwrap(),
    ));
    envelope.recipients = vec![Recipient::new(Address::parse("bench@localhost").unwrap())];
    envelope.client = Some("127.0.0.1:40000".parse().unwrap());
    envelope.helo = Some("client.test".to_owned());
    let content = message();
    let active = dir.path().join("active");
    c.bench_function("enqueue 4 KiB (tmpfs)", |b| {
        b.iter_custom(|n| {
            let mut spent = Duration::ZERO;
            for _ in 0..n {
                let id = queue.new_id();
                let (env, body) = (envelope.clone(), content.clone());
                let start = Instant::now();
                rt.block_on(queue.enqueue(id.clone(), env, body)).unwrap();
                spent += start.elapsed();
                // Outside the clock: the queue must not grow without end.
                std::fs::remove_file(active.join(id.as_str())).unwrap();
            }
            spent
        });
    });
}

criterion_group!(benches, decode, replies, sessions, enqueue);
criterion_main!(benches);
