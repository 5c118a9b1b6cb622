//! The LMTP service's UNIX socket after a root start (issue 10): bound
//! before the drop to `mail_owner`, it is that user's and group's, mode
//! 0660, unless the service names its `user`, `group` and `mode` (as
//! Postfix's master(8) makes its sockets as `mail_owner`, and Dovecot's
//! `unix_listener` takes those keys); the directory made for it is
//! `mail_owner`'s, so the daemon, no longer root, removes its socket at
//! stop; a restart makes it again at the same path, and one after a crash
//! replaces the stale one. Clients are real `smtplib.LMTP` processes
//! running as the socket's owner and as a user it does not let in. Needs
//! root (useradd, the drop): skipped with a message otherwise.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::system_accounts::Account;

/// One LMTP transaction to alice on the socket `argv[1]`: `sent CODE`,
/// or `denied` when the socket refuses this process.
const LMTP: &str = r#"
import smtplib, sys
try:
    c = smtplib.LMTP(sys.argv[1])
except PermissionError:
    print("denied")
    sys.exit(0)
c.ehlo("client.test.example")  # LHLO: smtplib.LMTP sends it for ehlo()
refused = c.sendmail("s@client.test.example", ["alice@example.org"], "Subject: lmtp\r\n\r\nhi\r\n")
print("sent", refused or 250)
c.quit()
"#;

/// Runs [`LMTP`] against `socket` as `uid` and `gid` (and no other group),
/// with the system's python, which any user may run.
fn lmtp_as(socket: &Path, (uid, gid): (u32, u32)) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(LMTP)
        .arg(socket)
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python as {uid}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The owner, group and permission bits of `path`.
fn owned(path: &Path) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(meta.file_type().is_socket() || meta.is_dir(), "{path:?}");
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// Writes the config (mail_owner `owner`, lmtp on `socket` with `keys`)
/// and starts the server.
fn start(dir: &Path, owner: &Account, socket: &Path, keys: &str) -> Server {
    let extra = format!(
        "mail_owner = \"{}\"\n\
         [[service]]\nname = \"lmtp\"\nlisten = \"unix:{}\"\n{keys}",
        owner.name,
        socket.display()
    );
    std::fs::write(dir.join("postern.toml"), config_text(dir, &extra)).unwrap();
    let server = Server::start_in(dir);
    server.wait_log(&format!("listening on lmtp unix:{}", socket.display()));
    server.wait_log("running as mail_owner");
    server
}

/// Sends SIGTERM and waits until the server has removed its socket.
fn stop(server: Server, socket: &Path) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(server.pid()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let start = Instant::now();
    while socket.exists() {
        assert!(
            start.elapsed() < WAIT,
            "the socket outlived the stop:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.wait_log("terminating on signal");
    server.kill();
}

#[test]
fn the_lmtp_socket_is_mail_owners_after_a_root_start_and_survives_restarts() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root may drop privileges and add system users");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("users"), USERS).unwrap();
    let owner = Account::create(&dir.join("owner"));
    let stranger = Account::create(&dir.join("stranger"));
    // A directory that does not exist yet: made for the socket.
    let socket = dir.join("run/postern/lmtp");

    let server = start(dir, &owner, &socket, "");
    assert_eq!(owned(&socket), (owner.uid, owner.gid, 0o660));
    for made in ["run", "run/postern"] {
        let (uid, gid, _) = owned(&dir.join(made));
        assert_eq!((uid, gid), (owner.uid, owner.gid), "{made}");
    }
    // Its owner's group gets in and delivers; another user does not.
    assert_eq!(lmtp_as(&socket, (owner.uid, owner.gid)), "sent 250");
    wait_messages(&server.new_dir("alice"), 1);
    assert_eq!(lmtp_as(&socket, (stranger.uid, stranger.gid)), "denied");

    // A stop removes the socket (the daemon is not root any more); a
    // restart makes it at the same path, with the service's own user and
    // mode this time.
    stop(server, &socket);
    let server = start(
        dir,
        &owner,
        &socket,
        &format!("user = \"{}\"\nmode = \"0600\"\n", stranger.name),
    );
    assert_eq!(owned(&socket), (stranger.uid, owner.gid, 0o600));
    assert_eq!(lmtp_as(&socket, (stranger.uid, stranger.gid)), "sent 250");
    assert_eq!(lmtp_as(&socket, (owner.uid, owner.gid)), "denied");
    wait_messages(&server.new_dir("alice"), 2);

    // A crash leaves the socket behind: the next start replaces it.
    server.kill();
    assert!(socket.exists());
    let server = start(dir, &owner, &socket, "");
    assert_eq!(owned(&socket), (owner.uid, owner.gid, 0o660));
    assert_eq!(lmtp_as(&socket, (owner.uid, owner.gid)), "sent 250");
    wait_messages(&server.new_dir("alice"), 3);
    drop(server);
    drop((owner, stranger));
}
