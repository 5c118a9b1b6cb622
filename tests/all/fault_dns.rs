//! Fault injection in DNS: a name server that never answers, or answers
//! SERVFAIL, in front of the test name server (`dns`, hickory-server).
//!
//! For remote delivery, an MX lookup that times out or fails defers the
//! message (`dsn=4.4.3`, "Host not found, try again", as Postfix says it),
//! bounces nothing, and `postern flush` delivers every message once the
//! name server answers again. For policy checks under load, DNS lists and
//! domain checks whose name server never answers give each transaction an
//! answer within a bound: a 450 where Postfix defers, the benefit of the
//! doubt where Postfix gives it, never a 5xx. Each test prints what was
//! lost (nothing) and how the server recovered.
//!
//! [`FaultyDns`] is not a name server: it is a UDP relay that drops each
//! query, answers it SERVFAIL, or passes it to the real one, switched
//! while the test runs, so the server under test keeps one `[dns]`
//! address throughout.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::dns;
use crate::fault_remote::{Dest, Mode, copies, lines_with, numbered, queued, wait_lines};
use crate::remote_smtp::{sender, submit};
use crate::support::*;

/// Drops every query: a name server that times out.
const SILENT: u8 = 0;
/// Answers every query with RCODE 2, SERVFAIL (RFC 1035 §4.1.1).
const SERVFAIL: u8 = 1;
/// Relays every query to the real name server and its answer back.
const ANSWER: u8 = 2;

/// A UDP relay in front of a name server that misbehaves on request.
struct FaultyDns {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Queries seen in each mode.
    queries: Arc<[AtomicUsize; 3]>,
}

impl FaultyDns {
    /// Starts one on an ephemeral 127.0.0.1 port, relaying to `upstream`
    /// in mode [`ANSWER`].
    fn start(upstream: Option<SocketAddr>, mode: u8) -> FaultyDns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let faulty = FaultyDns {
            addr,
            mode: Arc::new(AtomicU8::new(mode)),
            queries: Arc::new(Default::default()),
        };
        let (mode, queries) = (faulty.mode.clone(), faulty.queries.clone());
        // Ends with the test binary: a blocked recv costs nothing.
        std::thread::spawn(move || {
            let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
            relay
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 4096];
            loop {
                let Ok((n, client)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let m = mode.load(Ordering::SeqCst);
                queries[usize::from(m)].fetch_add(1, Ordering::SeqCst);
                // Shorter than a header: not a query; nothing to answer.
                if n < 12 {
                    continue;
                }
                match (m, upstream) {
                    (SERVFAIL, _) => {
                        // The query itself, turned into a response: QR
                        // and RA set, RCODE 2, the question (and any OPT)
                        // kept, as RFC 1035 §4.1.1 allows.
                        let mut answer = buf[..n].to_vec();
                        answer[2] |= 0x80;
                        answer[3] = (answer[3] & 0xf0) | 0x80 | 2;
                        let _ = socket.send_to(&answer, client);
                    }
                    (ANSWER, Some(upstream)) => {
                        let _ = relay.send_to(&buf[..n], upstream);
                        let mut answer = [0u8; 4096];
                        if let Ok(got) = relay.recv(&mut answer) {
                            let _ = socket.send_to(&answer[..got], client);
                        }
                    }
                    _ => {}
                }
            }
        });
        faulty
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// Queries seen in `mode`.
    fn queries(&self, mode: u8) -> usize {
        self.queries[usize::from(mode)].load(Ordering::SeqCst)
    }
}

/// `[dns]` through `dns`, with a 1 s timeout so that a silent name
/// server costs seconds, not Postfix's minutes.
fn dns_section(dns: SocketAddr) -> String {
    format!("[dns]\nnameservers = [\"{dns}\"]\ntimeout = \"1s\"\n")
}

