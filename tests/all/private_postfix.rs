//! A private Postfix 3.7 for the side-by-side tests
//! (`postfix_side_by_side.rs`): started from a fixture's main.cf and
//! tables in a temporary directory, as the postfix user, on one loopback
//! port, with only the internal services it needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::import_postfix::fixture;
use crate::support::WAIT;

/// The internal services a private Postfix needs, none chrooted.
const POSTFIX_MASTER_CF: &str = "\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
";

/// The tables a fixture may hold, and the tool that compiles each for
/// Postfix (Postern reads the text).
const TABLES: &[(&str, &str)] = &[("access", "postmap"), ("aliases", "postalias")];

/// A private Postfix whose master's process group is killed when the
/// guard drops. It logs nowhere: with `maillog_file`, postlogd can block
/// writing its own warnings to its own full datagram socket, and every
/// process logging behind it waits too.
pub(crate) struct Postfix(std::process::Child);

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.0),
            rustix::process::Signal::KILL,
        );
        let _ = self.0.wait();
    }
}

/// A copy of fixture `name` in `dir`, with `extra` main.cf lines.
pub(crate) fn fixture_copy(name: &str, dir: &Path, extra: &str) -> PathBuf {
    let from = fixture(name);
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let main_cf = std::fs::read_to_string(to.join("main.cf")).unwrap();
    std::fs::write(to.join("main.cf"), format!("{main_cf}\n{extra}")).unwrap();
    to
}

/// A private Postfix running `fixture`'s main.cf on `port`, in `dir`: its
/// tables copied and compiled there, the queue there, and `set` (besides
/// what every test changes) in place of the fixture's values. `None`
/// when the master exits: it lost the port to another process (the port
/// was free when picked), and the caller picks another.
pub(crate) fn start_postfix(
    fixture: &Path,
    dir: &Path,
    port: u16,
    set: &[(&str, String)],
) -> Option<Postfix> {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let (etc, spool, data) = (dir.join("etc"), dir.join("spool"), dir.join("data"));
    let id = |what: &str| -> u32 {
        let out = Command::new("id")
            .arg(what)
            .arg("postfix")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    for q in [
        "incoming", "active", "deferred", "defer", "bounce", "hold", "corrupt", "flush", "saved",
        "trace", "private", "public", "maildrop", "pid",
    ] {
        let d = spool.join(q);
        std::fs::create_dir_all(&d).unwrap();
        if q != "pid" {
            std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
        }
    }
    std::fs::set_permissions(
        spool.join("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    for p in [dir.parent().unwrap(), dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut main_cf = std::fs::read_to_string(fixture.join("main.cf")).unwrap();
    for (table, tool) in TABLES {
        if !fixture.join(table).exists() {
            continue;
        }
        std::fs::copy(fixture.join(table), etc.join(table)).unwrap();
        let out = Command::new(tool).arg(etc.join(table)).output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copy = etc.join(table).display().to_string();
        main_cf = main_cf
            .replace(&format!("/etc/postfix/{table}"), &copy)
            .replace(&format!("hash:/etc/{table}"), &format!("hash:{copy}"));
    }
    let (s, d) = (spool.display(), data.display());
    let mut settings: Vec<(&str, String)> = vec![
        ("queue_directory", s.to_string()),
        ("data_directory", d.to_string()),
        ("mail_owner", "postfix".into()),
        ("setgid_group", "postdrop".into()),
        ("inet_interfaces", "127.0.0.1".into()),
        ("inet_protocols", "ipv4".into()),
        ("mynetworks", "192.0.2.0/24, 127.0.0.1/32".into()),
        ("smtpd_sasl_auth_enable", "no".into()),
        ("smtp_sasl_password_maps", String::new()),
        ("smtpd_peername_lookup", "no".into()),
    ];
    settings.extend(set.iter().cloned());
    // The parameters set here are taken out of the fixture's text rather
    // than set twice: every Postfix process warns of each duplicate.
    let mut text: Vec<String> = main_cf
        .lines()
        .filter(|l| {
            !settings
                .iter()
                .any(|(k, _)| l.starts_with(&format!("{k} =")))
        })
        .map(str::to_owned)
        .collect();
    text.extend(settings.iter().map(|(k, v)| format!("{k} = {v}")));
    std::fs::write(etc.join("main.cf"), text.join("\n") + "\n").unwrap();
    std::fs::write(
        etc.join("master.cf"),
        format!("127.0.0.1:{port} inet n - n - - smtpd\n{POSTFIX_MASTER_CF}"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("master.log")).unwrap();
    let child = Command::new("/usr/lib/postfix/sbin/master")
        .arg("-c")
        .arg(&etc)
        .arg("-d")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let mut postfix = Postfix(child);
    let start = std::time::Instant::now();
    // Ready when the master's smtpd greets.
    loop {
        if postfix.0.try_wait().unwrap().is_some() {
            return None;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read as _;
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut greeting = [0u8; 64];
            let n = s.read(&mut greeting).unwrap_or(0);
            if greeting[..n].starts_with(b"220 ") {
                return Some(postfix);
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "postfix did not start: {}",
            std::fs::read_to_string(dir.join("master.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether this machine can run the comparison: a private Postfix runs
/// its daemons as the postfix user, so only root can start one (CI runs
/// as root).
pub(crate) fn can_run_postfix() -> bool {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: starting a private Postfix needs root");
        return false;
    }
    assert!(
        Path::new("/usr/lib/postfix/sbin/master").exists(),
        "Postfix is not installed (apt-get install postfix); .ci/run installs it"
    );
    true
}
