//! sendmail(1) end to end: a message piped into `postern sendmail` (and
//! into a link to the binary named `sendmail`, as `mail` and cron call
//! it) lands in the Maildir through the maildrop and the daemon's pickup,
//! with the headers cleanup adds; `-t` takes recipients from the header
//! and drops `Bcc:`; mail dropped while the daemon is down is picked up
//! at start; bad use gets sysexits codes.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

/// Runs `program args` with `input` on stdin and POSTERN_CONFIG set.
fn pipe(program: &Path, config: &Path, args: &[&str], input: &str) -> Output {
    let mut command = Command::new(program);
    command.args(args).env("POSTERN_CONFIG", config);
    run_with_input(&mut command, input.as_bytes())
}

fn postern_sendmail(config: &Path, args: &[&str], input: &str) -> Output {
    let mut all = vec!["--config", config.to_str().unwrap(), "sendmail"];
    all.extend_from_slice(args);
    pipe(Path::new(POSTERN), config, &all, input)
}

#[test]
fn piped_messages_reach_the_maildir() {
    let (server, _tmp) = Server::start("");
    let config = server.dir.join("postern.toml");
    let out = postern_sendmail(
        &config,
        &["-F", "Cron Daemon", "alice"],
        "Subject: from cron\n\nline one\n.\nnot read\n",
    );
    assert!(out.status.success(), "{out:?}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    let uid = rustix::process::getuid().as_raw();
    assert!(
        text.contains(&format!(
            "Received: by mx.test.example (Postern, from userid {uid})\r\n\tid "
        )),
        "{text}"
    );
    assert!(text.contains("\r\nMessage-Id: <"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
    assert!(text.contains("\r\nFrom: Cron Daemon <"), "{text}");
    assert!(
        text.ends_with("Subject: from cron\r\n\r\nline one\r\n"),
        "{text}"
    );
    assert!(text.starts_with("Return-Path: <"), "{text}");
    let log = server.wait_log("postern/pickup");
    assert!(log.contains(&format!(": uid={uid} from=<")), "{log}");
    assert!(log.contains("status=sent (delivered to maildir)"), "{log}");

    // The binary under the name `sendmail`, as /usr/sbin/sendmail; -t
    // and -oi as mutt and git send-email use them.
    let link = server.dir.join("sendmail");
    std::os::unix::fs::symlink(POSTERN, &link).unwrap();
    let out = pipe(
        &link,
        &config,
        &["-t", "-oi", "-f", "robot@example.org"],
        "From: Robot <robot@example.org>\nTo: Bob <bob@example.org>\nBcc: alice@example.org\nSubject: t\n\n.\nkept after the dot\n",
    );
    assert!(out.status.success(), "{out:?}");
    let bobs = wait_messages(&server.new_dir("bob"), 1);
    let alices = wait_messages(&server.new_dir("alice"), 2);
    // Maildir names need not sort in delivery order: take the one that is
    // not the cron message.
    let bcc = alices
        .iter()
        .find(|m| !String::from_utf8_lossy(m).contains("Subject: from cron"))
        .unwrap();
    for m in [&bobs[0], bcc] {
        let text = String::from_utf8_lossy(m);
        assert!(
            text.starts_with("Return-Path: <robot@example.org>\r\n"),
            "{text}"
        );
        assert!(!text.contains("Bcc"), "{text}");
        assert!(
            text.contains("From: Robot <robot@example.org>\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("Subject: t\r\n\r\n.\r\nkept after the dot\r\n"),
            "{text}"
        );
    }
}

#[test]
fn mail_waits_in_the_maildrop_until_the_daemon_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = test_config(dir, "");
    let out = postern_sendmail(&config, &["bob@example.org"], "Subject: early\n\nx\n");
    assert!(out.status.success(), "{out:?}");
    let dropped: Vec<_> = std::fs::read_dir(dir.join("queue/maildrop"))
        .unwrap()
        .collect();
    assert_eq!(dropped.len(), 1);
    let server = Server::start_in(dir);
    let got = wait_messages(&server.new_dir("bob"), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: early\r\n"));
    assert_eq!(
        std::fs::read_dir(dir.join("queue/maildrop"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn bad_use_gets_sysexits_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = test_config(dir, "");
    let code = |args: &[&str], input: &str| {
        let out = postern_sendmail(&config, args, input);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(stderr.starts_with("sendmail: fatal: "), "{stderr}");
        out.status.code().unwrap()
    };
    assert_eq!(code(&[], "Subject: x\n\nx\n"), 64);
    assert_eq!(code(&["-Q", "bob"], "x\n"), 64);
    assert_eq!(code(&["-N", "sometimes", "bob"], "x\n"), 64);
    assert_eq!(code(&["-t"], "Subject: nobody\n\nx\n"), 65);
    assert_eq!(code(&["bad address@@"], "x\n"), 67);
    let big = "x".repeat(200_000);
    assert_eq!(code(&["-i", "bob"], &big), 65);
    // Nothing was dropped by any of them.
    let dropped = std::fs::read_dir(dir.join("queue/maildrop"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(dropped, 0);
}
