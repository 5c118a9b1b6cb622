//! mbox delivery and `mailbox_command` end to end: `home_mailbox` without
//! a trailing `/` (an mbox in the home), an empty one (the mbox in
//! `mail_spool_directory`), `recipient_delimiter` with its extension in
//! `Delivered-To:`, and an MDA fed through `mailbox_command` with
//! Postfix's environment and sysexits mapped to sent, deferred, bounced.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// Waits until `path` holds `n` mbox messages (`From ` lines) and returns it.
fn wait_mbox(path: &Path, n: usize) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let count = text.split('\n').filter(|l| l.starts_with("From ")).count();
        if count >= n && text.ends_with("\n\n") {
            return text;
        }
        assert!(
            start.elapsed() < WAIT,
            "{} has {count} of {n} messages:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A message from carol@client.test.example to `rcpt`, which must be
/// accepted; the reply.
fn from_carol(c: &mut Client, rcpt: &str, body: &str) -> String {
    send_accepted(c, "carol@client.test.example", &[rcpt], body)
}

const BODY: &str = "Subject: mbox\r\n\r\nFrom the start\r\n>From quoted\r\n.dot\r\nend\r\n";

#[test]
fn spool_mbox_when_home_mailbox_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let extra = format!(
        "home_mailbox = \"\"\nmail_spool_directory = \"{}\"\nrecipient_delimiter = \"+\"\n",
        spool.display()
    );
    test_config(tmp.path(), &extra);
    let server = Server::start_in(tmp.path());
    let mut c = Client::connect(server.smtp);
    from_carol(&mut c, "alice+lists@example.org", BODY);
    send_accepted(
        &mut c,
        "",
        &["alice@example.org"],
        "Subject: two\r\n\r\nx\r\n",
    );
    let mbox = wait_mbox(&spool.join("alice"), 2);
    assert!(
        mbox.starts_with("From carol@client.test.example  "),
        "{mbox}"
    );
    assert!(
        mbox.contains(
            "\nReturn-Path: <carol@client.test.example>\nDelivered-To: alice+lists@example.org\n"
        ),
        "{mbox}"
    );
    assert!(
        mbox.contains("\n\n>From the start\n>>From quoted\n.dot\nend\n\nFrom MAILER-DAEMON  "),
        "{mbox}"
    );
    assert!(!mbox.contains('\r'));
    // Both deliveries are over (logged after the unlock): the dot-lock
    // is gone. The mbox shows the second message a moment before that.
    let log = server.wait_log_count("status=sent (delivered to mailbox)", 2);
    assert!(!spool.join("alice.lock").exists());
    assert!(log.contains("to=<alice+lists@example.org>"), "{log}");
    // Python's mailbox module reads it back as two messages, unquoted.
    let out = python(
        "import mailbox,sys\nm=mailbox.mbox(sys.argv[1])\nfor msg in m: print(msg['Subject'], msg.get_from().split()[0])",
        &[spool.join("alice").to_str().unwrap()],
    );
    assert_eq!(out, "mbox carol@client.test.example\ntwo MAILER-DAEMON\n");
}

#[test]
fn mbox_file_in_the_home() {
    let (server, _tmp) = Server::start("home_mailbox = \"Mailbox\"\n");
    let mut c = Client::connect(server.smtp);
    from_carol(&mut c, "bob@example.org", BODY);
    let path = server.dir.join("mail/example.org/bob/Mailbox");
    let mbox = wait_mbox(&path, 1);
    assert!(mbox.contains("Delivered-To: bob@example.org\n"), "{mbox}");
    assert!(!server.dir.join("mail/example.org/bob/Maildir").exists());
}

/// The MDA: writes its environment and input where the test reads them,
/// and exits with the status in the Subject (`exit 75`).
const MDA: &str = r#"#!/bin/sh
out="$(dirname "$0")/delivered.$USER"
env | grep -E '^(SENDER|RECIPIENT|ORIGINAL_RECIPIENT|USER|HOME|EXTENSION|DOMAIN|LOCAL)=' | sort > "$out.env"
cat > "$out.msg"
code=$(grep -m1 '^Subject: exit ' "$out.msg" | sed 's/^Subject: exit //')
exit ${code:-0}
"#;

