//! Bounce notices end to end: a message that outlives its queue lifetime
//! comes back to its sender as an RFC 3464 report that Python's `email`
//! package reads as multipart/report; a bounce that cannot be delivered
//! goes to the postmaster once. (A dead next hop, the destination status
//! cache, is `remote_concurrency`'s.)

use crate::support::*;

/// Every wait is a second: mail to another domain goes to a relayhost
/// that refuses connections, is deferred, and expires at its second
/// attempt.
const FAST: &str = "relayhost = \"[127.0.0.1]:1\"\n\
                    maximal_queue_lifetime = \"1s\"\n\
                    bounce_queue_lifetime = \"1s\"\n\
                    minimal_backoff_time = \"1s\"\n\
                    maximal_backoff_time = \"1s\"\n\
                    queue_run_delay = \"1s\"\n";

/// Reads a DSN with Python's email parser and prints its fields.
const READ_DSN: &str = r#"
import email, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read())
assert msg.get_content_type() == "multipart/report", msg.get_content_type()
assert msg.get_param("report-type") == "delivery-status", msg.get_param("report-type")
human, report, headers = msg.get_payload()
assert human.get_content_type() == "text/plain", human.get_content_type()
assert report.get_content_type() == "message/delivery-status", report.get_content_type()
assert headers.get_content_type() == "text/rfc822-headers", headers.get_content_type()
blocks = report.get_payload()
per_message, per_recipient = blocks[0], blocks[1]
print("return-path", msg["Return-Path"])
print("from", msg["From"])
print("to", msg["To"])
print("subject", msg["Subject"])
print("auto-submitted", msg["Auto-Submitted"])
print("reporting-mta", per_message["Reporting-MTA"])
print("arrival-date", per_message["Arrival-Date"] is not None)
for k in ["Final-Recipient", "Original-Recipient", "Action", "Status", "Diagnostic-Code"]:
    print(k.lower(), per_recipient[k])
print("returned-subject", email.message_from_string(headers.get_payload())["Subject"])
print("body-returned", "the body" in headers.get_payload())
"#;

fn fields(path: &std::path::Path) -> String {
    python(READ_DSN, &[path.to_str().unwrap()])
}

#[test]
fn expired_mail_returns_a_dsn_to_the_sender() {
    let (server, _tmp) = Server::start(FAST);
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "alice@example.org",
        &["Friend@Elsewhere.example"],
        "Subject: lost letter\r\nFrom: alice@example.org\r\n\r\nthe body\r\n",
    );
    let id = queued_id(&r);
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(got[0].starts_with(b"Return-Path: <>\r\n"));
    let path = message_files(&server.new_dir("alice")).remove(0);
    let out = fields(&path);
    for line in [
        "return-path <>",
        "from MAILER-DAEMON@mx.test.example (Mail Delivery System)",
        "to alice@example.org",
        "subject Undelivered Mail Returned to Sender",
        "auto-submitted auto-replied",
        "reporting-mta dns; mx.test.example",
        "arrival-date True",
        "final-recipient rfc822; Friend@elsewhere.example",
        "original-recipient rfc822; Friend@elsewhere.example",
        "action failed",
        "status 5.4.7",
        "returned-subject lost letter",
        "body-returned False",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    assert!(
        out.contains(
            "diagnostic-code X-Postern; delivery time expired; last attempt: connect to 127.0.0.1[127.0.0.1]:1"
        ),
        "{out}"
    );
    let log = server.wait_log(&format!("{id}: sender non-delivery notification: "));
    assert!(
        log.contains(&format!(
            "{id}: from=<alice@example.org>, status=expired, returned to sender"
        )),
        "{log}"
    );
    assert!(log.contains(&format!("{id}: removed")), "{log}");
    // One qmgr line per message, as Postfix logs an expiry; no line per
    // recipient.
    assert_eq!(log.matches("status=expired").count(), 1, "{log}");
    // delay_warning_time is 0 (off) by default.
    assert!(!log.contains("delay notification"), "{log}");
}

#[test]
fn a_bounce_that_bounces_goes_to_postmaster_once() {
    let (server, _tmp) = Server::start(FAST);
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "",
        &["friend@elsewhere.example"],
        "Subject: a bounce\r\n\r\nthe body\r\n",
    );
    let postmaster = server
        .dir
        .join("mail/mx.test.example/postmaster/Maildir/new");
    let got = wait_messages(&postmaster, 1);
    assert!(
        got[0].starts_with(b"Return-Path: <double-bounce@mx.test.example>\r\n"),
        "{}",
        String::from_utf8_lossy(&got[0])
    );
    let path = message_files(&postmaster).remove(0);
    let out = fields(&path);
    assert!(
        out.contains("subject Postmaster Copy: Undelivered Mail\n"),
        "{out}"
    );
    assert!(
        out.contains("final-recipient rfc822; friend@elsewhere.example\n"),
        "{out}"
    );
    server.wait_log("postmaster non-delivery notification: ");
    // Nothing more: no notice about the notice, nothing left queued.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(messages(&postmaster).len(), 1);
    let log = server.log();
    assert_eq!(log.matches("non-delivery notification").count(), 1, "{log}");
}
