//! Bounded memory of the queue manager end to end: with
//! `qmgr_message_active_limit = 50` and 300 messages for a destination
//! that is down, the scheduler never holds more than 50 messages in
//! memory (it logs what it holds each time it reads a batch in or fills
//! up), new mail keeps being accepted meanwhile, and every message is
//! delivered, once, when the destination comes up.

use std::time::Duration;

use crate::queue_fairness::{Sink, queue_many};
use crate::remote_smtp::{sender, table};
use crate::support::*;

/// The message counts of the scheduler's "active queue: N messages
/// (limit L), ..." lines.
fn in_memory(log: &str) -> Vec<usize> {
    log.lines()
        .filter_map(|l| l.split("active queue: ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn the_active_limit_bounds_the_messages_in_memory() {
    let port = free_port();
    let tables = tempfile::tempdir().unwrap();
    let transport = table(
        tables.path(),
        "transport",
        &format!("down.test smtp:[127.0.0.1]:{port}\n"),
    );
    // Short backoffs: while the destination is down the messages go
    // round, deferred and read in again, many times.
    let (server, tmp) = sender(
        None,
        &format!(
            "transport_maps = \"{transport}\"\n\
             qmgr_message_active_limit = 50\n\
             minimal_backoff_time = \"1s\"\n\
             maximal_backoff_time = \"2s\"\n\
             queue_run_delay = \"1s\"\n"
        ),
        "",
    );
    queue_many(&server, "far@down.test", 300);
    server.wait_log_count("status=deferred", 300);
    // More new mail is accepted while the memory is full.
    queue_many(&server, "late@down.test", 20);
    let sink = Sink::start(0.0, port);
    flush(tmp.path());
    sink.wait_saved(320, Duration::from_secs(90));
    // No second copies afterwards.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.stats().2, 320);
    let log = server.log();
    let counts = in_memory(&log);
    let max = counts.iter().copied().max().unwrap_or(0);
    eprintln!(
        "queue_memory: {} reports, at most {max} messages in memory (limit 50)",
        counts.len()
    );
    assert!(max <= 50, "{counts:?}");
    assert_eq!(max, 50, "the limit was reached: {counts:?}");
    assert!(log.contains("(limit 50)"), "{log}");
    for q in ["active", "deferred", "incoming"] {
        let dir = tmp.path().join("queue").join(q);
        let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "{q}/ not empty");
    }
}

#[test]
fn bad_memory_limits_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for line in [
        "qmgr_message_active_limit = \"many\"",
        "qmgr_message_recipient_limit = -1",
    ] {
        let name = line.split(' ').next().unwrap();
        check_refuses(tmp.path(), line, name);
    }
    let out = std::process::Command::new(POSTERN)
        .args([
            "config",
            "-d",
            "qmgr_message_active_limit",
            "qmgr_message_recipient_limit",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("qmgr_message_active_limit = 20000"), "{text}");
    assert!(
        text.contains("qmgr_message_recipient_limit = 20000"),
        "{text}"
    );
}
