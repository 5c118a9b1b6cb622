//! The log lines of POP3 and IMAP session processes (issue 10): a login
//! served by a process of the mailbox's owner logs its `Login:` and
//! `Disconnected:` lines where the daemon's own lines go, through the
//! daemon's log channel (host/server/src/log/channel.rs), tagged with the
//! session process's program and pid: into `maillog_file`, or to syslog
//! with `log_output = "syslog"`, and no longer on the helper's stderr;
//! at the daemon's level (`POSTERN_LOG`), though their environment is
//! cleared.
//! Root only, as privileges_mail.rs (whose set-up and clients these are).
//! The channel's caps (line length, lines a second, a flood that cannot
//! block the daemon) are unit-tested with it.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::time::Duration;

use crate::privileges_mail::{Running, Setup, field, skip_unless_root, start_logging};
use crate::support::*;

/// Runs the `logins` client (a POP3 session, then an IMAP one); the two
/// session processes' pids, once both sessions' last lines are logged.
fn logins(setup: &Setup) -> (String, String) {
    let out = setup.run("logins");
    let field = |key: &str| field(&out, key, "");
    assert_eq!(field("pop-after"), "gone", "{out}");
    assert_eq!(field("imap-after"), "gone", "{out}");
    let (pop, imap) = (field("pop-pid"), field("imap-pid"));
    setup.server.wait_log(&format!(
        "postern/pop3[{pop}]: pop3({}): Disconnected",
        setup.user.name
    ));
    setup.server.wait_log(&format!(
        "postern/imap[{imap}]: imap({}): Disconnected",
        setup.user.name
    ));
    (pop, imap)
}

/// The lines of session process `pid` with `program`'s tag in `log`.
fn lines_of<'a>(log: &'a str, program: &str, pid: &str) -> Vec<&'a str> {
    let tag = format!("postern/{program}[{pid}]: ");
    log.lines().filter(|l| l.contains(&tag)).collect()
}

/// The Login line (with the process's own pid as `mpid`, and the
/// daemon's format) and the Disconnected line of each session are in
/// `maillog_file`; the helper's stderr (the server's) has neither.
#[test]
fn session_lines_reach_maillog_file_with_the_childs_pid() {
    if skip_unless_root() {
        return;
    }
    let setup = start_logging("maillog_file = \"{dir}/maillog\"\n", |dir| {
        Running::File(Process::start(dir), dir.join("maillog"))
    });
    let (pop, imap) = logins(&setup);
    let log = setup.server.log();
    let daemon = setup.server.pid().to_string();
    assert_ne!(pop, daemon);
    for (program, pid) in [("pop3", &pop), ("imap", &imap)] {
        let lines = lines_of(&log, program, pid);
        let login = format!("Login: user=<{}>, method=PLAIN", setup.user.name);
        let logged_in: Vec<_> = lines.iter().filter(|l| l.contains(&login)).collect();
        assert_eq!(logged_in.len(), 1, "{log}");
        assert!(logged_in[0].contains(&format!("mpid={pid}")), "{log}");
        // The daemon's shape: an RFC 3339 time and the host first.
        assert!(logged_in[0].starts_with("20"), "{log}");
        assert!(lines.iter().any(|l| l.contains("Disconnected")), "{log}");
    }
    // At the default level, a session process's debug line is not logged.
    assert!(!log.contains("session process of uid"), "{log}");
    let Running::File(process, _) = setup.server else {
        unreachable!()
    };
    let stderr = process.stderr();
    assert!(!stderr.contains("Login:"), "{stderr}");
    assert!(!stderr.contains("Disconnected"), "{stderr}");
}

/// With `log_output = "syslog"`, the same lines reach the syslog socket
/// as the daemon's own do (`<22>`: mail.info), tagged with the session
/// process's pid.
#[test]
fn session_lines_reach_syslog_with_the_childs_pid() {
    if skip_unless_root() {
        return;
    }
    let extra = "log_output = \"syslog\"\nsyslog_socket = \"{dir}/log\"\n";
    let setup = start_logging(extra, |dir| {
        let path = dir.join("log");
        let socket = UnixDatagram::bind(&path).unwrap();
        // The daemon sends as mail_owner after the drop.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Running::Syslog(Process::start(dir), socket, Mutex::new(String::new()))
    });
    let (pop, imap) = logins(&setup);
    let log = setup.server.log();
    for (program, pid) in [("pop3", &pop), ("imap", &imap)] {
        let lines = lines_of(&log, program, pid);
        let login = format!(": Login: user=<{}>, method=PLAIN", setup.user.name);
        let login = lines.iter().find(|l| l.contains(&login));
        assert!(login.is_some_and(|l| l.starts_with("<22>")), "{log}");
    }
    let Running::Syslog(process, ..) = setup.server else {
        unreachable!()
    };
    let stderr = process.stderr();
    assert!(!stderr.contains("Login:"), "{stderr}");
}

/// A daemon started with a debug filter (`POSTERN_LOG`) gets its session
/// processes' debug lines: the filter reaches them with the session
/// request, their environment being cleared.
#[test]
fn session_processes_log_at_the_daemons_level() {
    if skip_unless_root() {
        return;
    }
    let setup = start_logging("", |dir| {
        let mut command = foreground(&dir.join("postern.toml"));
        command.env("POSTERN_LOG", "info,postern/mail-session=debug");
        Running::Stderr(Server::spawn(dir, command))
    });
    let (pop, imap) = logins(&setup);
    let log = setup.server.log();
    for (protocol, pid) in [("pop3", &pop), ("imap", &imap)] {
        let debug = format!(
            "{protocol}({}): session process of uid {}",
            setup.user.name, setup.user.uid
        );
        let lines = lines_of(&log, "mail-session", pid);
        assert!(lines.iter().any(|l| l.contains(&debug)), "{log}");
    }
}
