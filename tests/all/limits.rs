//! smtpd's limits end to end: each one hit, answered with Postfix's code,
//! and the server still serving afterwards. 127.0.0.2 is outside the test
//! `mynetworks`, hence outside `smtpd_client_event_limit_exceptions` too;
//! 127.0.0.1 is exempt.

use std::time::{Duration, Instant};

use crate::support::{Client, Server, send_message, wait_messages};

const OUTSIDE: &str = "127.0.0.2";

/// A session still works: EHLO, NOOP, QUIT.
fn still_serving(server: &Server) {
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO ok.example").starts_with("250"));
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221"));
}

#[test]
fn connection_count_limit_per_client() {
    let (server, _tmp) = Server::start("smtpd_client_connection_count_limit = 2");
    let a = Client::connect_from(server.smtp, OUTSIDE);
    let b = Client::connect_from(server.smtp, OUTSIDE);
    let mut c = Client::connect_raw(server.smtp, OUTSIDE);
    assert_eq!(
        c.rest(),
        "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.2\r\n"
    );
    server.wait_log(
        "warning: Connection concurrency limit exceeded: 3 from unknown[127.0.0.2] for service smtp",
    );
    // The exempt address is not counted.
    let _d = Client::connect(server.smtp);
    let _e = Client::connect(server.smtp);
    let _f = Client::connect(server.smtp);
    // One closes: room again.
    drop(a);
    server.wait_log_count("disconnect from unknown[127.0.0.2]", 2);
    let mut g = Client::connect_from(server.smtp, OUTSIDE);
    assert!(g.cmd("NOOP").starts_with("250"));
    drop(b);
    still_serving(&server);
}

#[test]
fn connection_rate_limit_per_client() {
    let (server, _tmp) = Server::start("smtpd_client_connection_rate_limit = 3");
    for _ in 0..3 {
        let mut c = Client::connect_from(server.smtp, OUTSIDE);
        assert!(c.cmd("QUIT").starts_with("221"));
    }
    let mut c = Client::connect_raw(server.smtp, OUTSIDE);
    assert_eq!(
        c.rest(),
        "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.2\r\n"
    );
    server.wait_log("warning: Connection rate limit exceeded: 4 from unknown[127.0.0.2]");
    still_serving(&server);
}

#[test]
fn message_rate_limit_per_client() {
    let (server, _tmp) = Server::start("smtpd_client_message_rate_limit = 2");
    let mut c = Client::connect_from(server.smtp, OUTSIDE);
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    for _ in 0..2 {
        assert!(c.cmd("MAIL FROM:<a@client.example>").starts_with("250"));
        assert!(c.cmd("RSET").starts_with("250"));
    }
    assert_eq!(
        c.cmd("MAIL FROM:<a@client.example>"),
        "450 4.7.1 Error: too much mail from 127.0.0.2\r\n"
    );
    // The session goes on; the exempt address is not limited.
    assert!(c.cmd("NOOP").starts_with("250"));
    server.wait_log(
        "warning: Message delivery request rate limit exceeded: 3 from unknown[127.0.0.2] for service smtp",
    );
    let mut d = Client::connect(server.smtp);
    assert!(d.cmd("EHLO client.example").starts_with("250"));
    for _ in 0..4 {
        assert!(d.cmd("MAIL FROM:<a@client.example>").starts_with("250"));
        assert!(d.cmd("RSET").starts_with("250"));
    }
}

#[test]
fn recipient_limit_is_452_and_the_message_goes_through() {
    let (server, _tmp) = Server::start("smtpd_recipient_limit = 2");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@client.example>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<bob@example.org>").starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<postmaster@example.org>"),
        "452 4.5.3 Error: too many recipients\r\n"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: two\r\n\r\nhi\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as"));
    wait_messages(&server.new_dir("alice"), 1);
    wait_messages(&server.new_dir("bob"), 1);
}

#[test]
fn idle_client_times_out_with_421() {
    let (server, _tmp) = Server::start("smtpd_timeout = \"1s\"");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    let start = Instant::now();
    assert_eq!(
        c.rest(),
        "421 4.4.2 mx.test.example Error: timeout exceeded\r\n"
    );
    assert!(start.elapsed() >= Duration::from_millis(900));
    server.wait_log("timeout after EHLO from unknown[127.0.0.1]");
    still_serving(&server);
}

