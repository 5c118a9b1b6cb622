//! `immediate_local_delivery = true` (host/queue/src/at_once.rs): mail for
//! plain local mailboxes is in them when the 250 comes, with no queue
//! file; what is not (an alias, a failed store) goes through the queue as
//! before, and the log keeps its shape.

use std::net::SocketAddr;
use std::path::Path;

use crate::metrics_ops::{sample, scrape};

use crate::support::*;

const BODY: &str = "Subject: at once\r\nMessage-ID: <at.once@client.test.example>\r\n\r\nhello\r\n";

/// A server with immediate local delivery, `team` aliased to bob,
/// remote mail relayed to a port where nothing listens, and metrics on a
/// free port ([`metrics_addr`]).
fn immediate_server() -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("aliases"), "team: bob\n").unwrap();
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    std::fs::write(dir.join("metrics"), metrics.to_string()).unwrap();
    test_config(
        dir,
        &format!(
            "immediate_local_delivery = true\nalias_maps = \"hash:{}/aliases\"\n\
             relayhost = \"[127.0.0.1]:{}\"\n[metrics]\nlisten = \"{metrics}\"\n",
            dir.display(),
            free_port()
        ),
    );
    (Server::start_in(dir), tmp)
}

/// Where the server of `dir` serves its metrics.
fn metrics_addr(dir: &Path) -> SocketAddr {
    std::fs::read_to_string(dir.join("metrics"))
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends [`BODY`] to `rcpts` and returns the queue id of the 250.
fn send(server: &Server, rcpts: &[&str]) -> String {
    let mut c = Client::connect(server.smtp);
    queued_id(&send_accepted(
        &mut c,
        "sender@client.test.example",
        rcpts,
        BODY,
    ))
}

/// The files under `queue/active` and `queue/deferred`.
fn queued_files(dir: &Path) -> Vec<String> {
    ["active", "deferred"]
        .iter()
        .flat_map(|q| std::fs::read_dir(dir.join("queue").join(q)).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn local_mail_is_in_the_mailbox_when_the_250_comes() {
    let (server, tmp) = immediate_server();
    let id = send(&server, &["alice@example.org"]);
    // No waiting: the copy was on disk before the reply.
    let files = message_files(&server.new_dir("alice"));
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.starts_with("Return-Path: <sender@client.test.example>\r\nDelivered-To: alice@example.org\r\nReceived: "),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nhello\r\n"), "{text}");
    assert!(queued_files(tmp.path()).is_empty());
    // The maillog shape, in Postfix's order.
    let log = server.wait_log(&format!("{id}: removed"));
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("log lacks {needle:?}:\n{log}"))
    };
    let from = at(&format!(
        "postern/qmgr[{}]: {id}: from=<sender@client.test.example>, size=",
        server.pid()
    ));
    let to = at(&format!(
        "postern/local[{}]: {id}: to=<alice@example.org>, relay=local, delay=",
        server.pid()
    ));
    let removed = at(&format!("{id}: removed"));
    assert!(from < to && to < removed, "{log}");
    assert!(log.contains(", nrcpt=1 (immediate delivery)"), "{log}");
    assert!(
        log.contains("dsn=2.0.0, status=sent (delivered to maildir)"),
        "{log}"
    );
    assert!(!log.contains("(queue active)"), "{log}");
}

#[test]
fn an_alias_goes_through_the_queue_beside_a_mailbox_delivered_at_once() {
    let (server, tmp) = immediate_server();
    let id = send(&server, &["alice@example.org", "team@example.org"]);
    assert_eq!(message_files(&server.new_dir("alice")).len(), 1);
    // The alias is expanded by the delivery loop, from a queue file that
    // holds it alone.
    let bob = wait_messages(&server.new_dir("bob"), 1);
    let bob = String::from_utf8_lossy(&bob[0]);
    assert!(bob.contains("Delivered-To: bob@"), "{bob}");
    let log = server.wait_log(&format!("{id}: removed"));
    assert!(log.contains(", nrcpt=2 (immediate delivery)"), "{log}");
    assert!(
        log.contains(&format!("{id}: 1 of 2 recipients queued (queue active)")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{id}: to=<alice@example.org>, relay=local")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{id}: to=<bob@example.org>, orig_to=<team@example.org>, relay=local"
        )) || log.contains(&format!("{id}: to=<team@example.org>, relay=local")),
        "{log}"
    );
    // One line per recipient: alice is not delivered a second time.
    assert_eq!(log.matches("to=<alice@example.org>").count(), 1, "{log}");
    assert_eq!(message_files(&server.new_dir("alice")).len(), 1);
    assert!(queued_files(tmp.path()).is_empty());
    let (_, body) = scrape(metrics_addr(tmp.path()), "/metrics");
    for (outcome, n) in [("delivered", 1.0), ("queued", 1.0)] {
        let name = format!("postern_queue_immediate_total{{outcome=\"{outcome}\"}}");
        assert_eq!(sample(&body, &name), Some(n), "{body}");
    }
    assert_eq!(
        sample(&body, "postern_queue_immediate_total{outcome=\"failed\"}"),
        None,
        "{body}"
    );
}

