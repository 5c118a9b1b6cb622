//! System accounts as local recipients, end to end: with
//! `local_recipient_maps = "unix:passwd.byname"` a user made with
//! useradd (home in a temporary directory, removed afterwards) receives
//! mail over SMTP into `~user/Maildir/`, every file and directory of it
//! owned by that user, though the server runs as root; without the
//! setting the same user is unknown; root is never a mailbox; a bad
//! table type is a config error naming the key.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A system account for the length of a test: made with useradd, its home
/// in `home`, removed with userdel when dropped.
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Tells apart the accounts of tests running at once in this process.
static ACCOUNTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Account {
    pub(crate) fn create(home: &Path) -> Account {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(remove_orphans);
        let n = ACCOUNTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("pt{}x{n}", std::process::id());
        let out = Command::new("useradd")
            .args(["-M", "-U", "-s", "/usr/sbin/nologin", "-d"])
            .arg(home)
            .arg(&name)
            .output()
            .unwrap();
        assert!(out.status.success(), "useradd: {out:?}");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        std::fs::create_dir(home).unwrap();
        std::os::unix::fs::chown(home, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
        Account { name, uid, gid }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// Removes the accounts that test runs killed before their clean-up left
/// behind (`pt<pid>x<n>` whose process is gone), so that they do not pile
/// up in /etc/passwd run after run. Accounts of test processes still
/// running, this one included, are left alone.
fn remove_orphans() {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return;
    };
    for name in passwd.lines().filter_map(|line| line.split(':').next()) {
        let pid = name
            .strip_prefix("pt")
            .and_then(|rest| rest.split_once('x'))
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("userdel").arg(name).output();
        }
    }
}

/// Every path under `dir`, `dir` included.
pub(crate) fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_owned()];
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            all.extend(tree(&entry.unwrap().path()));
        }
    }
    all
}

#[test]
fn system_users_get_mail_in_their_home_as_themselves() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root may add a system user");
        return;
    }
    let (server, tmp) = Server::start("local_recipient_maps = \"unix:passwd.byname, $alias_maps\"");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = tmp.path().join("home");
    let account = Account::create(&home);
    let mut c = Client::connect(server.smtp);
    let rcpt = format!("{}@example.org", account.name);
    let reply = send_message(
        &mut c,
        "sender@example.net",
        &[&rcpt],
        "Subject: to a system user\r\n\r\nhi\r\n",
    );
    assert!(reply.starts_with("250 "), "{reply}");
    // Root is not a mailbox; strangers are unknown.
    c.cmd("MAIL FROM:<sender@example.net>");
    let root = c.cmd("RCPT TO:<root@example.org>");
    assert!(root.starts_with("550 5.1.1"), "{root}");
    let nobody = c.cmd("RCPT TO:<no-such-system-user@example.org>");
    assert!(nobody.starts_with("550 5.1.1"), "{nobody}");
    c.cmd("QUIT");

    let maildir = home.join("Maildir");
    let got = wait_messages(&maildir.join("new"), 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(
        text.contains(&format!("Delivered-To: {rcpt}\r\n")),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: to a system user\r\n\r\nhi\r\n"),
        "{text}"
    );
    for path in tree(&maildir) {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (account.uid, account.gid),
            "{} is not the user's",
            path.display()
        );
    }
    server.wait_log(&format!("to=<{rcpt}>, relay=local"));
    server.wait_log("status=sent (delivered to maildir)");
}

#[test]
fn without_the_setting_system_users_are_unknown() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    c.cmd("EHLO client.example");
    c.cmd("MAIL FROM:<sender@example.net>");
    // `nobody` exists on every system, and is no recipient by default.
    let reply = c.cmd("RCPT TO:<nobody@example.org>");
    assert!(reply.starts_with("550 5.1.1"), "{reply}");
}

#[test]
fn a_bad_map_is_a_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    for (value, says) in [
        ("unix:group.byname", "unix:group.byname"),
        ("ldap:/etc/ldap.cf", "expected unix:passwd.byname"),
    ] {
        let extra = format!("local_recipient_maps = \"{value}\"");
        let stderr = check_refuses(tmp.path(), &extra, "local_recipient_maps");
        assert!(stderr.contains(says), "{stderr}");
    }
}