#[test]
fn soft_errors_slow_down_then_hard_errors_disconnect() {
    let (server, _tmp) = Server::start(
        "smtpd_soft_error_limit = 2\nsmtpd_error_sleep_time = \"1s\"\nsmtpd_hard_error_limit = 4",
    );
    let mut c = Client::connect(server.smtp);
    for _ in 0..2 {
        let start = Instant::now();
        assert!(c.cmd("BOGUS").starts_with("500 5.5.2"));
        assert!(start.elapsed() < Duration::from_millis(900));
    }
    // Two errors made: every reply now waits a second, good ones too.
    let start = Instant::now();
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(start.elapsed() >= Duration::from_millis(950));
    let start = Instant::now();
    assert!(c.cmd("BOGUS").starts_with("500"));
    assert!(c.cmd("BOGUS").starts_with("500"));
    assert!(start.elapsed() >= Duration::from_millis(1900));
    // The fourth error reached the hard limit.
    assert_eq!(
        c.rest(),
        "421 4.7.0 mx.test.example Error: too many errors\r\n"
    );
    server.wait_log("too many errors after UNKNOWN from unknown[127.0.0.1]");
    still_serving(&server);
}

#[test]
fn header_size_limit_truncates_a_long_header() {
    let (server, _tmp) = Server::start("header_size_limit = 200");
    let mut c = Client::connect(server.smtp);
    let mut long = String::from("X-Long: start\r\n");
    for i in 0..40 {
        long.push_str(&format!(" continuation line {i:02}\r\n"));
    }
    let body = format!("Subject: long header\r\n{long}To: alice@example.org\r\n\r\nbody\r\n");
    let r = send_message(&mut c, "bob@example.org", &["alice@example.org"], &body);
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    let m = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&m[0]);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(rest, "body\r\n");
    let x_long: String = head
        .split_inclusive("\r\n")
        .skip_while(|l| !l.starts_with("X-Long:"))
        .take_while(|l| l.starts_with("X-Long:") || l.starts_with(' '))
        .collect();
    assert!(x_long.len() <= 200, "{x_long}");
    assert!(x_long.starts_with("X-Long: start\r\n continuation line 00\r\n"));
    assert!(head.contains("\r\nTo: alice@example.org"), "{head}");
    assert!(head.contains("Subject: long header"));
    server.wait_log(
        "header X-Long from unknown[127.0.0.1] exceeds header_size_limit (200 bytes): truncated",
    );
}

#[test]
fn message_size_and_line_length_limits() {
    let (server, _tmp) = Server::start("line_length_limit = 600");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.example").contains("250-SIZE 100000"));
    assert_eq!(
        c.cmd("MAIL FROM:<bob@example.org> SIZE=100001"),
        "552 5.3.4 Message size exceeds fixed limit\r\n"
    );
    // A command line over line_length_limit: refused, never buffered whole.
    let long = format!("NOOP {}", "x".repeat(5_000_000));
    assert_eq!(c.cmd(&long), "500 5.5.2 Error: line too long\r\n");
    assert!(
        c.cmd(&format!("NOOP {}", "y".repeat(500)))
            .starts_with("250")
    );
    // Content over message_size_limit: read to the end, then refused.
    assert!(c.cmd("MAIL FROM:<bob@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let line = format!("{}\r\n", "z".repeat(998));
    for _ in 0..120 {
        c.send(line.as_bytes());
    }
    c.send(b".\r\n");
    assert_eq!(c.reply(), "552 5.3.4 Error: message file too big\r\n");
    assert!(c.cmd("NOOP").starts_with("250"));
    still_serving(&server);
}

#[test]
fn process_limit_holds_new_clients_in_the_backlog() {
    let (server, _tmp) = Server::start("default_process_limit = 2");
    let mut a = Client::connect(server.smtp);
    let _b = Client::connect(server.smtp);
    // The third is accepted by the kernel but not served yet.
    let mut c = Client::connect_raw(server.smtp, "127.0.0.1");
    c.set_timeout(Duration::from_millis(500));
    assert_eq!(c.reply(), "");
    assert!(a.cmd("QUIT").starts_with("221"));
    c.set_timeout(crate::support::WAIT);
    assert!(c.reply().starts_with("220 "), "served once a slot is free");
    assert!(c.cmd("NOOP").starts_with("250"));
}
