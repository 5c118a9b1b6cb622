//! Concurrency per destination end to end, as Postfix's qmgr schedules
//! it: a slow relayhost (aiosmtpd taking 0.4 s per DATA) sees at most
//! `initial_destination_concurrency` deliveries at first and more as they
//! succeed, up to the destination's limit; a relayhost that never answers
//! is declared dead after a failed cohort, and the deliveries waiting for
//! it are deferred at once as "delivery temporarily suspended".

use std::net::TcpListener;

use crate::remote_smtp::{Aiosmtpd, sender};
use crate::support::*;

/// Queues `n` messages to a remote recipient through one SMTP session.
fn queue_many(server: &Server, n: usize) -> Vec<String> {
    let mut c = Client::connect(server.smtp);
    let ids = (0..n)
        .map(|i| {
            let r = send_message(
                &mut c,
                "someone@sender.test",
                &["far@far.test"],
                &format!("Subject: load {i}\r\n\r\nbody {i}\r\n"),
            );
            queued_id(&r)
        })
        .collect();
    c.cmd("QUIT");
    ids
}

/// A sending Postern with `n` messages for far@far.test in its queue,
/// all delivered at once to `sink`: queued while the relayhost refused
/// (deferred for an hour), then the server restarted with the sink as
/// relayhost and flushed. Sending them one after another would measure
/// how fast the SMTP server queues, not the scheduler.
fn flushed_to(sink: &Aiosmtpd, extra: &str, n: usize) -> (Server, tempfile::TempDir) {
    let (server, tmp) = sender(
        None,
        &format!(
            "relayhost = \"[127.0.0.1]:1\"\n\
             minimal_backoff_time = \"3600s\"\n\
             maximal_backoff_time = \"3600s\"\n\
             {extra}"
        ),
        "",
    );
    queue_many(&server, n);
    server.wait_log_count("status=deferred", n);
    server.kill();
    let config = tmp.path().join("postern.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "\"[127.0.0.1]:1\"",
        &format!("\"[127.0.0.1]:{}\"", sink.port),
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start_in(tmp.path());
    flush(tmp.path());
    (server, tmp)
}

/// How many DATAs the slow sink had in progress as each one began, and
/// how many began before the first one ended (the first cohort).
fn concurrency(sink: &Aiosmtpd) -> (Vec<u32>, usize) {
    let log = std::fs::read_to_string(sink.dir.path().join("concurrency.log")).unwrap();
    let seen = log
        .lines()
        .filter_map(|l| l.strip_prefix('+'))
        .map(|n| n.parse().unwrap())
        .collect();
    let first = log.lines().take_while(|l| l.starts_with('+')).count();
    (seen, first)
}

#[test]
fn slow_start_begins_at_five_and_grows_to_the_limit() {
    let sink = Aiosmtpd::start("slow", &[]);
    let (_server, _tmp) = flushed_to(&sink, "", 60);
    sink.wait(60);
    let (seen, first) = concurrency(&sink);
    eprintln!("remote_concurrency: DATAs in progress as each began: {seen:?}");
    assert_eq!(seen.len(), 60);
    // The first cohort: the initial window of 5. The sixth delivery
    // starts only when one of them is done.
    assert!(
        (2..=5).contains(&first),
        "{first} before the first ended: {seen:?}"
    );
    let peak = seen.iter().copied().max().unwrap_or(0);
    // Each success widens the window by one; the queue delivers at most
    // 20 messages at once, and 20 is the destination's limit.
    assert!((10..=20).contains(&peak), "peak {peak}: {seen:?}");
}

#[test]
fn initial_concurrency_and_the_smtp_limit_are_honoured() {
    let sink = Aiosmtpd::start("slow", &[]);
    let (_server, _tmp) = flushed_to(
        &sink,
        "initial_destination_concurrency = 3\n\
         smtp_initial_destination_concurrency = 2\n\
         smtp_destination_concurrency_limit = 4\n\
         default_destination_concurrency_positive_feedback = \"1/concurrency\"\n",
        24,
    );
    sink.wait(24);
    let (seen, first) = concurrency(&sink);
    eprintln!("remote_concurrency: DATAs in progress as each began: {seen:?}");
    assert!(
        (1..=2).contains(&first),
        "{first} before the first ended: {seen:?}"
    );
    let peak = seen.iter().copied().max().unwrap_or(0);
    assert!((3..=4).contains(&peak), "peak {peak}: {seen:?}");
}

#[test]
fn bad_concurrency_settings_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (line, word) in [
        (
            "default_destination_concurrency_positive_feedback = \"2\"",
            "default_destination_concurrency_positive_feedback",
        ),
        (
            "default_destination_concurrency_negative_feedback = \"1/zero\"",
            "default_destination_concurrency_negative_feedback",
        ),
        (
            "initial_destination_concurrency = \"five\"",
            "initial_destination_concurrency",
        ),
        (
            "smtp_destination_concurrency_negative_feedback = \"1/0\"",
            "smtp_destination_concurrency_negative_feedback",
        ),
    ] {
        check_refuses(tmp.path(), line, word);
    }
}

#[test]
fn a_dead_relayhost_suspends_the_deliveries_waiting_for_it() {
    // A server that takes connections (the kernel's backlog does) and
    // never greets: each delivery waits smtp_helo_timeout, then fails its
    // handshake. The first five run at once; their failures make a
    // failed cohort (1/5 + 1/4 + 1/3 + 1/2 > 1), so the destination is
    // dead and the three that waited for a slot are deferred without a
    // connection, as are the deliveries after them, until
    // minimal_backoff_time has passed.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (server, _tmp) = sender(
        None,
        &format!(
            "relayhost = \"[127.0.0.1]:{port}\"\n\
             smtp_helo_timeout = \"3s\"\n\
             minimal_backoff_time = \"60s\"\n\
             maximal_backoff_time = \"60s\"\n"
        ),
        "",
    );
    let ids = queue_many(&server, 8);
    let log = server.wait_log_count("status=deferred", 8);
    let line = |id: &str| {
        log.lines()
            .find(|l| l.contains(&format!("{id}: to=<far@far.test>")))
            .unwrap_or_default()
            .to_owned()
    };
    let suspended: Vec<&String> = ids
        .iter()
        .filter(|id| line(id).contains("status=deferred (delivery temporarily suspended: "))
        .collect();
    assert_eq!(suspended.len(), 3, "{log}");
    for id in &ids {
        assert!(line(id).contains("relay=none"), "{log}");
    }
    // A later message is suspended at once, without waiting for a
    // timeout.
    let started = std::time::Instant::now();
    let late = queue_many(&server, 1);
    server.wait_log(&format!("{}: to=<far@far.test>, relay=none", late[0]));
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&late[0]) && l.contains("delivery temporarily suspended")),
        "{log}"
    );
    drop(silent);
}