#[test]
fn a_store_that_fails_at_once_is_queued_and_deferred_once() {
    let (server, tmp) = immediate_server();
    // A file where alice's mail directory should be: every store fails.
    let home = tmp.path().join("mail/example.org");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("alice"), "not a directory").unwrap();
    let id = send(&server, &["alice@example.org"]);
    // Acknowledged because the queue has it.
    let log = server.wait_log(&format!("{id}: to=<alice@example.org>"));
    assert!(
        log.contains(&format!("{id}: 1 of 1 recipients queued (queue active)")),
        "{log}"
    );
    assert!(log.contains("status=deferred"), "{log}");
    // The attempt at once is not logged as a delivery of its own.
    assert_eq!(
        log.matches(&format!("{id}: to=<alice@example.org>"))
            .count(),
        1,
        "{log}"
    );
    assert_eq!(queued_files(tmp.path()), [id]);
    let (_, body) = scrape(metrics_addr(tmp.path()), "/metrics");
    let failed = "postern_queue_immediate_total{outcome=\"failed\"}";
    assert_eq!(sample(&body, failed), Some(1.0), "{body}");
}

#[test]
fn remote_recipients_are_queued() {
    let (server, tmp) = immediate_server();
    let id = send(&server, &["alice@example.org", "carol@elsewhere.example"]);
    assert_eq!(message_files(&server.new_dir("alice")).len(), 1);
    let log = server.wait_log(&format!("{id}: to=<carol@elsewhere.example>"));
    assert!(
        log.contains(&format!("{id}: 1 of 2 recipients queued (queue active)")),
        "{log}"
    );
    assert!(log.contains("status=deferred"), "{log}");
    assert_eq!(queued_files(tmp.path()), std::slice::from_ref(&id));
    let out = postern_run(&tmp.path().join("postern.toml"), &["queue", "show", &id]);
    let text = output_text(&out);
    assert!(
        text.contains("carol@elsewhere.example") && !text.contains("alice@example.org"),
        "{text}"
    );
}

/// After the drop to `mail_owner`, a system account's copy is stored at
/// once through the root helper, as the account, as a queued one is.
#[test]
fn at_once_after_the_privilege_drop_the_files_are_the_accounts() {
    use std::os::unix::fs::MetadataExt;

    use crate::privileges::{accounts, skip_unless_root, system_config};
    use crate::system_accounts::tree;

    if skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (owner, user) = accounts(dir, "At-Once-1");
    let extra = format!(
        "mail_owner = \"{}\"\nimmediate_local_delivery = true\n\
         local_recipient_maps = \"unix:passwd.byname\"\n",
        owner.name
    );
    system_config(dir, &extra, &[]);
    let server = Server::start_in(dir);
    server.wait_log("running as mail_owner");
    let id = send(&server, &[&format!("{}@example.org", user.name)]);
    let maildir = dir.join("home/Maildir");
    assert_eq!(
        message_files(&maildir.join("new")).len(),
        1,
        "{}",
        server.log()
    );
    for path in tree(&maildir) {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid), "{path:?}");
    }
    let log = server.wait_log(&format!("{id}: removed"));
    assert!(log.contains(", nrcpt=1 (immediate delivery)"), "{log}");
    assert!(queued_files(dir).is_empty());
    drop(server);
    drop((user, owner));
}

