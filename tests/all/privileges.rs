//! Privilege separation, end to end (Postfix's `mail_owner`): started as
//! root with `mail_owner` a user the test makes, the daemon's every thread
//! runs as that user once its ports are bound, its data is that user's,
//! mail for a system account still lands in the account's Maildir owned by
//! the account, an alias `|command` still runs as the alias file's owner,
//! and a system account's password still logs in (the shadow file is read
//! by the root helper, which shows as a separate root process). A missing
//! `mail_owner` stops start-up naming both fixes; `mail_owner = "root"`
//! warns. Needs root (useradd, chown): skipped with a message otherwise.
//! The helper's refusal of forged requests is unit-tested in host/privsep.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::system_accounts::{Account, tree};

pub(crate) fn skip_unless_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    eprintln!("skipped: only root may drop privileges and add system users");
    true
}

/// The `Uid:` and `Gid:` lines of every thread of `pid`.
fn thread_ids(pid: u32) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let line = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .unwrap()
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        };
        all.push((line("Uid:"), line("Gid:")));
    }
    all
}

/// Sets `dir` up for a root start: open to `mail_owner` and the users
/// (0755: they must reach their own files under it), the `mail_owner`
/// account (home `dir/owner`), a system account (home `dir/home`) with
/// `password`, and the test users file; the two accounts, the owner
/// first.
pub(crate) fn accounts(dir: &Path, password: &str) -> (Account, Account) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let owner = Account::create(&dir.join("owner"));
    let user = Account::create(&dir.join("home"));
    set_password(&user, password);
    std::fs::write(dir.join("users"), USERS).unwrap();
    (owner, user)
}

/// Gives the system account `user` the password `password` (chpasswd).
pub(crate) fn set_password(user: &Account, password: &str) {
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(chpasswd.stdin.take().unwrap(), "{}:{password}", user.name).unwrap();
    assert!(chpasswd.wait().unwrap().success());
}

/// Writes `dir/postern.toml`: the test config with `extra` main.cf lines
/// and system accounts on, and each of `services` listening on loopback
/// beside smtp.
pub(crate) fn system_config(dir: &Path, extra: &str, services: &[&str]) {
    let mut config =
        config_text(dir, extra).replace("[auth]\n", "[auth]\nsystem_accounts = true\n");
    for name in services {
        config += &format!("[[service]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\n");
    }
    std::fs::write(dir.join("postern.toml"), config).unwrap();
}

/// Sends a message with `subject` to the system account `user` over SMTP
/// at `smtp`, which must accept it; the recipient address.
pub(crate) fn mail_to(smtp: SocketAddr, user: &Account, subject: &str) -> String {
    let mut c = Client::connect(smtp);
    let rcpt = format!("{}@example.org", user.name);
    let body = format!("Subject: {subject}\r\n\r\nhi\r\n");
    send_accepted(&mut c, "sender@example.net", &[&rcpt], &body);
    rcpt
}