#[test]
fn mx_lookups_that_time_out_or_fail_defer_and_flush_delivers() {
    let dest = Dest::start(Mode::Ok);
    let zone = dns::start(
        "far.test.",
        vec![
            dns::mx("far.test.", 10, "mx.far.test."),
            dns::a("mx.far.test.", Ipv4Addr::LOCALHOST),
        ],
    );
    let faulty = FaultyDns::start(Some(zone), SILENT);
    // Retries far away: only the flush sends the deferred mail.
    let (server, tmp) = sender(
        None,
        &format!(
            "smtp_tcp_port = {}\n\
             minimal_backoff_time = \"1000s\"\n\
             maximal_backoff_time = \"4000s\"\n\
             queue_run_delay = \"1000s\"\n",
            dest.port
        ),
        &dns_section(faulty.addr),
    );
    let began = Instant::now();

    // A name server that never answers, then one that answers SERVFAIL.
    let mut ids = Vec::new();
    for (i, mode) in [SILENT, SERVFAIL].into_iter().enumerate() {
        faulty.set(mode);
        let id = submit(
            &server,
            "postmaster@sender.test",
            &[format!("r{i}@far.test").as_str()],
            &numbered("dns", i),
        );
        let log = wait_lines(&server, &id, "status=deferred", 1);
        let line = lines_with(&log, &id, "status=deferred")[0];
        assert!(
            line.contains(&format!("to=<r{i}@far.test>, relay=none"))
                && line.contains(
                    "dsn=4.4.3, status=deferred (Host or domain name not found. Name service \
                     error for name=far.test type=MX: Host not found, try again)"
                ),
            "{line}"
        );
        ids.push(id);
    }
    let deferred_in = began.elapsed();
    let (silent, servfail) = (faulty.queries(SILENT), faulty.queries(SERVFAIL));
    assert!(silent > 0 && servfail > 0, "{silent} {servfail}");
    let queue = tmp.path().join("queue");
    assert_eq!(queued(&queue), 2, "both wait in the queue");
    // The log line comes before the queue file moves to deferred/; a
    // flush before that finds the message still in flight, and it then
    // waits its backoff, as in Postfix.
    let start = Instant::now();
    while std::fs::read_dir(queue.join("deferred")).map_or(0, |d| d.count()) < 2 {
        assert!(start.elapsed() < WAIT, "never moved to deferred/");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(dest.received().is_empty());
    assert!(!server.log().contains("status=bounced"), "{}", server.log());

    // The name server answers again; a flush sends both.
    faulty.set(ANSWER);
    let recovered = Instant::now();
    flush(tmp.path());
    // On a saturated machine a lookup may still miss the 1 s timeout
    // and defer again: the operator flushes again (counted, printed).
    let mut flushes = 1;
    while dest.received().len() < 2 {
        assert!(
            recovered.elapsed() < WAIT,
            "{} of 2 delivered after {flushes} flushes:\n{}",
            dest.received().len(),
            server.log()
        );
        if recovered.elapsed() > Duration::from_secs(5 * flushes) {
            flush(tmp.path());
            flushes += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in &ids {
        wait_lines(&server, id, "removed", 1);
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log();
    let counts = copies(&dest.received(), "dns", 2);
    eprintln!(
        "fault_dns: MX lookup faults: {silent} queries unanswered, {servfail} answered \
         SERVFAIL; both messages deferred 4.4.3 within {:.1}s, none bounced; after the name \
         server recovered, {flushes} `postern flush` delivered them in {:.1}s ({} deferred \
         again meanwhile); copies {counts:?}: lost {}, duplicated {}",
        deferred_in.as_secs_f64(),
        recovered.elapsed().as_secs_f64(),
        ids.iter()
            .map(|id| lines_with(&log, id, "status=deferred").len() - 1)
            .sum::<usize>(),
        counts.iter().filter(|&&c| c == 0).count(),
        counts.iter().filter(|&&c| c > 1).count(),
    );
    assert_eq!(counts, [1, 1], "lost or duplicated:\n{log}");
    assert_eq!(queued(&queue), 0);
    assert!(!log.contains("status=bounced"), "{log}");
    for id in &ids {
        assert_eq!(lines_with(&log, id, "status=sent").len(), 1, "{log}");
    }
}

/// Concurrent sessions in each round of policy lookups that fail.
const SESSIONS: usize = 20;

/// The reply of an entry's `on_error` (a plugin that failed: on a
/// saturated machine, one that missed its own deadline).
const PLUGIN_FAILED: &str = "451 4.3.0 Error: policy plugin ";

/// [`SESSIONS`] concurrent sessions from 127.0.0.2 (outside mynetworks)
/// while the name server is in `mode`: the even ones with the null
/// sender (only the DNS list is asked), the odd ones from a domain whose
/// lookups fail too. Checks the answers, prints the tally and returns
/// the numbers of the messages accepted.
fn policy_load(server: &Server, faulty: &FaultyDns, mode: u8, tag: &str) -> Vec<usize> {
    let began = Instant::now();
    let queries_before = faulty.queries(mode);
    let results = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let (smtp, results, tag) = (server.smtp, results.clone(), tag.to_owned());
            std::thread::spawn(move || {
                let mut c = Client::connect_from(smtp, "127.0.0.2");
                assert!(c.cmd("EHLO client.test.example").starts_with("250"));
                let from = if i % 2 == 0 {
                    String::new()
                } else {
                    format!("s{i}@slow.test")
                };
                let r = c.cmd(&format!("MAIL FROM:<{from}>"));
                assert!(r.starts_with("250"), "{r}");
                let asked = Instant::now();
                let rcpt = c.cmd("RCPT TO:<alice@example.org>");
                let took = asked.elapsed();
                let data = if rcpt.starts_with("250") {
                    assert!(c.cmd("DATA").starts_with("354"));
                    c.send(numbered(&tag, i).as_bytes());
                    c.send(b".\r\n");
                    c.reply()
                } else {
                    String::new()
                };
                c.cmd("QUIT");
                results.lock().unwrap().push((i, rcpt, data, took));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let results = results.lock().unwrap().clone();
    let slowest = results.iter().map(|r| r.3).max().unwrap_or_default();
    let accepted: Vec<usize> = results
        .iter()
        .filter(|r| r.2.starts_with("250"))
        .map(|r| r.0)
        .collect();
    let deferred = results.iter().filter(|r| r.1.starts_with("450")).count();
    let failed = results
        .iter()
        .filter(|r| r.1.starts_with(PLUGIN_FAILED))
        .count();
    let permanent: Vec<_> = results
        .iter()
        .filter(|r| r.1.starts_with('5') || r.2.starts_with('5'))
        .collect();
    eprintln!(
        "fault_dns: policy lookups under load, name server {}: {SESSIONS} sessions, {} \
         queries; {} accepted (the DNS list unanswered: the benefit of the doubt, as \
         Postfix), {deferred} deferred 450, {failed} deferred 451 (a plugin failed), {} 5xx; \
         slowest RCPT answer {:.1}s; all done in {:.1}s; first plugin failure: {:?}",
        ["silent", "answering SERVFAIL", "answering"][usize::from(mode)],
        faulty.queries(mode) - queries_before,
        accepted.len(),
        permanent.len(),
        slowest.as_secs_f64(),
        began.elapsed().as_secs_f64(),
        server
            .log()
            .lines()
            .find(|l| l.contains(" failed at "))
            .and_then(|l| l.split(": plugin ").nth(1)),
    );
    assert!(permanent.is_empty(), "a 5xx: {permanent:?}");
    for (i, rcpt, data, _) in &results {
        let failed = rcpt.starts_with(PLUGIN_FAILED);
        if i % 2 == 0 {
            assert!(
                (rcpt.starts_with("250") && data.starts_with("250")) || failed,
                "{i}: {rcpt} {data}"
            );
        } else {
            assert!(
                rcpt.starts_with("450 4.1.8 <s") || failed,
                "{i}: a domain that cannot be looked up defers: {rcpt}"
            );
        }
    }
    // A 1 s timeout per lookup, a few lookups per RCPT, and a 10 s DNS
    // budget per call: far below the bound, on a loaded machine too.
    assert!(slowest < Duration::from_secs(20), "{slowest:?}");
    accepted
}

#[test]
fn policy_lookups_that_time_out_or_fail_under_load_defer_and_never_hang() {
    let faulty = FaultyDns::start(None, SILENT);
    let (server, _tmp) = Server::start(&format!(
        "smtpd_client_restrictions = [\"reject_rbl_client rbl.test\"]\n\
         smtpd_sender_restrictions = [\"reject_unknown_sender_domain\"]\n\
         smtpd_recipient_restrictions = [\"permit_mynetworks\", \
         \"reject_unauth_destination\"]\n\
         {}",
        dns_section(faulty.addr)
    ));
    let silent = policy_load(&server, &faulty, SILENT, "silent");
    faulty.set(SERVFAIL);
    let servfail = policy_load(&server, &faulty, SERVFAIL, "servfail");
    server.wait_log("2.0.0.127.rbl.test: RBL lookup error");

    // Every accepted message is delivered, once.
    let accepted = silent.len() + servfail.len();
    let delivered: Vec<String> = wait_messages(&server.new_dir("alice"), accepted)
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let (mut lost, mut duplicated) = (0, 0);
    for (tag, accepted) in [("silent", &silent), ("servfail", &servfail)] {
        for (i, n) in copies(&delivered, tag, SESSIONS).into_iter().enumerate() {
            let sent = usize::from(accepted.contains(&i));
            lost += usize::from(n < sent);
            duplicated += usize::from(n > sent);
        }
    }
    eprintln!(
        "fault_dns: policy lookups: {accepted} accepted, {} delivered, lost {lost}, \
         duplicated {duplicated}",
        delivered.len()
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert!(accepted > 0, "nothing was accepted");
}