/// A full mailbox file system: the store at once fails and leaves
/// nothing behind, the message is queued (250), and the queue delivers
/// it once there is room again.
#[test]
fn a_full_mailbox_disk_queues_the_message_and_leaves_no_partial_file() {
    use crate::full_disk::{Tmpfs, leave_free};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mail = dir.join("mail");
    let Some(_fs) = Tmpfs::mount(&mail, "2m") else {
        return;
    };
    let filler = mail.join("filler");
    std::fs::write(dir.join("users"), USERS).unwrap();
    std::fs::write(
        dir.join("postern.toml"),
        config_text(
            dir,
            "immediate_local_delivery = true\nminimal_backoff_time = \"1s\"\n",
        ),
    )
    .unwrap();
    let server = Server::start_in(dir);
    // Alice's Maildir exists (her first message), then the disk fills.
    let first = send(&server, &["alice@example.org"]);
    server.wait_log(&format!("{first}: removed"));
    let maildir = server.new_dir("alice").parent().unwrap().to_owned();
    leave_free(&mail, &filler, 16 * 1024);
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef012345678\r\n".repeat(2000)
    );
    let mut c = Client::connect(server.smtp);
    let id = queued_id(&send_accepted(
        &mut c,
        "sender@client.test.example",
        &["alice@example.org"],
        &big,
    ));
    server.wait_log(&format!("{id}: 1 of 1 recipients queued (queue active)"));
    // The queue's own first try finds the disk still full.
    let log = server.wait_log(&format!("{id}: to=<alice@example.org>"));
    assert!(log.contains("status=deferred"), "{log}");
    // Nothing half-written in the mailbox: one message, an empty tmp/.
    assert_eq!(message_files(&maildir.join("new")).len(), 1);
    assert_eq!(std::fs::read_dir(maildir.join("tmp")).unwrap().count(), 0);
    // Room again: the queue's next try delivers it, whole.
    std::fs::remove_file(&filler).unwrap();
    flush(dir);
    let got = wait_messages(&maildir.join("new"), 2);
    assert!(
        got.iter()
            .any(|m| m.ends_with(big.split_once("\r\n\r\n").unwrap().1.as_bytes()))
    );
    server.wait_log(&format!("{id}: removed"));
}

/// An mbox someone else keeps locked (a mail reader's dot lock): the
/// store at once gives up after a moment rather than hold the client's
/// reply for the queue's 20 s, the message is queued (250), and the
/// queue's own try, which waits for the lock, delivers it once the lock
/// is gone.
#[test]
fn a_locked_mbox_is_left_to_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spool = dir.join("spool");
    std::fs::create_dir(&spool).unwrap();
    test_config(
        dir,
        &format!(
            "immediate_local_delivery = true\nhome_mailbox = \"\"\n\
             mail_spool_directory = \"{}\"\n",
            spool.display()
        ),
    );
    let server = Server::start_in(dir);
    let first = send(&server, &["alice@example.org"]);
    let log = server.wait_log(&format!("{first}: removed"));
    assert!(log.contains(", nrcpt=1 (immediate delivery)"), "{log}");
    let mbox = spool.join("alice");
    assert_eq!(mbox_messages(&mbox), 1);
    let lock = spool.join("alice.lock");
    std::fs::write(&lock, "").unwrap();
    let mut c = Client::connect(server.smtp);
    // The reply does not wait out the queue's 20 s for the lock (it comes
    // after about a second; the rest is room for a loaded machine).
    c.set_timeout(std::time::Duration::from_secs(12));
    let id = queued_id(&send_accepted(
        &mut c,
        "sender@client.test.example",
        &["alice@example.org"],
        BODY,
    ));
    server.wait_log(&format!("{id}: 1 of 1 recipients queued (queue active)"));
    assert_eq!(mbox_messages(&mbox), 1);
    // The mail reader lets go while the queue's try waits.
    std::fs::remove_file(&lock).unwrap();
    let log = server.wait_log(&format!("{id}: removed"));
    let delivered = format!("{id}: to=<alice@example.org>");
    let line = log.lines().find(|l| l.contains(&delivered)).unwrap();
    assert!(line.contains("status=sent (delivered to mailbox)"), "{log}");
    assert_eq!(log.matches(&delivered).count(), 1, "{log}");
    assert_eq!(mbox_messages(&mbox), 2);
}

/// The messages in the mbox at `path` (its `From ` lines).
fn mbox_messages(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .split('\n')
        .filter(|l| l.starts_with("From "))
        .count()
}
