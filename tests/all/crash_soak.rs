//! Durability under fire: the server is killed with SIGKILL at random
//! moments while four clients send three thousand messages over concurrent
//! sessions and the queue delivers each to a local Maildir and, over
//! SMTP, to a relayhost (Python's aiosmtpd), and restarted each time. At the end every message
//! that got a 250 is in the Maildir and at the relayhost: a loss fails the
//! test. A duplicate (delivered, killed before the queue file said so,
//! delivered again) is allowed, as in any MTA, but counted and printed.
//!
//! The kill times come from a seed, printed, and taken from
//! `POSTERN_SOAK_SEED` when set, so a failure can be replayed.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::remote_smtp::Aiosmtpd;
use crate::support::*;

/// Messages to get acknowledged in all.
const MESSAGES: usize = 3000;
/// Client sessions sending at once, each message on one of them: the
/// load under which the server is killed (shared flushes in flight,
/// deliveries beside receptions).
const SENDERS: usize = 4;
/// Kills (rounds) before the last run, which is left alone to finish:
/// issue 8 asks for 20. Spread so that they fall while mail is still
/// coming in (the four sessions send some 250 messages a second here:
/// 20 rounds of 350 ms on average end before the three thousand).
const KILLS: usize = 20;
/// A kill falls 100 ms plus up to this many ms into its round.
const ROUND_MS: u64 = 500;

/// xorshift64*: enough randomness for kill times, and replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Reads one (possibly multi-line) reply; its first line.
fn reply(r: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if first.is_empty() {
            first = line.clone();
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(first);
        }
    }
}

fn cmd(w: &mut TcpStream, r: &mut BufReader<TcpStream>, line: &str) -> std::io::Result<String> {
    w.write_all(format!("{line}\r\n").as_bytes())?;
    reply(r)
}

/// Numbers of the messages sent so far: those that got a 250, and those
/// whose DATA went out but whose answer the kill cut off (sent again
/// later, so a copy of the first try may arrive too: the client's
/// duplicate, not the server's); and what is left to send.
#[derive(Default)]
struct Sent {
    /// The next number never tried.
    next: usize,
    /// Numbers tried and not acknowledged, to send again.
    retry: Vec<usize>,
    acked: Vec<usize>,
    unanswered: Vec<usize>,
}

impl Sent {
    /// A message number for a sender to send, if any is left.
    fn claim(&mut self) -> Option<usize> {
        self.retry.pop().or_else(|| {
            (self.next < MESSAGES).then(|| {
                self.next += 1;
                self.next - 1
            })
        })
    }
}

/// Sends message after message on one connection until `stop`, a
/// refusal or the connection breaks; a message it claimed and did not
/// get acknowledged goes back to be sent again.
fn send_until_broken(addr: SocketAddr, sent: &Mutex<Sent>, stop: &AtomicBool) {
    let mut claimed = None;
    let _ = send_claimed(addr, sent, stop, &mut claimed);
    if let Some(i) = claimed {
        sent.lock().unwrap().retry.push(i);
    }
}

/// The body of [`send_until_broken`]; `claimed` is the message in hand.
fn send_claimed(
    addr: SocketAddr,
    sent: &Mutex<Sent>,
    stop: &AtomicBool,
    claimed: &mut Option<usize>,
) -> std::io::Result<()> {
    let mut w = TcpStream::connect(addr)?;
    w.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut r = BufReader::new(w.try_clone()?);
    reply(&mut r)?;
    cmd(&mut w, &mut r, "EHLO soak.test.example")?;
    while !stop.load(Ordering::SeqCst) {
        let Some(i) = sent.lock().unwrap().claim() else {
            break;
        };
        *claimed = Some(i);
        if !cmd(&mut w, &mut r, "MAIL FROM:<s@soak.test.example>")?.starts_with("250") {
            return Ok(());
        }
        for rcpt in ["RCPT TO:<alice@example.org>", "RCPT TO:<far@far.test>"] {
            if !cmd(&mut w, &mut r, rcpt)?.starts_with("250") {
                return Ok(());
            }
        }
        if !cmd(&mut w, &mut r, "DATA")?.starts_with("354") {
            return Ok(());
        }
        let body = format!(
            "Subject: soak {i}\r\nMessage-ID: <soak-{i}@soak.test.example>\r\n\r\nbody {i}\r\n.\r\n"
        );
        let done = w.write_all(body.as_bytes()).and_then(|()| reply(&mut r));
        let mut s = sent.lock().unwrap();
        match done {
            Ok(done) if done.starts_with("250 ") => {
                s.acked.push(i);
                *claimed = None;
            }
            Ok(_) => return Ok(()),
            Err(e) => {
                s.unanswered.push(i);
                return Err(e);
            }
        }
    }
    let _ = cmd(&mut w, &mut r, "QUIT");
    Ok(())
}

