//! What a root start leaves usable once the daemon runs as `mail_owner`
//! (issue 10): the Prometheus endpoint on a port below 1024, bound with
//! the other listeners before the drop, scrapes as usual; directories the
//! root helper makes for a users-file uid (the domain's directory under
//! `virtual_mailbox_base`) are `mail_owner`'s, so the daemon itself still
//! makes the homes of users without a uid beside them. Needs root
//! (useradd, the drop, a privileged port): skipped with a message
//! otherwise. tests/all/lmtp_socket.rs covers the LMTP socket.

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use crate::metrics_ops::{sample, scrape};
use crate::support::*;
use crate::system_accounts::{Account, tree};

/// A port below 1024 free on 127.0.0.1 a moment ago.
fn privileged_port() -> u16 {
    (900..1000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("no free port in 900-999")
}

/// The owner, group and permission bits of `path`.
fn owned(path: &Path) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

#[test]
fn after_a_root_start_metrics_and_helper_made_directories_serve_mail_owner() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root may drop privileges and bind a port below 1024");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let owner = Account::create(&dir.join("owner"));
    // A users-file entry with a uid (Dovecot's passwd-file uid:gid), its
    // home the default under virtual_mailbox_base: the helper makes it.
    let carol = Account::create(&dir.join("carol-account"));
    std::fs::write(
        dir.join("users"),
        format!(
            "{USERS}carol@example.org:{{PLAIN}}secret:{}:{}::\n",
            carol.uid, carol.gid
        ),
    )
    .unwrap();
    let port = privileged_port();
    let extra = format!(
        "mail_owner = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
        owner.name
    );
    std::fs::write(dir.join("postern.toml"), config_text(dir, &extra)).unwrap();
    let server = Server::start_in(dir);
    server.wait_log(&format!(
        "listening on metrics http://127.0.0.1:{port}/metrics"
    ));
    server.wait_log("running as mail_owner");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    assert!(
        status.contains(&format!("\nUid:\t{0}\t{0}\t{0}\t{0}\n", owner.uid)),
        "{status}"
    );
    // virtual_mailbox_base was made at start and handed over.
    let base = dir.join("mail");
    let (uid, gid, mode) = owned(&base);
    assert_eq!((uid, gid), (owner.uid, owner.gid));
    assert!(!base.join("example.org").exists());

    // carol first: the helper makes example.org and carol's home.
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "s@client.test.example",
        &["carol@example.org"],
        "Subject: carol\r\n\r\nhi\r\n",
    );
    wait_messages(&server.new_dir("carol"), 1);
    assert_eq!(
        owned(&base.join("example.org")),
        (owner.uid, owner.gid, mode),
        "a copy of the mail root, not root's"
    );
    assert_eq!(
        owned(&base.join("example.org/carol")),
        (carol.uid, carol.gid, 0o700)
    );
    for path in tree(&base.join("example.org/carol")) {
        assert_eq!(owned(&path).0, carol.uid, "{path:?}");
    }
    // Then alice, who has no uid: the daemon, as mail_owner, makes her
    // home beside carol's.
    send_accepted(
        &mut c,
        "s@client.test.example",
        &["alice@example.org"],
        "Subject: alice\r\n\r\nhi\r\n",
    );
    c.cmd("QUIT");
    wait_messages(&server.new_dir("alice"), 1);
    assert_eq!(owned(&base.join("example.org/alice")).0, owner.uid);

    // The endpoint on the privileged port answers after the drop.
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    server.wait_log_count("status=sent", 2);
    let (status, body) = scrape(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(sample(&body, "postern_smtpd_connections_total"), Some(1.0));
    assert_eq!(sample(&body, "postern_log_lines_dropped_total"), Some(0.0));
    assert!(
        body.lines()
            .any(|l| l.starts_with("postern_deliveries_total{")
                && l.contains("status=\"sent\"")
                && l.ends_with(" 2")),
        "{body}"
    );
    drop(server);
    drop((owner, carol));
}