/// The pid of the root helper, from the daemon's log.
pub(crate) fn helper_pid(log: &str) -> String {
    log.split("privileged helper pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

/// AUTH on submission with a wrong password, then the right one.
const LOGIN: &str = r#"
import smtplib, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test.example", timeout=10) as s:
    s.ehlo()
    try:
        s.login(user, "not-" + pw)
        print("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        print("refused", e.smtp_code)
    print("login", s.login(user, pw)[0])
"#;

#[test]
fn a_root_start_runs_as_mail_owner_and_still_delivers_as_each_user() {
    if skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (owner, user) = accounts(dir, "Drop-Test-1");
    // An alias file owned by the user: its command runs as the user.
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(user.uid), Some(user.gid)).unwrap();
    let aliases = dir.join("aliases");
    std::fs::write(
        &aliases,
        format!(
            "runner: \"|id -u > {0}/uid; id -g >> {0}/uid\"\n",
            out.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::chown(&aliases, Some(user.uid), Some(user.gid)).unwrap();
    let extra = format!(
        "mail_owner = \"{}\"\n\
         alias_maps = \"{}\"\n\
         local_recipient_maps = \"unix:passwd.byname, $alias_maps\"\n\
         auth_failure_delay = \"0s\"\n",
        owner.name,
        aliases.display()
    );
    system_config(dir, &extra, &["submission"]);
    let server = Server::start_in(dir);
    let log = server.wait_log("running as mail_owner");
    assert!(!log.contains("without privilege separation"), "{log}");

    // Every thread of the daemon is mail_owner's, real, effective, saved
    // and file system ids alike.
    let want = (
        format!("{0} {0} {0} {0}", owner.uid),
        format!("{0} {0} {0} {0}", owner.gid),
    );
    let threads = thread_ids(server.pid());
    assert!(threads.len() > 1, "{threads:?}");
    assert!(
        threads.iter().all(|t| *t == want),
        "{threads:?} != {want:?}"
    );
    // Its data is mail_owner's.
    for path in [dir.join("queue"), dir.join("queue/pid/master.pid")] {
        assert_eq!(
            std::fs::metadata(&path).unwrap().uid(),
            owner.uid,
            "{path:?}"
        );
    }
    // The helper is a separate process that stays root.
    let helper: u32 = helper_pid(&log).parse().unwrap();
    assert_eq!(thread_ids(helper)[0].0, "0 0 0 0");
    let cmdline = std::fs::read(format!("/proc/{helper}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("privsep-helper"));

    // Mail for the system account: its Maildir, every file its own.
    let mut c = Client::connect(server.smtp);
    let rcpt = format!("{}@example.org", user.name);
    send_accepted(
        &mut c,
        "sender@example.net",
        &[&rcpt, "runner@example.org"],
        "Subject: dropped\r\n\r\nhi\r\n",
    );
    let maildir = dir.join("home/Maildir");
    let got = wait_messages(&maildir.join("new"), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: dropped"));
    for path in tree(&maildir) {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid), "{path:?}");
    }
    // The alias command ran as the alias file's owner.
    let uid_file = out.join("uid");
    let start = Instant::now();
    while std::fs::read_to_string(&uid_file).map_or(true, |t| t.lines().count() < 2) {
        assert!(
            start.elapsed() < WAIT,
            "no command output; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&uid_file).unwrap(),
        format!("{}\n{}\n", user.uid, user.gid)
    );
    assert_eq!(std::fs::metadata(&uid_file).unwrap().uid(), user.uid);

    // A system account logs in though the daemon cannot read /etc/shadow.
    let said = python(
        LOGIN,
        &[
            &server.listening("submission").port().to_string(),
            &user.name,
            "Drop-Test-1",
        ],
    );
    assert_eq!(said, "refused 535\nlogin 235\n", "{}", server.log());
    assert!(
        !server.log().contains("refused a request"),
        "{}",
        server.log()
    );

    // The helper goes with the daemon.
    server.kill();
    let start = Instant::now();
    while std::fs::read_to_string(format!("/proc/{helper}/status"))
        .is_ok_and(|s| !s.contains("State:\tZ"))
    {
        assert!(start.elapsed() < WAIT, "the helper outlived the daemon");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((user, owner));
}

#[test]
fn a_missing_mail_owner_stops_start_up_naming_both_fixes() {
    if skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    test_config(tmp.path(), "mail_owner = \"no-such-pstrn\"\n");
    let mut process = Process::start(tmp.path());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < WAIT, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = process.stderr();
    assert!(!status.success());
    assert!(err.contains("no user \"no-such-pstrn\""), "{err}");
    assert!(err.contains("useradd --system --user-group"), "{err}");
    assert!(err.contains("mail_owner = \"root\""), "{err}");
    assert!(!tmp.path().join("queue/pid/master.pid").exists());
}

#[test]
fn mail_owner_root_stays_root_and_warns() {
    if skip_unless_root() {
        return;
    }
    // The harness writes mail_owner = "root" for tests that name none.
    let (server, _tmp) = Server::start("");
    server.wait_log("mail_owner = \"root\": running without privilege separation");
    assert_eq!(thread_ids(server.pid())[0].0, "0 0 0 0");
}
