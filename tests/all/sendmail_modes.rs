//! sendmail(1)'s other modes and its non-root use, end to end: `nobody`
//! submits through the pickup socket of a root daemon (Postfix's
//! postdrop) and the message carries nobody's address and uid, whatever
//! the submission claims; without a daemon nobody's mail waits in the
//! maildrop (tests/all/maildrop.rs has the rest of that); `-bs` speaks
//! SMTP on stdin/stdout into the queue, with one Received line and the
//! real queue id in its 250; `-bp`, `-q`, `-bi` and the ignored
//! compatibility flags do what scripts expect; unknown options get a
//! usage error and exit 64.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

pub(crate) const NOBODY: u32 = 65_534;

/// Runs `postern --config CONFIG sendmail ARGS` with `input` on stdin, as
/// `nobody` (through setpriv) when `as_nobody`.
pub(crate) fn sendmail(config: &Path, args: &[&str], input: &str, as_nobody: bool) -> Output {
    let mut cmd = postern_as(as_nobody);
    cmd.args(["--config", config.to_str().unwrap(), "sendmail"])
        .args(args)
        .env("HOME", "/");
    run_with_input(&mut cmd, input.as_bytes())
}

/// The command `postern`, run as `nobody` (through setpriv) when
/// `as_nobody`.
pub(crate) fn postern_as(as_nobody: bool) -> Command {
    if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            POSTERN,
        ]);
        c
    } else {
        Command::new(POSTERN)
    }
}

/// Lets `nobody` read the config under `dir` (a tempdir is 0700).
pub(crate) fn open_to_all(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether this test run may become `nobody` (it runs as root).
pub(crate) fn can_be_nobody() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn nobody_submits_through_the_pickup_socket() {
    if !can_be_nobody() {
        eprintln!("skipped: only root may run a command as nobody");
        return;
    }
    let (server, _tmp) = Server::start("");
    open_to_all(&server.dir);
    let config = server.dir.join("postern.toml");
    let out = sendmail(
        &config,
        &["-oi", "-om", "-odi", "alice"],
        "Subject: from nobody\n\nhello\n",
        true,
    );
    assert!(out.status.success(), "{out:?}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(
        text.starts_with("Return-Path: <nobody@mx.test.example>\r\n"),
        "{text}"
    );
    assert!(text.contains("From: nobody@mx.test.example\r\n"), "{text}");
    assert!(
        text.contains(&format!("(Postern, from userid {NOBODY})")),
        "{text}"
    );
    server.wait_log(&format!(": uid={NOBODY} from=<nobody@mx.test.example>"));

    // A submission that claims to be root's is still nobody's: the uid
    // comes from the kernel, not from the bytes.
    let socket = server.dir.join("queue/public/pickup");
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"POSTERN-MAILDROP 1\nuid: 0\nsize: 22\nsender: root@mx.test.example\nrecipient: bob@example.org\n\nSubject: forged\r\n\r\nx\r\n")
s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode().strip())
"#;
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args(["/usr/bin/python3", "-c", script, socket.to_str().unwrap()])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(answer.starts_with("ok "), "{out:?}");
    let got = wait_messages(&server.new_dir("bob"), 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(
        text.contains(&format!("(Postern, from userid {NOBODY})")),
        "{text}"
    );
    server.wait_log(&format!(": uid={NOBODY} from=<root@mx.test.example>"));

    // nobody may drop files in the maildrop, and not list it.
    let maildrop = server.dir.join("queue/maildrop");
    let mode = std::fs::metadata(&maildrop).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o1733);

    // mailq and a queue run are anyone's, through the daemon.
    let out = sendmail(&config, &["-bp"], "", true);
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("Mail queue is empty") || listing.contains(" Request"),
        "{listing}"
    );
    let out = sendmail(&config, &["-q"], "", true);
    assert!(out.status.success(), "{out:?}");
    server.wait_log(&format!("flush requested by uid={NOBODY}"));

    // Without a daemon: no queue run (69) and no listing of a queue
    // nobody may read (69), but mail waits in the maildrop (exit 0).
    server.kill();
    for mode in ["-q", "-bp"] {
        let out = sendmail(&config, &[mode], "", true);
        assert_eq!(out.status.code(), Some(69), "{mode}: {out:?}");
    }
    let out = sendmail(&config, &["alice"], "Subject: late\n\nx\n", true);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_dir(&maildrop).unwrap().count(), 1);
}

