//! `postern queue ...` and `postern flush` against a running daemon: a
//! message deferred because bob's Maildir cannot be made is listed,
//! shown, held, released and delivered at once; requeued; deleted. Any
//! user (`nobody`) may list and flush, through the daemon; the other
//! commands are root's.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// Runs `postern ARGS --config DIR/postern.toml`; (success, stdout, stderr).
fn postern(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = postern_as(false, dir, args);
    (code == Some(0), out, err)
}

/// `postern ARGS --config DIR/postern.toml`, as `nobody` when `nobody`;
/// (exit code, stdout, stderr).
fn postern_as(nobody: bool, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = crate::sendmail_modes::postern_as(nobody)
        .args(args)
        .arg("--config")
        .arg(dir.join("postern.toml"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends one message to bob and returns its queue id.
fn send_to_bob(server: &Server, subject: &str) -> String {
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "alice@example.org",
        &["bob@example.org"],
        &format!("Subject: {subject}\r\n\r\nhello bob\r\n"),
    );
    queued_id(&r)
}

/// Waits until `postern queue list` output satisfies `ok`.
fn wait_list(dir: &Path, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (success, out, err) = postern(dir, &["queue", "list"]);
        assert!(success, "{err}");
        if ok(&out) {
            return out;
        }
        assert!(start.elapsed() < WAIT, "queue list never matched:\n{out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hold_release_requeue_delete_on_a_live_daemon() {
    let (server, tmp) = Server::start("");
    let dir = tmp.path();
    // bob's home is a file: his Maildir cannot be created, delivery defers.
    let blocker = server.dir.join("mail/example.org/bob");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();

    let (ok, out, _) = postern(dir, &["queue"]);
    assert!(ok);
    assert_eq!(out, "Mail queue is empty\n");

    let first = send_to_bob(&server, "first");
    server.wait_log(&format!("{first}: to=<bob@example.org>"));
    let list = wait_list(dir, |l| l.contains(&format!("{first} ")));
    assert!(list.starts_with("-Queue ID- "), "{list}");
    assert!(list.contains("  alice@example.org\n"), "{list}");
    assert!(list.contains("\n(maildir delivery failed: "), "{list}");
    assert!(
        list.contains(&format!("{}bob@example.org\n", " ".repeat(41))),
        "{list}"
    );
    assert!(list.ends_with(" Kbytes in 1 Request.\n"), "{list}");

    let (ok, shown, err) = postern(dir, &["queue", "show", &first]);
    assert!(ok, "{err}");
    assert!(
        shown.starts_with(&format!("*** ENVELOPE RECORDS deferred/{first} ***\n")),
        "{shown}"
    );
    assert!(shown.contains("sender: alice@example.org\n"), "{shown}");
    assert!(shown.contains("*** MESSAGE CONTENTS ***\n"), "{shown}");
    assert!(shown.contains("Subject: first\r\n"), "{shown}");

    let (ok, _, err) = postern(dir, &["queue", "hold", &first]);
    assert!(ok, "{err}");
    assert!(err.contains(&format!("{first}: placed on hold")), "{err}");
    let list = wait_list(dir, |l| l.contains(&format!("{first}!")));
    assert!(list.contains("bob@example.org"), "{list}");

    // The way is clear; released, it is delivered now, not in 300 s.
    std::fs::remove_file(&blocker).unwrap();
    let (ok, _, err) = postern(dir, &["queue", "release", &first]);
    assert!(ok, "{err}");
    let got = wait_messages(&server.new_dir("bob"), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: first"));
    server.wait_log(&format!("{first}: removed"));

    // Requeue: deferred again, then tried at once.
    std::fs::remove_dir_all(&blocker).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let second = send_to_bob(&server, "second");
    wait_list(dir, |l| {
        l.contains(&format!("{second} ")) && l.contains("(maildir")
    });
    std::fs::remove_file(&blocker).unwrap();
    let (ok, _, err) = postern(dir, &["queue", "requeue", &second]);
    assert!(ok, "{err}");
    let got = wait_messages(&server.new_dir("bob"), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: second"));

    // Delete: gone from the queue, never delivered, no bounce.
    std::fs::remove_dir_all(&blocker).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let third = send_to_bob(&server, "third");
    wait_list(dir, |l| {
        l.contains(&format!("{third} ")) && l.contains("(maildir")
    });
    let (ok, _, err) = postern(dir, &["queue", "delete", &third]);
    assert!(ok, "{err}");
    let (_, out, _) = postern(dir, &["queue", "list"]);
    assert_eq!(out, "Mail queue is empty\n");
    let (ok, _, err) = postern(dir, &["queue", "show", &third]);
    assert!(!ok && err.contains("no such message"), "{err}");

    // A flush reaches the daemon; unknown ids are refused.
    let (ok, _, err) = postern(dir, &["flush"]);
    assert!(ok, "{err}");
    server.wait_log("trigger: flush");
    let (ok, _, err) = postern(dir, &["queue", "hold", "NOTANID!"]);
    assert!(!ok && err.contains("is not a queue id"), "{err}");
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        messages(&server.new_dir("alice")).is_empty(),
        "no bounce expected"
    );
}

#[test]
fn delete_all_without_a_daemon() {
    let (server, tmp) = Server::start("");
    let blocker = server.dir.join("mail/example.org/bob");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    for s in ["a", "b"] {
        let id = send_to_bob(&server, s);
        server.wait_log(&format!("{id}: to=<bob@example.org>"));
    }
    server.kill();
    let (ok, _, err) = postern(tmp.path(), &["flush"]);
    assert!(!ok && err.contains("not running"), "{err}");
    let (ok, _, err) = postern(tmp.path(), &["queue", "delete", "ALL"]);
    assert!(ok, "{err}");
    assert!(err.contains("Deleted: 2 messages"), "{err}");
    let (_, out, _) = postern(tmp.path(), &["queue", "list"]);
    assert_eq!(out, "Mail queue is empty\n");
}

#[test]
fn nobody_lists_and_flushes_but_changes_nothing() {
    if !crate::sendmail_modes::can_be_nobody() {
        eprintln!("skipped: only root may run a command as nobody");
        return;
    }
    let (server, tmp) = Server::start("");
    let dir = tmp.path();
    crate::sendmail_modes::open_to_all(dir);
    let blocker = server.dir.join("mail/example.org/bob");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let id = send_to_bob(&server, "held up");
    server.wait_log(&format!("{id}: to=<bob@example.org>"));

    // The listing comes from the daemon, the same as root's.
    let root_list = wait_list(dir, |l| l.contains(&format!("{id} ")));
    for args in [&["queue", "list"][..], &["queue"]] {
        let (code, out, err) = postern_as(true, dir, args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert_eq!(out, root_list);
    }
    let (code, _, err) = postern_as(true, dir, &["flush"]);
    assert_eq!(code, Some(0), "{err}");
    server.wait_log(&format!(
        "flush requested by uid={}",
        crate::sendmail_modes::NOBODY
    ));

    // The rest is root's: refused with a clear error, nothing changed.
    for verb in ["show", "delete", "hold", "release", "requeue"] {
        let (code, _, err) = postern_as(true, dir, &["queue", verb, &id]);
        assert_eq!(code, Some(77), "{verb}: {err}");
        assert!(
            err.contains(&format!("`postern queue {verb}` is for root")),
            "{err}"
        );
    }
    let (code, _, err) = postern_as(true, dir, &["queue", "delete", "ALL"]);
    assert_eq!(code, Some(77), "{err}");
    let list = wait_list(dir, |l| l.contains(&format!("{id} ")));
    assert!(!list.contains(&format!("{id}!")), "{list}");

    // Without a daemon there is no one to ask: EX_UNAVAILABLE, and a
    // flush says the mail system is not running.
    server.kill();
    let (code, out, err) = postern_as(true, dir, &["queue", "list"]);
    assert_eq!(code, Some(69), "{out}{err}");
    assert!(err.contains("the mail system is down"), "{err}");
    let (code, _, err) = postern_as(true, dir, &["flush"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not running"), "{err}");
}

/// `hold ALL`, `release ALL` and `requeue ALL`, as postsuper's `-h ALL`,
/// `-H ALL` and `-r ALL`: every deferred message held, every held one
/// released, every deferred one tried again, each counted; once bob's
/// Maildir can be made, `requeue ALL` delivers them at once.
#[test]
fn hold_release_and_requeue_all() {
    let (server, tmp) = Server::start("");
    let blocker = server.dir.join("mail/example.org/bob");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let ids: Vec<String> = ["a", "b"].iter().map(|s| send_to_bob(&server, s)).collect();
    for id in &ids {
        server.wait_log(&format!("{id}: to=<bob@example.org>"));
    }
    let (ok, _, err) = postern(tmp.path(), &["queue", "hold", "ALL"]);
    assert!(ok && err.contains("Placed on hold: 2 messages"), "{err}");
    wait_list(tmp.path(), |out| out.matches('!').count() == 2);
    let (ok, _, err) = postern(tmp.path(), &["queue", "release", "ALL"]);
    assert!(
        ok && err.contains("Released from hold: 2 messages"),
        "{err}"
    );
    wait_list(tmp.path(), |out| {
        !out.contains('!') && out.contains(&ids[1])
    });

    std::fs::remove_file(&blocker).unwrap();
    // Deferred again by the release's attempt, or about to be: requeue
    // until both are delivered (a message still active is not counted).
    let start = Instant::now();
    let delivered = |log: &str| ids.iter().all(|id| log.contains(&format!("{id}: removed")));
    while !delivered(&server.log()) {
        let (ok, _, err) = postern(tmp.path(), &["queue", "requeue", "ALL"]);
        assert!(ok && err.contains("Requeued: "), "{err}");
        assert!(start.elapsed() < WAIT, "{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}
