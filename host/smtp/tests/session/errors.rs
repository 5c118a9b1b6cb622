//! Clients that get it wrong, on purpose or not: every one gets a protocol
//! reply or a close, and the session stays bounded.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::harness::{Lcg, Server, codes, relay_rule, settings};

#[tokio::test]
async fn size_parameter_over_the_limit() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    assert_eq!(
        c.cmd("MAIL FROM:<s@origin.test> SIZE=10240001").await,
        "552 5.3.4 Message size exceeds fixed limit\r\n"
    );
    assert_eq!(
        codes(&c.cmd("MAIL FROM:<s@origin.test> SIZE=10240000").await),
        ["250"]
    );
    c.cmd("QUIT").await;
    let done = server.done().await;
    done.logged(
        "NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 552 5.3.4 Message size exceeds fixed \
         limit; from=<s@origin.test> proto=ESMTP helo=<client.test>",
    );
}

#[tokio::test]
async fn content_over_the_limit() {
    let mut s = settings();
    s.message_size_limit = 100;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    assert!(c.cmd("EHLO client.test").await.contains("250-SIZE 100\r\n"));
    c.cmd("MAIL FROM:<s@origin.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("x".repeat(5000)).await;
    c.send("\r\n.\r\n").await;
    assert_eq!(c.reply().await, "552 5.3.4 Error: message file too big\r\n");
    // The transaction is over; the next one works.
    c.cmd("MAIL FROM:<s@origin.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("small\r\n.\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 Ok: queued as ABC00002\r\n");
    c.cmd("QUIT").await;
    let done = server.done().await;
    assert_eq!(done.message().id.as_str(), "ABC00002");
    done.logged(
        "disconnect from unknown[127.0.0.1] ehlo=1 mail=2 rcpt=2 data=1/2 quit=1 commands=7/8",
    );
}

#[tokio::test]
async fn overlong_command_line() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.send(format!("NOOP {}\r\nNOOP\r\n", "x".repeat(50_000)))
        .await;
    assert_eq!(c.reply().await, "500 5.5.2 Error: line too long\r\n");
    assert_eq!(c.reply().await, "250 2.0.0 Ok\r\n");
    assert_eq!(codes(&c.cmd("QUIT").await), ["221"]);
}

#[tokio::test]
async fn commands_out_of_order() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    assert_eq!(
        c.cmd("RCPT TO:<alice@local.test>").await,
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(
        c.cmd("DATA").await,
        "503 5.5.1 Error: need RCPT command\r\n"
    );
    assert_eq!(codes(&c.cmd("MAIL FROM:<s@origin.test>").await), ["250"]);
    assert_eq!(
        c.cmd("MAIL FROM:<s@origin.test>").await,
        "503 5.5.1 Error: nested MAIL command\r\n"
    );
    assert_eq!(codes(&c.cmd("RCPT TO:<u@example.com>").await), ["554"]);
    assert_eq!(
        c.cmd("DATA").await,
        "554 5.5.1 Error: no valid recipients\r\n"
    );
    assert_eq!(c.cmd("DATA now").await, "501 5.5.4 Syntax: DATA\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<a b>").await,
        "501 5.1.7 Bad sender address syntax\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<x>").await,
        "501 5.1.3 Bad recipient address syntax\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<a@b.test> FOO=1").await,
        "555 5.5.4 Unsupported option: FOO=1\r\n"
    );
    assert_eq!(codes(&c.cmd("RSET").await), ["250"]);
    assert_eq!(codes(&c.cmd("QUIT").await), ["221"]);
    let done = server.done().await;
    done.logged(
        "disconnect from unknown[127.0.0.1] ehlo=1 mail=1/3 rcpt=0/4 data=0/3 rset=1 quit=1 \
         commands=4/13",
    );
}

#[tokio::test]
async fn garbage_then_quit() {
    let mut s = settings();
    s.hard_error_limit = 10_000;
    // No slow-down either: this is about parsing, not pacing.
    s.soft_error_limit = 10_000;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    let mut rng = Lcg(7);
    let garbage: Vec<u8> = (0..20_000).map(|_| rng.next()).collect();
    c.send(&garbage).await;
    c.send("\r\nQUIT\r\n").await;
    let replies = c.rest().await;
    let codes = codes(&replies);
    assert_eq!(codes.last(), Some(&"221"), "{replies}");
    assert!(
        codes[..codes.len() - 1].iter().all(|c| c.starts_with('5')),
        "{replies}"
    );
    let done = server.done().await;
    assert!(done.messages.is_empty());
}

#[tokio::test]
async fn hard_error_limit_disconnects() {
    let mut s = settings();
    s.hard_error_limit = 3;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.send("XYZZY\r\nFOO\r\nBAR\r\nNOOP\r\nNOOP\r\n").await;
    assert_eq!(
        c.rest().await,
        "500 5.5.2 Error: command not recognized\r\n\
         500 5.5.2 Error: command not recognized\r\n\
         500 5.5.2 Error: command not recognized\r\n\
         421 4.7.0 mx.test Error: too many errors\r\n"
    );
    let done = server.done().await;
    done.logged("too many errors after UNKNOWN from unknown[127.0.0.1]");
    done.logged("disconnect from unknown[127.0.0.1] unknown=0/3 commands=0/3");
}