#[test]
fn bs_speaks_smtp_on_stdin_and_stdout() {
    let (server, _tmp) = Server::start("");
    open_to_all(&server.dir);
    let config = server.dir.join("postern.toml");
    // Pipelined as a script would write it; the null sender and a
    // relayed recipient are the local user's to use.
    let session = "EHLO client.example\r\n\
                   MAIL FROM:<> RET=HDRS ENVID=bs-1\r\n\
                   RCPT TO:<bob@example.org> NOTIFY=NEVER\r\n\
                   DATA\r\n\
                   Subject: over -bs\r\n\r\nline\r\n..dot\r\n.\r\n\
                   QUIT\r\n";
    // As nobody when the tests run as root, else as whoever runs them.
    let nobody = can_be_nobody();
    let uid = if nobody {
        NOBODY
    } else {
        rustix::process::getuid().as_raw()
    };
    let out = sendmail(&config, &["-bs"], session, nobody);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.starts_with("220 mx.test.example"), "{stdout}");
    assert!(stdout.contains("\r\n250-PIPELINING\r\n"), "{stdout}");
    assert!(stdout.contains("\r\n354 "), "{stdout}");
    assert!(stdout.ends_with("221 2.0.0 Bye\r\n"), "{stdout}");
    // The 250 names the id the daemon queued the message under.
    let id = stdout
        .split("\r\n250 2.0.0 Ok: queued as ")
        .nth(1)
        .and_then(|r| r.split("\r\n").next())
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_owned();
    server.wait_log(&format!("{id}: uid={uid} from=<>"));
    server.wait_log(&format!("{id}: to=<bob@example.org>"));
    let got = wait_messages(&server.new_dir("bob"), 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(text.starts_with("Return-Path: <>\r\n"), "{text}");
    // One Received line, Postfix's shape for -bs.
    assert_eq!(text.matches("Received: ").count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "Received: from client.example (localhost)\r\n\tby mx.test.example (Postern, from userid {uid})\r\n\twith ESMTP id {id}; "
        )),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: over -bs\r\n\r\nline\r\n.dot\r\n"),
        "{text}"
    );
    server.wait_log(&format!(": uid={uid} from=<>"));

    // Bad SMTP gets SMTP errors, not a crash; end of input ends it.
    let out = sendmail(&config, &["-bs"], "HELO\r\nDATA\r\nBOGUS\r\n", false);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("\r\n501 "), "{stdout}");
    assert!(stdout.contains("\r\n503 "), "{stdout}");
    assert!(stdout.contains("\r\n500 5.5.2 "), "{stdout}");
}

#[test]
fn queue_modes_and_compatibility_flags() {
    let (server, _tmp) = Server::start("");
    let config = server.dir.join("postern.toml");
    let code = |args: &[&str]| {
        let out = sendmail(&config, args, "", false);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // -bp is mailq.
    let (status, stdout, _) = code(&["-bp"]);
    assert_eq!(status, Some(0));
    assert!(stdout.contains("Mail queue is empty"), "{stdout}");
    // -q is a flush through the running daemon; -qINTERVAL is ignored.
    assert_eq!(code(&["-q"]).0, Some(0));
    server.wait_log("flushing the queue");
    assert_eq!(code(&["-q30m"]).0, Some(0));
    // The binary linked as mailq and newaliases is sendmail -bp and -bi.
    for (name, says) in [("mailq", "Mail queue is empty"), ("newaliases", "")] {
        let link = server.dir.join(name);
        std::os::unix::fs::symlink(POSTERN, &link).unwrap();
        let out = Command::new(&link)
            .env("POSTERN_CONFIG", &config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(says),
            "{out:?}"
        );
    }
    // -bi and -I are newaliases.
    assert_eq!(code(&["-bi"]).0, Some(0));
    assert_eq!(code(&["-I"]).0, Some(0));
    // Unknown options and unsupported modes: a usage error, exit 64.
    for bad in [&["-Z", "bob"][..], &["-bv", "bob"], &["-bd"], &["-bz"]] {
        let (status, _, stderr) = code(bad);
        assert_eq!(status, Some(64), "{bad:?}: {stderr}");
        assert!(stderr.starts_with("sendmail: fatal: "), "{stderr}");
        assert!(stderr.contains("usage: sendmail"), "{stderr}");
    }
    // -t with -r and -F, -N and -V, among ignored flags.
    let out = sendmail(
        &config,
        &[
            "-t",
            "-r",
            "robot@example.org",
            "-F",
            "Robot",
            "-N",
            "never",
            "-V",
            "env-7",
            "-oem",
            "-v",
            "-B",
            "8BITMIME",
        ],
        "To: alice@example.org\nSubject: t\n\nbody\n",
        false,
    );
    assert!(out.status.success(), "{out:?}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(
        text.starts_with("Return-Path: <robot@example.org>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("From: Robot <robot@example.org>\r\n"),
        "{text}"
    );
}
