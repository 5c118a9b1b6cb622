//! Fault injection at the remote destination: a sending Postern relays
//! to a loopback SMTP server of the test's own ([`Dest`]) that is down
//! (connection refused), slow (greets after the sender's
//! `smtp_helo_timeout`, or answers DATA after its
//! `smtp_data_init_timeout`), drops the connection in the middle of DATA,
//! or answers 421 in the middle of the session. Each message is deferred for
//! the fault's reason and retried; once the destination behaves, each is
//! delivered exactly once, counted at the destination by Message-ID.
//! Each test prints what was lost (nothing), the deferrals, and how long
//! the recovery took.
//!
//! [`Dest`] only counts a message it answered 250 after the final dot,
//! as a real MTA would: a drop mid-DATA leaves no copy behind, so a copy
//! counted twice is the sender's duplicate.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::remote_smtp::{FAST_RETRY, sender, submit};
use crate::support::*;

/// How long a slow destination waits before its greeting, or before its
/// answer to DATA: longer than the `smtp_helo_timeout` (1 s) and
/// `smtp_data_init_timeout` (2 s) of [`TIMEOUTS`].
const SLOW_REPLY: Duration = Duration::from_secs(3);

/// Small `smtp_*_timeout`s, so that a slow destination costs a second
/// per attempt rather than Postfix's five minutes.
const TIMEOUTS: &str = "smtp_connect_timeout = \"1s\"\n\
                        smtp_helo_timeout = \"1s\"\n\
                        smtp_mail_timeout = \"2s\"\n\
                        smtp_rcpt_timeout = \"2s\"\n\
                        smtp_data_init_timeout = \"2s\"\n\
                        smtp_data_xfer_timeout = \"2s\"\n\
                        smtp_data_done_timeout = \"2s\"\n";

/// Messages per test.
const MESSAGES: usize = 3;

/// How the destination behaves, decided when a connection is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not listening: connection refused.
    Down,
    /// Greets after [`SLOW_REPLY`].
    Slow,
    /// Greets and answers MAIL and RCPT at once, then answers DATA after
    /// [`SLOW_REPLY`]: slow in the middle of the transaction.
    SlowData,
    /// Closes the connection after reading part of the message body.
    DropMidData,
    /// Answers RCPT TO with 421 and closes (RFC 5321 §3.8).
    Close421,
    /// A correct SMTP server.
    Ok,
}

/// What the destination's connections share.
struct State {
    mode: Mutex<Mode>,
    /// The messages answered with 250, as received.
    received: Mutex<Vec<String>>,
    /// Connections accepted.
    connections: AtomicUsize,
    /// Set when the [`Dest`] is dropped: the accept loop ends.
    closed: AtomicBool,
}

/// A loopback SMTP destination with a switchable [`Mode`], on a port that
/// stays the same across modes (re-bound when it comes up after `Down`).
pub struct Dest {
    pub port: u16,
    state: Arc<State>,
}

impl Dest {
    /// Starts one on an ephemeral 127.0.0.1 port, behaving as `mode`.
    pub fn start(mode: Mode) -> Dest {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dest = Dest {
            port,
            state: Arc::new(State {
                mode: Mutex::new(mode),
                received: Mutex::new(Vec::new()),
                connections: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
            }),
        };
        if mode == Mode::Down {
            // The port is free again: connecting to it is refused.
            drop(listener);
        } else {
            dest.accept(listener);
        }
        dest
    }

    /// Switches the mode of the connections to come; from `Down`, binds
    /// the same port again (std sets SO_REUSEADDR).
    pub fn set_mode(&self, mode: Mode) {
        let was = std::mem::replace(&mut *self.state.mode.lock().unwrap(), mode);
        if was == Mode::Down && mode != Mode::Down {
            self.accept(TcpListener::bind(("127.0.0.1", self.port)).unwrap());
        }
    }

