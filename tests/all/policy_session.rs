//! Plugin instances per SMTP session (a store per session and plugin, for
//! one transaction) and the end-of-data `message` resource, through the
//! real server: a content filter that reads the body rejects at the final
//! dot, the header field it adds to clean mail is in the delivered copy,
//! and a plugin's instance counts the recipients of one transaction and
//! starts again with the next.

use crate::policy_tables::guest_config;
use crate::support::*;

#[test]
fn instances_last_a_transaction_and_filters_read_the_message() {
    let tmp = tempfile::tempdir().unwrap();
    guest_config(
        tmp.path(),
        "test_session",
        "smtpd_recipient_restrictions = [{ plugin = \"test_session\" }, \
         \"permit_mynetworks\", \"reject_unauth_destination\"]\n\
         smtpd_end_of_data_restrictions = [{ plugin = \"test_session\", do = \"spam\", \
         word = \"cheap pills\" }]\n",
    );
    let server = Server::start_in(tmp.path());
    let mut c = Client::connect(server.smtp);

    // One transaction, two recipients: one instance, init once.
    send_accepted(
        &mut c,
        "sender@client.test.example",
        &["alice@example.org", "bob@example.org"],
        "Subject: clean\r\n\r\nhello\r\n",
    );
    server.wait_log("inits=1 checks=1");
    server.wait_log("inits=1 checks=2");
    let alice = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&alice[0]);
    assert!(
        text.contains("X-Spam-Checked: clean\r\n"),
        "the filter's field is missing:\n{text}"
    );

    // The next transaction on the same connection has a new instance, and
    // the filter reads the body through the resource and rejects.
    let r = c.cmd("MAIL FROM:<sender@client.test.example>");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("250"), "{r}");
    // The log line comes through the server's stderr, maybe after the
    // reply: wait for it rather than read the log at once.
    server.wait_log_count("inits=1 checks=1", 2);
    let r = c.cmd("DATA");
    assert!(r.starts_with("354"), "{r}");
    c.send(b"Subject: offer\r\n\r\nbuy cheap pills now\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("554 5.7.1 spam: cheap pills"), "{r}");
    server.wait_log("reject: END-OF-MESSAGE");
    let r = c.cmd("QUIT");
    assert!(r.starts_with("221"), "{r}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(messages(&server.new_dir("alice")).len(), 1);
}

/// A plugin that asked for reuse (`host.reuse-instances`) serves the next
/// transactions with the same instance, across connections and without a
/// second `init`, until `max_use`; a plugin that did not starts afresh.
#[test]
fn an_instance_that_asked_serves_transactions_until_max_use() {
    let tmp = tempfile::tempdir().unwrap();
    guest_config(
        tmp.path(),
        "test_session",
        "smtpd_recipient_restrictions = [{ plugin = \"test_session\", reuse = \"yes\" }, \
         \"permit_mynetworks\", \"reject_unauth_destination\"]\n\
         [plugins.test_session]\nmax_use = 3\n",
    );
    let server = Server::start_in(tmp.path());
    for n in 1..=4 {
        let mut c = Client::connect(server.smtp);
        send_accepted(
            &mut c,
            "sender@client.test.example",
            &["alice@example.org"],
            "Subject: reuse\r\n\r\nhello\r\n",
        );
        let r = c.cmd("QUIT");
        assert!(r.starts_with("221"), "{r}");
        // Three transactions in one instance, then a fresh one.
        let checks = if n <= 3 { n } else { 1 };
        server.wait_log(&format!("inits=1 checks={checks}"));
    }
    assert_eq!(server.log().matches("inits=1 checks=1").count(), 2);
    assert!(!server.log().contains("inits=2"), "{}", server.log());
}
