//! The Prometheus endpoint's operations side (issue 10): the log lines
//! syslog could not take are counted in `postern_log_lines_dropped_total`,
//! scraped from a server whose syslog socket is bound and never read, and
//! the count is the one the server's own `log lines dropped` warnings
//! give once syslog reads again; the endpoint's port is bound with the
//! other listeners, so one in use stops start-up naming `[metrics]
//! listen`. tests/all/operations.rs checks the mail counters,
//! tests/all/privileges_ops.rs a port below 1024 after a root start.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::syslog::syslogging;

/// `GET path` on `addr`: the status line and the body.
pub(crate) fn scrape(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name` (no labels) in a scrape.
pub(crate) fn sample(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of the counts in `postern/postlogd` warnings among `lines`.
fn warned(lines: &[String]) -> f64 {
    lines
        .iter()
        .filter_map(|l| {
            let before = l.split(" log lines dropped").next()?;
            (before.len() < l.len()).then_some(())?;
            before.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

#[test]
fn syslog_drops_are_a_metric_that_matches_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Bound and never read (until the end): its queue fills, sends wait
    // and lines are dropped.
    let log = UnixDatagram::bind(dir.join("log")).unwrap();
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let (_server, smtp) = syslogging(dir, &format!("[metrics]\nlisten = \"{metrics}\"\n"));
    wait_listening(metrics);
    let (status, body) = scrape(metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains("# TYPE postern_log_lines_dropped_total counter"),
        "{body}"
    );

    // Two lines a session, well past the socket's queue: lines are
    // dropped, and the endpoint says so while syslog is still stuck.
    let start = Instant::now();
    let dropped = loop {
        for _ in 0..50 {
            let mut c = Client::connect(smtp);
            assert!(c.cmd("QUIT").starts_with("221"));
        }
        let (_, body) = scrape(metrics, "/metrics");
        let dropped = sample(&body, "postern_log_lines_dropped_total").unwrap();
        if dropped > 0.0 {
            break dropped;
        }
        assert!(start.elapsed() < WAIT, "nothing dropped:\n{body}");
    };
    println!("{dropped} lines dropped after {:?}", start.elapsed());

    // Syslog reads again: the server's warnings count the same lines.
    log.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    loop {
        // A line to send: the warning rides behind the first line that
        // gets through.
        Client::connect(smtp).cmd("QUIT");
        while let Ok(n) = log.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let (_, body) = scrape(metrics, "/metrics");
        let now = sample(&body, "postern_log_lines_dropped_total").unwrap();
        assert!(now >= dropped, "the counter went down: {now} < {dropped}");
        if warned(&lines) == now {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the log warned of {} dropped lines, the metric says {now}",
            warned(&lines)
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("postern/postlogd[") && l.contains("log lines dropped")),
        "{lines:?}"
    );
}

#[test]
fn a_metrics_port_in_use_stops_start_up_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = test_config(dir, &format!("[metrics]\nlisten = \"{addr}\"\n"));
    let mut server = Process::start(dir);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < WAIT, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = server.stderr();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{}: [metrics] listen: cannot listen on {addr}",
            config.display()
        )),
        "{err}"
    );
    // Before anything served: no `daemon started`, no pid file.
    assert!(!err.contains("daemon started"), "{err}");
    assert!(!dir.join("queue/pid/master.pid").exists());
    drop(taken);
}