/// The number in each `Message-ID: <soak-N@...>` of the files in `dir`
/// (a Maildir's `new/`, or aiosmtpd's output directory).
fn delivered(dir: &std::path::Path) -> Vec<usize> {
    messages(dir)
        .iter()
        .filter_map(|m| {
            let text = String::from_utf8_lossy(m);
            let rest = text.split("Message-ID: <soak-").nth(1)?;
            rest.split('@').next()?.parse().ok()
        })
        .collect()
}

/// Counts the copies of each message in `dir`, prints the duplicates,
/// and answers the acknowledged messages that are not there.
fn tally(place: &str, dir: &std::path::Path, acked: &[usize], unanswered: &[usize]) -> Vec<usize> {
    let got = delivered(dir);
    let mut counts = vec![0usize; MESSAGES];
    for &i in &got {
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    // (message number, copies) of each message delivered more than once.
    type Copies = Vec<(usize, usize)>;
    let (resent, duplicates): (Copies, Copies) = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 1)
        .map(|(i, c)| (i, *c))
        .partition(|(i, _)| unanswered.contains(i));
    eprintln!(
        "crash_soak: {place}: {} delivered; {} delivered twice by the server {duplicates:?}; \
         {} sent twice by the client after a lost answer {resent:?}",
        got.len(),
        duplicates.len(),
        resent.len(),
    );
    acked.iter().copied().filter(|&i| counts[i] == 0).collect()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    soak("");
}

/// The same with the local copy stored before each 250
/// (host/queue/src/at_once.rs) and only the remote one queued: a kill
/// between the two, or in the middle of either, loses nothing either.
#[test]
fn sigkill_with_immediate_local_delivery_loses_nothing_acknowledged() {
    soak("immediate_local_delivery = true\n");
}

/// Sends the three thousand messages through `KILLS` kills with `extra` in the
/// config, and checks that every acknowledged one arrived at both places.
fn soak(extra: &str) {
    let seed = std::env::var("POSTERN_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash_soak: seed {seed} (replay with POSTERN_SOAK_SEED={seed})");
    let mut rng = Rng(seed);
    let began = Instant::now();
    let relay = Aiosmtpd::start("ok", &[]);
    let (mut server, tmp) = Server::start(&format!(
        "relayhost = \"[127.0.0.1]:{}\"\n\
         minimal_backoff_time = \"1s\"\n\
         maximal_backoff_time = \"1s\"\n\
         queue_run_delay = \"1s\"\n\
         {extra}",
        relay.port
    ));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut kills = Vec::new();
    for round in 0..=KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let (addr, sent, stop) = (server.smtp, sent.clone(), stop.clone());
                // A broken connection is what a kill looks like here.
                std::thread::spawn(move || send_until_broken(addr, &sent, &stop))
            })
            .collect();
        if round == KILLS {
            for sender in senders {
                sender.join().unwrap();
            }
            break;
        }
        // Somewhere in the middle of sending, receiving or delivering.
        let after = Duration::from_millis(100 + rng.below(ROUND_MS));
        std::thread::sleep(after);
        kills.push((after.as_millis(), sent.lock().unwrap().acked.len()));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for sender in senders {
            sender.join().unwrap();
        }
        server = Server::start_in(tmp.path());
    }
    let (acked, unanswered) = {
        let s = sent.lock().unwrap();
        (s.acked.clone(), s.unanswered.clone())
    };
    eprintln!("crash_soak: kills (ms into the round, acknowledged so far): {kills:?}");
    assert_eq!(
        acked.len(),
        MESSAGES,
        "the last run did not send everything"
    );

    // Every acknowledged message arrives, however long the queue needs.
    let new = server.new_dir("alice");
    let start = Instant::now();
    loop {
        let (local, remote) = (delivered(&new), delivered(relay.dir.path()));
        let missing = acked
            .iter()
            .filter(|i| !local.contains(i) || !remote.contains(i))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "{missing} acknowledged messages never arrived (seed {seed}); log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the queue settle, then count.
    let queued = |name: &str| {
        std::fs::read_dir(tmp.path().join("queue").join(name)).map_or(0, |d| d.count())
    };
    while queued("active") + queued("incoming") + queued("deferred") > 0 {
        assert!(start.elapsed() < WAIT, "the queue never emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    // A kill stops the process, not the machine: the page cache keeps
    // every file a session wrote, so none can come back incomplete (only
    // a power cut between the write and the flush could leave one,
    // crash_flush.rs), and recovery quarantines nothing.
    assert_eq!(queued("corrupt"), 0, "files quarantined after kills");
    eprintln!(
        "crash_soak: {} acknowledged, all delivered in {:.1}s",
        acked.len(),
        began.elapsed().as_secs_f64()
    );
    let lost_here = tally("maildir", &new, &acked, &unanswered);
    let lost_there = tally("relayhost", relay.dir.path(), &acked, &unanswered);
    assert!(
        lost_here.is_empty() && lost_there.is_empty(),
        "lost {lost_here:?} locally and {lost_there:?} remotely (seed {seed})"
    );
}
