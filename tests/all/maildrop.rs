//! Mail submitted while the daemon is down (Postfix's postdrop and
//! pickup, without a setgid helper): root and `nobody` both get exit 0,
//! each file is private to its writer (mode 0600 in a 1733 maildrop that
//! only the daemon's user can list), and at start the daemon queues each
//! one as its owner's, whatever the file claims; a garbage, truncated or
//! special file is moved to `corrupt/` with a log line naming it; a
//! `sendmail -bs` session while the daemon is down is queued too.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::sendmail_modes::{NOBODY, can_be_nobody, open_to_all, sendmail};
use crate::support::*;

/// Runs `args` as `user` (a name from /etc/passwd) with no groups.
fn run_as(user: &str, args: &[&str]) -> Output {
    Command::new("setpriv")
        .arg(format!("--reuid={user}"))
        .args(["--regid=nogroup", "--clear-groups"])
        .args(args)
        .output()
        .unwrap()
}

/// The finished files in the maildrop (not `.NAME` ones being written).
fn drop_files(maildrop: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(maildrop)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

#[test]
fn mail_dropped_while_the_daemon_is_down_is_delivered_as_its_owners() {
    if !can_be_nobody() {
        eprintln!("skipped: only root may run a command as nobody");
        return;
    }
    let (server, tmp) = Server::start("");
    let dir = tmp.path().to_owned();
    open_to_all(&dir);
    let config = dir.join("postern.toml");
    let maildrop = dir.join("queue/maildrop");
    let mode = std::fs::metadata(&maildrop).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o1733);
    // Down as after a crash: the pickup socket is left, nobody answers.
    server.kill();

    // nobody and root submit, and neither is refused.
    let out = sendmail(
        &config,
        &["alice"],
        "Subject: while down\n\nfrom nobody\n",
        true,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let out = sendmail(&config, &["bob"], "Subject: root while down\n\nx\n", false);
    assert!(out.status.success(), "{out:?}");
    let files = drop_files(&maildrop);
    assert_eq!(files.len(), 2, "{files:?}");
    let owned_by = |uid: u32| {
        files
            .iter()
            .find(|f| std::fs::metadata(f).unwrap().uid() == uid)
            .unwrap()
            .clone()
    };
    let (nobodys, roots) = (owned_by(NOBODY), owned_by(0));
    for f in [&nobodys, &roots] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
        // An unguessable name: the time, then 128 random bits.
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let random = name.rsplit('.').next().unwrap();
        assert_eq!(random.len(), 32, "{name}");
    }

    // Another user can neither list the maildrop nor read, replace or
    // remove a file in it: not root's, and not nobody's (as `daemon`).
    let md = maildrop.to_str().unwrap();
    let root_file = roots.to_str().unwrap();
    assert!(!run_as("nobody", &["ls", md]).status.success());
    assert!(!run_as("nobody", &["cat", root_file]).status.success());
    assert!(!run_as("nobody", &["rm", "-f", root_file]).status.success());
    let swap = format!("echo x > {md}/x && mv -f {md}/x {root_file}");
    assert!(!run_as("nobody", &["sh", "-c", &swap]).status.success());
    assert!(roots.exists());
    let out = run_as("daemon", &["cat", nobodys.to_str().unwrap()]);
    assert!(!out.status.success(), "{out:?}");
    assert!(nobodys.exists());

    // What nobody can drop by hand: garbage, a file cut short, a FIFO, a
    // link to a file only root may read, and a well-made file that claims
    // to be root's.
    let claim = "Subject: forged\r\n\r\nclaim\r\n";
    let forged = format!(
        "POSTERN-MAILDROP 1\nuid: 0\nsize: {}\nsender: root@mx.test.example\nrecipient: alice@example.org\n\n{claim}",
        claim.len()
    );
    let cut = "POSTERN-MAILDROP 1\nuid: 65534\nsize: 500\nsender: nobody@mx.test.example\nrecipient: alice@example.org\n\nSubject: cut\r\n";
    let script = format!(
        "cd {md} && printf 'not a maildrop file' > junk && printf '{}' > cut && printf '{}' > forged && mkfifo fifo && ln -s /etc/shadow link && printf x > \"$(printf 'evil\\nline')\"",
        cut.replace('\n', "\\n").replace('\r', "\\r"),
        forged.replace('\n', "\\n").replace('\r', "\\r"),
    );
    let out = run_as("nobody", &["sh", "-c", &script]);
    assert!(out.status.success(), "{out:?}");

    // A `sendmail -bs` session while the daemon is down: its 250 names
    // the id its maildrop file begins with.
    let session = "EHLO client.example\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: bs while down\r\n\r\nx\r\n.\r\nQUIT\r\n";
    let out = sendmail(&config, &["-bs"], session, true);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let bs_id = stdout
        .split("250 2.0.0 Ok: queued as ")
        .nth(1)
        .and_then(|r| r.split("\r\n").next())
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_owned();
    assert!(
        drop_files(&maildrop).iter().any(|f| f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&bs_id)),
        "{bs_id}"
    );

    let server = Server::start_in(&dir);
    let alices = wait_messages(&server.new_dir("alice"), 2);
    let bobs = wait_messages(&server.new_dir("bob"), 2);
    let text = |m: &Vec<u8>| String::from_utf8_lossy(m).into_owned();
    let find = |all: &[Vec<u8>], subject: &str| {
        all.iter()
            .map(text)
            .find(|t| t.contains(subject))
            .unwrap_or_else(|| panic!("no {subject:?} in {all:?}"))
    };
    let mine = find(&alices, "Subject: while down");
    assert!(
        mine.starts_with("Return-Path: <nobody@mx.test.example>\r\n"),
        "{mine}"
    );
    assert!(
        mine.contains(&format!("(Postern, from userid {NOBODY})")),
        "{mine}"
    );
    let forged = find(&alices, "Subject: forged");
    assert!(
        forged.contains(&format!("(Postern, from userid {NOBODY})")),
        "{forged}"
    );
    let roots = find(&bobs, "Subject: root while down");
    assert!(roots.contains("(Postern, from userid 0)"), "{roots}");
    let bs = find(&bobs, "Subject: bs while down");
    assert_eq!(bs.matches("Received: ").count(), 1, "{bs}");
    assert!(
        bs.contains("Received: from client.example (localhost)"),
        "{bs}"
    );
    let log = server.wait_log(&format!(": maildrop file {bs_id}."));
    assert!(
        log.contains(&format!(": uid={NOBODY} from=<nobody@mx.test.example>")),
        "{log}"
    );

    // Every bad file was moved aside by name, and the maildrop is empty.
    for name in ["junk", "cut", "fifo", "link", "evil?line"] {
        let log = server.wait_log(&format!("maildrop/{name}: "));
        assert!(
            log.contains(&format!(
                "moved to {}/queue/corrupt/maildrop-{name}",
                dir.display()
            )),
            "{name}: {log}"
        );
        let kept = format!("maildrop-{}", name.replace('?', "\n"));
        let kept = dir.join("queue/corrupt").join(kept);
        assert!(std::fs::symlink_metadata(kept).is_ok(), "{name}");
    }
    // A name cannot forge a log line.
    assert!(!server.log().contains("\nline: "), "{}", server.log());
    assert!(server.log().contains("truncated"), "{}", server.log());
    assert!(drop_files(&maildrop).is_empty());
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
