//! DSN across a relay (RFC 3461 §4): a next hop that announces DSN gets
//! NOTIFY, ORCPT, RET and ENVID and reports the success itself, so the
//! relaying Postern sends none; a next hop without DSN gets none of
//! them, and the relaying Postern reports `Action: relayed` itself.

use crate::remote_smtp::{Aiosmtpd, sender};
use crate::support::*;

/// Prints the fields of every DSN in a Maildir.
const READ_DSNS: &str = r#"
import email, os, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    msg = email.message_from_bytes(open(os.path.join(d, name), "rb").read())
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    human, report, returned = msg.get_payload()
    per_message, per_recipient = report.get_payload()[0], report.get_payload()[1]
    print("subject", msg["Subject"])
    print("reporting-mta", per_message["Reporting-MTA"])
    print("envid", per_message["Original-Envelope-Id"])
    for k in ["Final-Recipient", "Original-Recipient", "Action", "Status"]:
        print(k.lower(), per_recipient[k])
"#;

/// One transaction with DSN parameters; the queue id.
fn send_with_dsn(server: &Server, mail: &str, rcpt: &str) -> String {
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").contains("250-DSN\r\n"));
    assert_eq!(c.cmd(mail), "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd(rcpt), "250 2.1.5 Ok\r\n");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: dsn relay\r\n\r\nthe body\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    c.cmd("QUIT");
    r.trim().rsplit(' ').next().unwrap().to_owned()
}

#[test]
fn a_next_hop_with_dsn_gets_the_parameters_and_reports_success_itself() {
    let (receiver, _rtmp) = Server::start("");
    let (relay, _tmp) = sender(
        None,
        &format!("relayhost = \"[127.0.0.1]:{}\"\n", receiver.smtp.port()),
        "",
    );
    let id = send_with_dsn(
        &relay,
        "MAIL FROM:<alice@example.org> RET=HDRS ENVID=relay+2Bone",
        "RCPT TO:<bob@example.org> NOTIFY=SUCCESS ORCPT=rfc822;Bob+2Bdsn@example.org",
    );
    relay.wait_log(&format!("{id}: removed"));
    // The receiver delivered and reported to the sender, with the
    // envelope id and original recipient the client gave the relay.
    wait_messages(&receiver.new_dir("bob"), 1);
    wait_messages(&receiver.new_dir("alice"), 1);
    let out = python(READ_DSNS, &[receiver.new_dir("alice").to_str().unwrap()]);
    for line in [
        "subject Successful Mail Delivery Report",
        "reporting-mta dns; mx.test.example",
        "envid relay+one",
        "final-recipient rfc822; bob@example.org",
        "original-recipient rfc822;Bob+dsn@example.org",
        "action delivered",
        "status 2.0.0",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    // The relay sent no notice of its own.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = relay.log();
    assert!(
        log.contains(&format!("{id}: to=<bob@example.org>, relay=")),
        "{log}"
    );
    assert!(!log.contains("delivery status notification"), "{log}");
}

#[test]
fn a_next_hop_without_dsn_means_a_relayed_notice_from_here() {
    let aio = Aiosmtpd::start("ok", &[]);
    let (relay, _tmp) = sender(
        None,
        &format!("relayhost = \"[127.0.0.1]:{}\"\n", aio.port),
        "",
    );
    let id = send_with_dsn(
        &relay,
        "MAIL FROM:<postmaster@sender.test> RET=FULL ENVID=relay+2Btwo",
        "RCPT TO:<far@far.test> NOTIFY=SUCCESS,FAILURE",
    );
    let got = aio.wait(1);
    // aiosmtpd announces no DSN: no DSN parameter went to it.
    let head = &got[0].0;
    assert!(head.contains("options: SIZE="), "{head}");
    assert!(!head.contains("RET=") && !head.contains("ENVID="), "{head}");
    relay.wait_log(&format!("{id}: sender delivery status notification: "));
    let new = relay.dir.join("mail/sender.test/postmaster/Maildir/new");
    wait_messages(&new, 1);
    let out = python(READ_DSNS, &[new.to_str().unwrap()]);
    for line in [
        "subject Successful Mail Delivery Report",
        "reporting-mta dns; sender.test",
        "envid relay+two",
        "final-recipient rfc822; far@far.test",
        "action relayed",
        "status 2.0.0",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
}