#[test]
fn mailbox_command_gets_the_message_and_the_environment() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mda = dir.join("mda");
    std::fs::write(&mda, MDA).unwrap();
    std::fs::set_permissions(&mda, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Commands of a root daemon run as nobody: let nobody write here.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let extra = format!(
        "mailbox_command = \"{} -a \\\"$EXTENSION\\\"\"\nrecipient_delimiter = \"+\"\nminimal_backoff_time = \"300s\"\n",
        mda.display()
    );
    test_config(dir, &extra);
    let server = Server::start_in(dir);
    let mut c = Client::connect(server.smtp);
    from_carol(
        &mut c,
        "alice+news@example.org",
        "Subject: hello\r\n\r\nbody\r\n",
    );
    server.wait_log("status=sent (delivered to command: ");
    let env = std::fs::read_to_string(dir.join("delivered.alice.env")).unwrap();
    let home = dir.join("mail/example.org/alice");
    assert_eq!(
        env,
        format!(
            "DOMAIN=example.org\nEXTENSION=news\nHOME={}\nLOCAL=alice+news\n\
             ORIGINAL_RECIPIENT=alice+news@example.org\nRECIPIENT=alice+news@example.org\n\
             SENDER=carol@client.test.example\nUSER=alice\n",
            home.display()
        )
    );
    let msg = std::fs::read_to_string(dir.join("delivered.alice.msg")).unwrap();
    assert!(
        msg.starts_with(
            "Return-Path: <carol@client.test.example>\nDelivered-To: alice+news@example.org\n"
        ),
        "{msg}"
    );
    assert!(msg.ends_with("Subject: hello\n\nbody\n"), "{msg}");
    assert!(!home.join("Maildir").exists());

    // EX_TEMPFAIL: deferred, kept in the queue.
    from_carol(&mut c, "bob@example.org", "Subject: exit 75\r\n\r\nx\r\n");
    let log = server.wait_log("status=deferred");
    assert!(log.contains("dsn=4.3.0"), "{log}");
    // EX_NOUSER: bounced 5.1.1.
    from_carol(&mut c, "bob@example.org", "Subject: exit 67\r\n\r\nx\r\n");
    let log = server.wait_log("status=bounced");
    assert!(log.contains("dsn=5.1.1"), "{log}");
}

/// A full disk under the spool: the delivery defers and the mbox is cut
/// back to what it was, then the retry delivers once space returns.
#[test]
fn a_failed_append_is_cut_back() {
    use crate::full_disk::{Tmpfs, leave_free};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spool = dir.join("spool");
    let Some(_fs) = Tmpfs::mount(&spool, "1m") else {
        return;
    };
    let filler = spool.join("filler");
    let extra = format!(
        "home_mailbox = \"\"\nmail_spool_directory = \"{}\"\nminimal_backoff_time = \"1s\"\n\
         maximal_backoff_time = \"1s\"\nqueue_run_delay = \"1s\"\n",
        spool.display()
    );
    test_config(dir, &extra);
    let server = Server::start_in(dir);
    let mut c = Client::connect(server.smtp);
    from_carol(&mut c, "alice@example.org", BODY);
    let mbox = spool.join("alice");
    let first = wait_mbox(&mbox, 1);
    // 16 KB free, a message of about 86 KB.
    leave_free(&spool, &filler, 16 * 1024);
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef012345678\r\n".repeat(2000)
    );
    from_carol(&mut c, "alice@example.org", &big);
    let log = server.wait_log("status=deferred");
    assert!(log.contains("dsn=4.2.0"), "{log}");
    assert!(log.contains("cannot update mailbox"), "{log}");
    assert_eq!(std::fs::read_to_string(&mbox).unwrap(), first);
    assert!(!spool.join("alice.lock").exists());
    // Space returns: the next attempt appends it whole.
    std::fs::remove_file(&filler).unwrap();
    let text = wait_mbox(&mbox, 2);
    assert!(text.starts_with(&first), "{text}");
    assert!(text.ends_with("012345678\n\n"));
}
