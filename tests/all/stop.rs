//! `postern stop` is graceful: the listeners close, an idle session gets
//! `421 4.3.2`, a transaction in progress completes with `250` and its
//! message is delivered. `postern abort` exits at once.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Client, POSTERN, Server, messages, wait_messages};

/// Runs `postern CMD --config` for the server's config in a thread.
fn command(server: &Server, cmd: &str) -> std::thread::JoinHandle<std::process::Output> {
    let config = server.dir.join("postern.toml");
    let cmd = cmd.to_owned();
    std::thread::spawn(move || {
        Command::new(POSTERN)
            .arg(&cmd)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    })
}

#[test]
fn stop_lets_a_transaction_in_data_finish() {
    let (server, _tmp) = Server::start("");
    let mut busy = Client::connect(server.smtp);
    assert!(busy.cmd("EHLO busy.example").starts_with("250"));
    assert!(busy.cmd("MAIL FROM:<bob@example.org>").starts_with("250"));
    assert!(busy.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(busy.cmd("DATA").starts_with("354"));
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n");
    let mut idle = Client::connect(server.smtp);
    assert!(idle.cmd("EHLO idle.example").starts_with("250"));

    let stop = command(&server, "stop");
    // The idle session is closed at once, the listener too.
    assert_eq!(idle.rest(), "421 4.3.2 Service shutting down\r\n");
    server.wait_log("SMTP sessions to finish");
    let start = Instant::now();
    while std::net::TcpStream::connect(server.smtp).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(5), "still accepting");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The transaction in DATA completes, then the session is closed.
    busy.send(b"second half\r\n.\r\n");
    let reply = busy.reply();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    assert_eq!(busy.rest(), "421 4.3.2 Service shutting down\r\n");

    let out = stop.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("the mail system is stopped"), "{stderr}");
    let log = server.log();
    assert!(
        log.contains("shutdown after EHLO from unknown[127.0.0.1]"),
        "{log}"
    );
    assert!(!server.dir.join("queue/pid/master.pid").exists());

    // Delivered before the exit, or by the next start.
    let new = server.new_dir("alice");
    if messages(&new).is_empty() {
        let dir = server.dir.clone();
        drop(server);
        let again = Server::start_in(&dir);
        let m = wait_messages(&new, 1);
        assert!(String::from_utf8_lossy(&m[0]).contains("first half\r\nsecond half\r\n"));
        drop(again);
    } else {
        let m = wait_messages(&new, 1);
        assert!(String::from_utf8_lossy(&m[0]).contains("first half\r\nsecond half\r\n"));
    }
}

#[test]
fn stop_does_not_wait_for_an_idle_server() {
    let (server, _tmp) = Server::start("");
    let start = Instant::now();
    let out = command(&server, "stop").join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    let out = command(&server, "stop").join().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn abort_exits_at_once() {
    let (server, _tmp) = Server::start("");
    let mut busy = Client::connect(server.smtp);
    assert!(busy.cmd("EHLO busy.example").starts_with("250"));
    assert!(busy.cmd("MAIL FROM:<bob@example.org>").starts_with("250"));
    let start = Instant::now();
    let out = command(&server, "abort").join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // No 421: the connection is simply gone.
    assert_eq!(busy.rest(), "");
    server.wait_log("abort: exiting at once");
}
