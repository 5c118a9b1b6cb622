//! The `greylist` plugin in a running server, with real SMTP sessions: a
//! greylisted client retries after the delay and its message is
//! delivered with an X-Greylist header; a client whose mail passed is
//! auto-whitelisted; bad arguments stop the load with a clear error.

use std::time::{Duration, Instant};

use crate::support::*;

/// A server whose recipient list starts with greylist entry `args`
/// (a 2 s delay, the rest as given).
fn start(args: &str) -> (Server, tempfile::TempDir) {
    Server::start(&format!(
        "smtpd_recipient_restrictions = [{{ plugin = \"greylist\", delay = \"2s\"{args} }}, \
         \"permit_mynetworks\", \"reject_unauth_destination\"]\n"
    ))
}

/// MAIL FROM `from` and RCPT TO `to` from 127.0.0.2 (not in mynetworks):
/// the RCPT reply, and the session for DATA.
fn rcpt(server: &Server, from: &str, to: &str) -> (String, Client) {
    rcpt_from(server.smtp, "127.0.0.2", "mx.sender.example", from, to)
}

/// The message of a session whose RCPT was accepted; the final reply.
fn data(c: &mut Client, subject: &str) -> String {
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(format!("Subject: {subject}\r\n\r\nhello\r\n.\r\n").as_bytes());
    c.reply()
}

#[test]
fn a_greylisted_client_retries_after_the_delay_and_is_delivered() {
    // The string form: its one word is the delay.
    let (server, _tmp) = Server::start(
        "smtpd_recipient_restrictions = [\"greylist 2s\", \"permit_mynetworks\", \
         \"reject_unauth_destination\"]\n",
    );
    let started = Instant::now();
    let (r, _) = rcpt(&server, "bob@sender.example", "alice@example.org");
    assert_eq!(
        r,
        "450 4.2.0 <alice@example.org>: Recipient address rejected: Greylisted, \
         see http://postgrey.schweikert.ch/help/example.org.html\r\n"
    );
    let log = server.wait_log("NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 450 4.2.0");
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 450 4.2.0 <alice@example.org>: \
             Recipient address rejected: Greylisted, see \
             http://postgrey.schweikert.ch/help/example.org.html; from=<bob@sender.example> \
             to=<alice@example.org> proto=ESMTP helo=<mx.sender.example> plugin=greylist"
        ),
        "{log}"
    );
    // Too early: still greylisted.
    let (r, _) = rcpt(&server, "bob@sender.example", "alice@example.org");
    assert!(r.starts_with("450 4.2.0 "), "{r}");
    // After the delay the same triplet passes and the message goes in.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(started.elapsed()));
    let (r, mut c) = rcpt(&server, "bob@sender.example", "alice@example.org");
    assert!(r.starts_with("250"), "{r}");
    assert!(data(&mut c, "retried").starts_with("250"));
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(
        text.contains("X-Greylist: delayed 2 seconds by postern greylist\r\n")
            || text.contains("X-Greylist: delayed 3 seconds by postern greylist\r\n"),
        "{text}"
    );
    // Another sender from the same client is greylisted on its own.
    let (r, _) = rcpt(&server, "carol@sender.example", "alice@example.org");
    assert!(r.starts_with("450 4.2.0 "), "{r}");
}

#[test]
fn a_client_whose_mail_passed_is_auto_whitelisted() {
    let (server, _tmp) =
        start(", auto_whitelist_clients = \"1\", whitelist_recipients = \"postmaster@\"");
    // postmaster is never greylisted.
    let (r, _) = rcpt(&server, "bob@sender.example", "postmaster@example.org");
    assert!(r.starts_with("250"), "{r}");
    let (r, _) = rcpt(&server, "bob@sender.example", "alice@example.org");
    assert!(r.starts_with("450 4.2.0 "), "{r}");
    std::thread::sleep(Duration::from_millis(2100));
    let (r, mut c) = rcpt(&server, "bob@sender.example", "alice@example.org");
    assert!(r.starts_with("250"), "{r}");
    assert!(data(&mut c, "first").starts_with("250"));
    // One delivery: the client passes with a new triplet at once.
    let (r, mut c) = rcpt(&server, "dave@other.example", "bob@example.org");
    assert!(r.starts_with("250"), "{r}");
    assert!(data(&mut c, "whitelisted").starts_with("250"));
    let got = wait_messages(&server.new_dir("bob"), 1);
    assert!(!String::from_utf8_lossy(&got[0]).contains("X-Greylist"));
}

#[test]
fn bad_arguments_stop_the_load_and_name_the_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let stderr = check_refuses(
        tmp.path(),
        "smtpd_recipient_restrictions = [{ plugin = \"greylist\", delay = \"0s\" }, \
         \"reject_unauth_destination\"]\n",
        "greylist",
    );
    assert!(stderr.contains("delay: \"0s\": a time of zero"), "{stderr}");
}