    /// The messages accepted so far.
    pub fn received(&self) -> Vec<String> {
        self.state.received.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Waits until `n` messages are accepted; returns them.
    pub fn wait(&self, n: usize) -> Vec<String> {
        let start = Instant::now();
        while self.received().len() < n {
            assert!(
                start.elapsed() < WAIT,
                "the destination got {} of {n} messages",
                self.received().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.received()
    }

    fn accept(&self, listener: TcpListener) {
        let state = self.state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if state.closed.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                state.connections.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
    }
}

impl Drop for Dest {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        // Wakes the accept loop (refused when it is down: nothing to wake).
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One SMTP session in the mode of the moment it was accepted. No
/// PIPELINING is offered: the client waits for each reply.
fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mode = *state.mode.lock().unwrap();
    stream.set_read_timeout(Some(WAIT))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    if mode == Mode::Slow {
        std::thread::sleep(SLOW_REPLY);
    }
    w.write_all(b"220 dest.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-dest.test\r\n250 8BITMIME\r\n",
            "HELO" => b"250 dest.test\r\n",
            "MAIL" => b"250 2.1.0 Ok\r\n",
            "RCPT" if mode == Mode::Close421 => {
                w.write_all(b"421 4.3.2 dest.test Service shutting down\r\n")?;
                return Ok(());
            }
            "RCPT" => b"250 2.1.5 Ok\r\n",
            "DATA" => {
                if mode == Mode::SlowData {
                    std::thread::sleep(SLOW_REPLY);
                }
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut message = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    message.push_str(&line);
                    // Past the header and into the body: hang up.
                    if mode == Mode::DropMidData && message.contains("\r\n\r\nline 1\r\n") {
                        return Ok(());
                    }
                }
                state.received.lock().unwrap().push(message);
                b"250 2.0.0 Ok: queued\r\n"
            }
            "RSET" | "NOOP" => b"250 2.0.0 Ok\r\n",
            "QUIT" => {
                w.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => b"502 5.5.2 Error: command not recognized\r\n",
        };
        w.write_all(reply)?;
    }
}

/// A message of a few body lines, numbered by its Message-ID.
pub fn numbered(tag: &str, i: usize) -> String {
    let mut body = format!("Subject: {tag} {i}\r\nMessage-ID: <{tag}-{i}@fault.test>\r\n\r\n");
    for n in 1..=20 {
        body.push_str(&format!("line {n}\r\n"));
    }
    body
}

/// How many copies of each `<tag-N@fault.test>` the messages hold, for N
/// below `n`.
pub fn copies(received: &[String], tag: &str, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| {
            let id = format!("Message-ID: <{tag}-{i}@fault.test>");
            received.iter().filter(|m| m.contains(&id)).count()
        })
        .collect()
}

/// The log lines about queue id `id` that say `what`.
pub fn lines_with<'a>(log: &'a str, id: &str, what: &str) -> Vec<&'a str> {
    let head = format!("{id}: ");
    log.lines()
        .filter(|l| l.contains(&head) && l.contains(what))
        .collect()
}