/// Postfix's smtpd forgives a client's errors (and junk commands) once a
/// message is delivered: the hard limit counts from the last delivery.
#[tokio::test]
async fn a_delivered_message_resets_the_error_count() {
    let mut s = settings();
    s.hard_error_limit = 3;
    s.junk_command_limit = 3;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    // EHLO and two NOOPs: three junk commands, a fourth would count as an
    // error.
    c.ehlo().await;
    for _ in 0..2 {
        assert_eq!(codes(&c.cmd("BOGUS").await), ["500"]);
    }
    c.cmd("NOOP").await;
    c.cmd("NOOP").await;
    c.cmd("MAIL FROM:<s@origin.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    let r = c.cmd("Subject: forgiven\r\n\r\nok\r\n.").await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    // Two more errors and three NOOPs: without the reset, the first BOGUS
    // (or the first NOOP) would have reached the limit.
    for _ in 0..2 {
        assert_eq!(codes(&c.cmd("BOGUS").await), ["500"]);
    }
    for _ in 0..3 {
        assert_eq!(codes(&c.cmd("NOOP").await), ["250"]);
    }
    // A fourth junk command is past the limit: a third error, so the
    // session ends.
    c.send("NOOP\r\n").await;
    assert_eq!(codes(&c.rest().await), ["250", "421"]);
    let done = server.done().await;
    assert_eq!(done.messages.len(), 1);
}

/// HELO and EHLO are junk too, as in Postfix: a client that repeats them
/// forever meets the hard error limit.
#[tokio::test]
async fn an_ehlo_loop_meets_the_error_limit() {
    let mut s = settings();
    s.junk_command_limit = 2;
    s.hard_error_limit = 2;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.send("EHLO a\r\nHELO b\r\n".repeat(5)).await;
    let replies = c.rest().await;
    assert_eq!(
        codes(&replies),
        ["250", "250", "250", "250", "421"],
        "{replies}"
    );
}

#[tokio::test]
async fn junk_commands_count_as_errors_past_their_limit() {
    let mut s = settings();
    s.junk_command_limit = 2;
    s.hard_error_limit = 2;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.send("NOOP\r\n".repeat(10)).await;
    let replies = c.rest().await;
    assert_eq!(
        codes(&replies),
        ["250", "250", "250", "250", "421"],
        "{replies}"
    );
}

#[tokio::test]
async fn command_timeout() {
    let mut s = settings();
    s.command_timeout = Duration::from_millis(200);
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    assert_eq!(
        c.rest().await,
        "421 4.4.2 mx.test Error: timeout exceeded\r\n"
    );
    let done = server.done().await;
    done.logged("timeout after EHLO from unknown[127.0.0.1]");
}

#[tokio::test]
async fn data_timeout() {
    let mut s = settings();
    s.data_timeout = Duration::from_millis(200);
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@origin.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("half a message\r\n").await;
    assert_eq!(
        c.rest().await,
        "421 4.4.2 mx.test Error: timeout exceeded\r\n"
    );
    let done = server.done().await;
    assert!(done.messages.is_empty());
    done.logged("timeout after DATA from unknown[127.0.0.1]");
}

#[tokio::test]
async fn vrfy_help_and_verbs_not_implemented() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    assert_eq!(
        c.cmd("VRFY alice").await,
        "502 5.5.1 VRFY command is disabled\r\n"
    );
    // Without a certificate or a users file (Postfix's wording).
    assert_eq!(
        c.cmd("STARTTLS").await,
        "502 5.5.1 Error: command not implemented\r\n"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "503 5.5.1 Error: authentication not enabled\r\n"
    );
    // BDAT outside a transaction: refused, its chunk read and dropped.
    assert_eq!(
        c.cmd("BDAT 6 LAST\r\nabcd").await,
        "503 5.5.1 Error: need RCPT command\r\n"
    );
    assert_eq!(codes(&c.cmd("HELP").await), ["214"]);
    assert_eq!(
        c.cmd("EXPN staff").await,
        "500 5.5.2 Error: command not recognized\r\n"
    );
    assert_eq!(c.cmd("EHLO").await, "501 Syntax: EHLO hostname\r\n");
    c.cmd("QUIT").await;
}

#[tokio::test]
async fn vrfy_when_enabled() {
    let mut s = settings();
    s.disable_vrfy_command = false;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    assert!(c.cmd("EHLO client.test").await.contains("250-VRFY\r\n"));
    assert_eq!(
        c.cmd("VRFY <alice@local.test>").await,
        "252 2.0.0 <alice@local.test>\r\n"
    );
    assert_eq!(
        c.cmd("VRFY nobody@local.test").await,
        "550 5.1.1 <nobody@local.test>: Recipient address rejected: User unknown in local \
         recipient table\r\n"
    );
    c.cmd("QUIT").await;
}

#[tokio::test]
async fn helo_required() {
    let mut s = settings();
    s.helo_required = true;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    assert_eq!(
        c.cmd("MAIL FROM:<s@origin.test>").await,
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    c.ehlo().await;
    assert_eq!(codes(&c.cmd("MAIL FROM:<s@origin.test>").await), ["250"]);
    c.cmd("QUIT").await;
}

#[tokio::test]
async fn queue_failure_answers_451() {
    let server = Server::start(settings(), relay_rule()).await;
    server.queue.fail.store(true, Ordering::SeqCst);
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@origin.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("body\r\n.\r\n").await;
    assert_eq!(
        c.reply().await,
        "451 4.3.0 Error: queue file write error\r\n"
    );
    c.cmd("QUIT").await;
    let done = server.done().await;
    assert!(done.messages.is_empty());
}
