//! `delay_warning_time` end to end: a message still deferred after it
//! gets one "Delayed Mail (still being retried)" notice (RFC 3464,
//! `Action: delayed`, a 4.x.x `Status`), once, a restart included; DSN
//! `NOTIFY` without `DELAY` (or `NEVER`) leaves a recipient out of it.
//! Read back with Python's email parser.

use crate::support::*;

/// Mail to another domain goes to a relayhost that refuses connections
/// and is retried every second; the sender is warned after a second and
/// the message stays queued long enough for a few more attempts.
const WARN_FAST: &str = "relayhost = \"[127.0.0.1]:1\"\n\
                         delay_warning_time = \"1s\"\n\
                         maximal_queue_lifetime = \"60s\"\n\
                         minimal_backoff_time = \"1s\"\n\
                         maximal_backoff_time = \"1s\"\n\
                         queue_run_delay = \"1s\"\n";

/// Prints the fields of every DSN in a Maildir `new/`.
const READ_WARNINGS: &str = r#"
import email, os, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    msg = email.message_from_bytes(open(os.path.join(d, name), "rb").read())
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    human, report, returned = msg.get_payload()
    print("subject", msg["Subject"])
    print("return-path", msg["Return-Path"])
    print("warning-only", "THIS IS A WARNING ONLY" in human.get_payload())
    print("returned", returned.get_content_type())
    for block in report.get_payload()[1:]:
        print("recipient", block["Final-Recipient"], "|", block["Action"], "|",
              block["Status"], "|", block["Diagnostic-Code"], "|",
              block["Will-Retry-Until"] is not None)
"#;

fn warnings(server: &Server) -> String {
    python(READ_WARNINGS, &[server.new_dir("alice").to_str().unwrap()])
}

#[test]
fn a_deferred_message_warns_its_sender_once_across_a_restart() {
    let (server, tmp) = Server::start(WARN_FAST);
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "alice@example.org",
        &["friend@elsewhere.example"],
        "Subject: slow letter\r\nFrom: alice@example.org\r\n\r\nthe body\r\n",
    );
    let id = queued_id(&r);
    server.wait_log(&format!("{id}: sender delay notification: "));
    wait_messages(&server.new_dir("alice"), 1);
    // The warning is recorded in the queue file: after a crash and more
    // deferrals, no second one.
    server.kill();
    let server = Server::start_in(tmp.path());
    let deferred = format!("{id}: to=<friend@elsewhere.example>");
    server.wait_log_count(&deferred, 2);
    let log = server.log();
    assert!(log.contains("status=deferred"), "{log}");
    assert!(!log.contains("delay notification"), "{log}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(got[0].starts_with(b"Return-Path: <>\r\n"));
    let out = warnings(&server);
    for line in [
        "subject Delayed Mail (still being retried)",
        "warning-only True",
        "returned text/rfc822-headers",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    let rcpt = out
        .lines()
        .find(|l| l.starts_with("recipient"))
        .unwrap_or("");
    assert!(
        rcpt.starts_with("recipient rfc822; friend@elsewhere.example | delayed | 4.4.1 | X-Postern; connect to 127.0.0.1[127.0.0.1]:1")
            && rcpt.ends_with("| True"),
        "{out}"
    );
}

#[test]
fn notify_decides_who_is_in_the_warning() {
    let (server, _tmp) = Server::start(WARN_FAST);
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").contains("250-DSN\r\n"));
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok\r\n");
    for rcpt in [
        "RCPT TO:<a@elsewhere.example> NOTIFY=DELAY",
        "RCPT TO:<b@elsewhere.example> NOTIFY=FAILURE",
        "RCPT TO:<c@elsewhere.example> NOTIFY=NEVER",
        "RCPT TO:<d@elsewhere.example>",
        "RCPT TO:<e@elsewhere.example> NOTIFY=SUCCESS,DELAY",
    ] {
        assert_eq!(c.cmd(rcpt), "250 2.1.5 Ok\r\n", "{rcpt}");
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: five\r\n\r\nthe body\r\n.\r\n");
    let r = c.reply();
    let first = queued_id(&r);
    // A message whose only recipient declines DELAY gets none.
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok\r\n");
    assert_eq!(
        c.cmd("RCPT TO:<f@elsewhere.example> NOTIFY=FAILURE,SUCCESS"),
        "250 2.1.5 Ok\r\n"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: quiet\r\n\r\nthe body\r\n.\r\n");
    let r = c.reply();
    let quiet = queued_id(&r);
    server.wait_log(&format!("{first}: sender delay notification: "));
    server.wait_log_count(&format!("{quiet}: to=<f@elsewhere.example>"), 3);
    let log = server.log();
    assert!(
        !log.contains(&format!("{quiet}: sender delay notification")),
        "{log}"
    );
    wait_messages(&server.new_dir("alice"), 1);
    let out = warnings(&server);
    let recipients: Vec<&str> = out.lines().filter(|l| l.starts_with("recipient")).collect();
    assert_eq!(recipients.len(), 3, "{out}");
    for who in ["a", "d", "e"] {
        let needle = format!("recipient rfc822; {who}@elsewhere.example | delayed | 4.4.1 | ");
        assert!(out.contains(&needle), "{needle:?} not in:\n{out}");
    }
}