/// Waits until the log says `what` about `id` at least `n` times.
pub fn wait_lines(server: &Server, id: &str, what: &str, n: usize) -> String {
    let start = Instant::now();
    loop {
        let log = server.log();
        if lines_with(&log, id, what).len() >= n {
            return log;
        }
        assert!(
            start.elapsed() < WAIT,
            "{id} was never {what} {n} times:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Files left in the queue (incoming, active, deferred).
pub fn queued(queue: &std::path::Path) -> usize {
    ["incoming", "active", "deferred"]
        .iter()
        .map(|d| std::fs::read_dir(queue.join(d)).map_or(0, |e| e.count()))
        .sum()
}

/// Sends [`MESSAGES`] through a sender relaying to a destination in
/// `fault`; checks that each is deferred with `reason` and retried while
/// the fault lasts, then that each arrives exactly once when the
/// destination behaves; prints the tally.
fn fault_then_recovery(name: &str, fault: Mode, reason: &str) {
    let dest = Dest::start(fault);
    let (server, tmp) = sender(
        None,
        &format!(
            "relayhost = \"[127.0.0.1]:{}\"\n{FAST_RETRY}{TIMEOUTS}",
            dest.port
        ),
        "",
    );
    let began = Instant::now();
    let ids: Vec<String> = (0..MESSAGES)
        .map(|i| {
            submit(
                &server,
                "postmaster@sender.test",
                &[format!("r{i}@far.test").as_str()],
                &numbered(name, i),
            )
        })
        .collect();
    // Deferred for the fault's reason, then retried at least once more
    // while the fault lasts (a retry may find the destination
    // "temporarily suspended" by an earlier failure: still a deferral).
    for id in &ids {
        wait_lines(&server, id, "status=deferred", 2);
    }
    let log = server.log();
    let first = ids
        .iter()
        .filter_map(|id| lines_with(&log, id, "status=deferred").first().copied())
        .collect::<Vec<_>>();
    assert!(
        first.iter().any(|l| l.contains(reason)),
        "{name}: no deferral says {reason:?}:\n{log}"
    );
    assert!(
        first.iter().all(|l| l.contains("dsn=4.")),
        "{name}: a deferral without a 4.x.x status:\n{log}"
    );
    let deferrals: usize = ids
        .iter()
        .map(|id| lines_with(&log, id, "status=deferred").len())
        .sum();
    assert!(dest.received().is_empty(), "{name}: accepted while faulty");
    let faulty_connections = dest.connections();
    let fault_lasted = began.elapsed();

    dest.set_mode(Mode::Ok);
    let recovered = Instant::now();
    dest.wait(MESSAGES);
    for id in &ids {
        wait_lines(&server, id, "removed", 1);
    }
    let start = Instant::now();
    while queued(&tmp.path().join("queue")) > 0 {
        assert!(start.elapsed() < WAIT, "{name}: the queue never emptied");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A moment more, for a duplicate to show.
    std::thread::sleep(Duration::from_millis(500));
    let log = server.log();
    let counts = copies(&dest.received(), name, MESSAGES);
    let lost = counts.iter().filter(|&&c| c == 0).count();
    let duplicated = counts.iter().filter(|&&c| c > 1).count();
    eprintln!(
        "fault_remote: {name}: {MESSAGES} messages; {deferrals} deferrals and \
         {faulty_connections} connections in {:.1}s of fault (first: {:?}); after recovery \
         all delivered in {:.1}s; copies per message {counts:?}: lost {lost}, duplicated \
         {duplicated}",
        fault_lasted.as_secs_f64(),
        first.first().and_then(|l| l.split("status=").nth(1)),
        recovered.elapsed().as_secs_f64(),
    );
    assert_eq!(counts, vec![1; MESSAGES], "{name}: lost or duplicated");
    assert!(!log.contains("status=bounced"), "{name}: bounced:\n{log}");
    for id in &ids {
        assert_eq!(lines_with(&log, id, "status=sent").len(), 1, "{log}");
    }
}

#[test]
fn a_destination_that_is_down_gets_its_mail_when_it_comes_up() {
    fault_then_recovery("down", Mode::Down, "Connection refused");
}

#[test]
fn a_destination_slower_than_the_helo_timeout_is_retried() {
    fault_then_recovery(
        "slow",
        Mode::Slow,
        "timed out while receiving the initial server greeting",
    );
}

#[test]
fn a_destination_slower_than_the_data_timeout_is_retried() {
    fault_then_recovery(
        "slow-data",
        Mode::SlowData,
        "timed out while sending DATA command",
    );
}

#[test]
fn a_connection_dropped_mid_data_delivers_exactly_once() {
    fault_then_recovery(
        "dropped",
        Mode::DropMidData,
        "while sending end of data -- message may be sent more than once",
    );
}

#[test]
fn a_421_mid_session_is_deferred_and_retried() {
    fault_then_recovery(
        "421",
        Mode::Close421,
        "said: 421 4.3.2 dest.test Service shutting down",
    );
}
