//! DSN (RFC 3461) end to end: MAIL FROM `RET=` and `ENVID=`, RCPT TO
//! `NOTIFY=` and `ORCPT=` carried through the queue file and honoured by
//! its notices: `NOTIFY=NEVER` gets no bounce, `NOTIFY=SUCCESS` a success
//! notice on delivery, `RET=HDRS` only the headers back and `RET=FULL`
//! the whole message, with ENVID and ORCPT in the report, all read back
//! with Python's email parser. A remote server's refusal comes back as
//! Postfix reports it: `Remote-MTA: dns; host` and `Diagnostic-Code: smtp;
//! 550 5.1.1 ...`.

use crate::remote_smtp::{Aiosmtpd, sender, submit};
use crate::support::*;

/// Mail to another domain (remote delivery cannot reach it from the test
/// machine) fails fast: it expires at its second attempt.
const FAST: &str = "maximal_queue_lifetime = \"1s\"\n\
                    bounce_queue_lifetime = \"1s\"\n\
                    minimal_backoff_time = \"1s\"\n\
                    maximal_backoff_time = \"1s\"\n\
                    queue_run_delay = \"1s\"\n";

/// Prints the fields of every DSN in a Maildir, one block per notice.
const READ_DSNS: &str = r#"
import email, os, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    msg = email.message_from_bytes(open(os.path.join(d, name), "rb").read())
    if msg.get_content_type() != "multipart/report":
        print("plain", msg["Subject"])
        continue
    human, report, returned = msg.get_payload()
    per_message, per_recipient = report.get_payload()[0], report.get_payload()[1]
    print("report", msg["Subject"])
    print("return-path", msg["Return-Path"])
    print("envid", per_message["Original-Envelope-Id"])
    for k in ["Final-Recipient", "Original-Recipient", "Action", "Status"]:
        print(k.lower(), per_recipient[k])
    print("returned", returned.get_content_type())
    if returned.get_content_type() == "message/rfc822":
        inner = returned.get_payload()[0]
        print("returned-subject", inner["Subject"])
        print("returned-body", inner.get_payload().strip())
    else:
        print("returned-text", "the body" in returned.get_payload())
"#;

fn reports(server: &Server, user: &str) -> String {
    python(READ_DSNS, &[server.new_dir(user).to_str().unwrap()])
}

#[test]
fn notify_success_and_never_with_ret_full_envid_and_orcpt() {
    let (server, _tmp) = Server::start(FAST);
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").contains("250-DSN\r\n"));
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org> RET=FULL ENVID=QQ+2B314159"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<bob@example.org> NOTIFY=SUCCESS ORCPT=rfc822;Bob+2Bdsn@Example.org"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<friend@elsewhere.example> NOTIFY=NEVER"),
        "250 2.1.5 Ok\r\n"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: with dsn\r\nFrom: alice@example.org\r\n\r\nthe body\r\n.\r\n");
    let r = c.reply();
    let id = queued_id(&r);

    // Bob has the message; Alice the success notice about it.
    wait_messages(&server.new_dir("bob"), 1);
    server.wait_log(&format!("{id}: sender delivery status notification: "));
    // The other recipient fails (expires), and NOTIFY=NEVER means no
    // bounce: the message is gone without one.
    server.wait_log(&format!("{id}: removed"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(got[0].starts_with(b"Return-Path: <>\r\n"));
    assert!(!server.log().contains("non-delivery notification"));
    let out = reports(&server, "alice");
    for line in [
        "report Successful Mail Delivery Report",
        "return-path <>",
        "envid QQ+314159",
        "final-recipient rfc822; bob@example.org",
        "original-recipient rfc822;Bob+dsn@Example.org",
        "action delivered",
        "status 2.0.0",
        "returned message/rfc822",
        "returned-subject with dsn",
        "returned-body the body",
    ] {
        assert!(
            out.contains(&format!("{line}\n")),
            "{line:?} missing in\n{out}"
        );
    }
}

#[test]
fn notify_failure_with_ret_hdrs_bounces_headers_only() {
    let (server, _tmp) = Server::start(FAST);
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<alice@example.org> RET=HDRS ENVID=env-1")
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<Friend@Elsewhere.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;friend@elsewhere.example")
            .starts_with("250")
    );
    // Delivered, and NOTIFY without SUCCESS: no notice for this one.
    assert!(
        c.cmd("RCPT TO:<bob@example.org> NOTIFY=FAILURE")
            .starts_with("250")
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: bounce me\r\n\r\nthe body\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    server.wait_log("sender non-delivery notification: ");
    wait_messages(&server.new_dir("bob"), 1);
    wait_messages(&server.new_dir("alice"), 1);
    let out = reports(&server, "alice");
    for line in [
        "report Undelivered Mail Returned to Sender",
        "envid env-1",
        "final-recipient rfc822; Friend@elsewhere.example",
        "original-recipient rfc822;friend@elsewhere.example",
        "action failed",
        "status 5.",
        "returned text/rfc822-headers",
        "returned-text False",
    ] {
        assert!(out.contains(line), "{line:?} missing in\n{out}");
    }
    assert!(!server.log().contains("sender delivery status notification"));
}

#[test]
fn bad_dsn_parameters_are_refused() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org> RET=SOME"),
        "501 5.5.4 Bad RET parameter syntax\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org> ENVID=a+zz"),
        "501 5.5.4 Bad ENVID parameter syntax\r\n"
    );
    assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<bob@example.org> NOTIFY=NEVER,FAILURE"),
        "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<bob@example.org> ORCPT=bob@example.org"),
        "501 5.5.4 Error: Bad ORCPT parameter syntax\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<bob@example.org> FOO=BAR"),
        "555 5.5.4 Unsupported option: FOO=BAR\r\n"
    );
    assert!(
        c.cmd("RCPT TO:<bob@example.org> NOTIFY=never")
            .starts_with("250")
    );
}

/// The per-recipient fields of a DSN file, one line each.
const READ_REMOTE: &str = r#"
import email, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read())
assert msg.get_content_type() == "multipart/report", msg.get_content_type()
report = msg.get_payload()[1]
for block in report.get_payload()[1:]:
    for k in ["Final-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code"]:
        print(k.lower(), block[k])
"#;

#[test]
fn a_remote_refusal_names_the_remote_mta_and_its_reply() {
    let aio = Aiosmtpd::start("reject", &[]);
    let (sender, _tmp) = sender(
        None,
        &format!("relayhost = \"[127.0.0.1]:{}\"\n", aio.port),
        "",
    );
    let id = submit(
        &sender,
        "postmaster@sender.test",
        &["nobody@far.test"],
        "Subject: refused\r\n\r\nhi\r\n",
    );
    sender.wait_log(&format!("{id}: sender non-delivery notification: "));
    let new = sender.dir.join("mail/sender.test/postmaster/Maildir/new");
    wait_messages(&new, 1);
    let path = message_files(&new).remove(0);
    let out = python(READ_REMOTE, &[path.to_str().unwrap()]);
    for line in [
        "final-recipient rfc822; nobody@far.test",
        "action failed",
        "status 5.1.1",
        "remote-mta dns; 127.0.0.1",
        "diagnostic-code smtp; 550 5.1.1 <nobody@far.test>: Recipient address rejected: User unknown",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
}
