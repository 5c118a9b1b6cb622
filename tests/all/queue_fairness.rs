//! Fairness of the queue manager end to end, as Postfix's qmgr schedules:
//! a destination that answers slowly (a real loopback SMTP server that
//! sleeps 30 s in each DATA) with a backlog of messages holds at most its
//! concurrency limit of connections, counted at the server, and mail to
//! another destination queued after the backlog is delivered at once
//! rather than waiting behind it.
//!
//! The sink server here (Python's standard library only) also serves
//! `queue_memory`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::remote_smtp::{sender, table};
use crate::support::*;

/// A threaded SMTP sink: argv DELAY OUTDIR PORT (0: any). Sleeps DELAY
/// seconds in each DATA before 250; keeps OUTDIR/stats up to date as
/// "OPEN MAX SAVED": connections open now, the most ever open at once,
/// messages accepted. Prints its port once listening.
const SINK: &str = r#"
import os, socketserver, sys, threading, time
delay, outdir, port = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
state = {"open": 0, "max": 0, "saved": 0}

def note():
    tmp = os.path.join(outdir, "stats.tmp")
    with open(tmp, "w") as f:
        f.write("%d %d %d\n" % (state["open"], state["max"], state["saved"]))
    os.replace(tmp, os.path.join(outdir, "stats"))

class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            state["open"] += 1
            state["max"] = max(state["max"], state["open"])
            note()
        try:
            self.session()
        finally:
            with lock:
                state["open"] -= 1
                note()

    def session(self):
        w = self.wfile
        w.write(b"220 sink.test ESMTP\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO", b"LHLO"):
                w.write(b"250-sink.test\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                w.write(b"354 go ahead\r\n")
                while True:
                    data = self.rfile.readline()
                    if not data:
                        return
                    if data == b".\r\n":
                        break
                time.sleep(delay)
                with lock:
                    state["saved"] += 1
                    note()
                w.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                w.write(b"221 2.0.0 Bye\r\n")
                return
            else:
                w.write(b"250 2.0.0 Ok\r\n")

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

server = Server(("127.0.0.1", port), Handler)
with lock:
    note()
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A running sink; killed when dropped.
pub struct Sink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    /// Starts a sink that takes `delay` seconds per DATA, on `port` (0:
    /// any free one).
    pub fn start(delay: f64, port: u16) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SINK)
            .arg(delay.to_string())
            .arg(dir.path())
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().unwrap();
        Sink { child, port, dir }
    }

    /// (connections open now, most ever open at once, messages taken).
    pub fn stats(&self) -> (u32, u32, u32) {
        stats(self.dir.path())
    }

    /// Waits until the sink has taken `n` messages.
    pub fn wait_saved(&self, n: u32, within: Duration) {
        let start = Instant::now();
        while self.stats().2 < n {
            assert!(
                start.elapsed() < within,
                "the sink took {:?} of {n} messages in {within:?}",
                self.stats()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stats(dir: &Path) -> (u32, u32, u32) {
    let text = std::fs::read_to_string(dir.join("stats")).unwrap_or_default();
    let n: Vec<u32> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match n[..] {
        [open, max, saved] => (open, max, saved),
        _ => (0, 0, 0),
    }
}

/// Queues `n` messages for `rcpt` through one SMTP session.
pub fn queue_many(server: &Server, rcpt: &str, n: usize) {
    let mut c = Client::connect(server.smtp);
    for i in 0..n {
        let r = send_message(
            &mut c,
            "someone@sender.test",
            &[rcpt],
            &format!("Subject: load {i}\r\n\r\nbody {i}\r\n"),
        );
        assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    }
    c.cmd("QUIT");
}

/// `backlog` messages to a sink that sleeps 30 s per DATA, then three to
/// a fast sink: the fast ones arrive within seconds, and the slow sink
/// never sees more than `limit` connections at once.
fn slow_backlog_leaves_room_for_others(extra: &str, backlog: usize, limit: u32) {
    let slow = Sink::start(30.0, 0);
    let fast = Sink::start(0.0, 0);
    let tables = tempfile::tempdir().unwrap();
    let transport = table(
        tables.path(),
        "transport",
        &format!(
            "slow.test smtp:[127.0.0.1]:{}\nfast.test smtp:[127.0.0.1]:{}\n",
            slow.port, fast.port
        ),
    );
    let (server, _tmp) = sender(
        None,
        &format!("transport_maps = \"{transport}\"\n{extra}"),
        "",
    );
    queue_many(&server, "far@slow.test", backlog);
    // The slow destination's deliveries are under way: its slots taken.
    let start = Instant::now();
    while slow.stats().0 < limit.min(5) {
        assert!(
            start.elapsed() < WAIT,
            "slow sink: {:?}\n{}",
            slow.stats(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let queued = Instant::now();
    queue_many(&server, "near@fast.test", 3);
    fast.wait_saved(3, Duration::from_secs(15));
    let took = queued.elapsed();
    // Give the slow destination time to open what more it would.
    std::thread::sleep(Duration::from_secs(2));
    let (open, max, saved) = slow.stats();
    eprintln!(
        "queue_fairness: fast mail delivered in {took:?} behind {backlog} slow messages; \
         slow sink: {open} open, {max} at most, {saved} taken (limit {limit})"
    );
    assert_eq!(saved, 0, "a slow DATA takes 30 s");
    assert!(
        max <= limit,
        "{max} connections to the slow sink, limit {limit}"
    );
    assert!(max >= limit.min(5), "{max} connections to the slow sink");
}

#[test]
fn a_slow_destination_does_not_starve_a_fast_one() {
    // Postfix's defaults: 20 per destination of 100 deliveries.
    slow_backlog_leaves_room_for_others("", 40, 20);
}

#[test]
fn a_transport_limit_caps_the_slow_destination() {
    slow_backlog_leaves_room_for_others("smtp_destination_concurrency_limit = 3\n", 20, 3);
}

#[test]
fn a_small_process_limit_is_shared_between_destinations() {
    // Five deliveries in all, of which the slow destination may take
    // four: the fast one still gets one.
    slow_backlog_leaves_room_for_others(
        "default_process_limit = 5\ndefault_destination_concurrency_limit = 4\n",
        20,
        4,
    );
}
