//! `log_output = "syslog"` (issue 10, item 2): the maillog lines reach a
//! syslog daemon's datagram socket (`syslog_socket`, here one the test
//! owns, and a real rsyslogd's) as RFC 3164 messages with the
//! `syslog_facility` and the line's severity in `<PRI>` and the same
//! `postern/smtpd[PID]: ` tags as on stderr; a syslog daemon that is
//! missing, restarting or stuck never holds the server up.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A server logging to syslog at `dir/log`, listening on `port` (0: any;
/// then its address is read from the syslog socket by the caller).
pub(crate) fn start_syslogging(dir: &Path, port: u16, extra: &str) -> Process {
    let d = dir.display();
    let config = config_text(
        dir,
        &format!("log_output = \"syslog\"\nsyslog_socket = \"{d}/log\"\n{extra}"),
    )
    .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(dir.join("users"), USERS).unwrap();
    std::fs::write(dir.join("postern.toml"), config).unwrap();
    Process::start(dir)
}

/// As [`start_syslogging`] on a free port; the server once its SMTP
/// service listens, and that service's address.
pub(crate) fn syslogging(dir: &Path, extra: &str) -> (Process, SocketAddr) {
    let port = free_port();
    let server = start_syslogging(dir, port, extra);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr);
    (server, addr)
}

/// A test-owned syslog socket at `path`.
fn syslogd(path: &Path) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    socket
}

/// Messages received until one contains `needle`; all of them, that one
/// last.
fn until(socket: &UnixDatagram, needle: &str) -> Vec<String> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        if let Ok(n) = socket.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = line.contains(needle);
            got.push(line);
            if done {
                return got;
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "syslog never got {needle:?}:\n{}",
            got.join("\n")
        );
    }
}

/// `<PRI>Mmm dd hh:mm:ss ` and the rest, checked for RFC 3164's shape.
fn split(message: &str) -> (u32, &str) {
    let (pri, rest) = message[1..].split_once('>').unwrap();
    assert!(message.starts_with('<'), "{message}");
    let stamp = &rest[..16];
    let b = stamp.as_bytes();
    assert!(
        b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':' && b[15] == b' ',
        "not an RFC 3164 timestamp: {message:?}"
    );
    (pri.parse().unwrap(), &rest[16..])
}

#[test]
fn lines_reach_syslog_with_facility_severity_and_the_stderr_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let log = syslogd(&tmp.path().join("log"));
    let server = start_syslogging(
        tmp.path(),
        0,
        "syslog_facility = \"local3\"\nsmtpd_sasl_auth_enable = true\n",
    );
    let pid = server.0.id();
    let got = until(&log, "listening on smtp ");
    let last = got.last().unwrap();
    let (pri, rest) = split(last);
    // local3 (19) * 8 + info (6).
    assert_eq!(pri, 158, "{last}");
    assert!(rest.starts_with("postern/"), "{last}");
    assert!(
        rest.contains(&format!("[{pid}]: listening on smtp ")),
        "{last}"
    );
    let addr: SocketAddr = rest
        .split("listening on smtp ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let mut c = Client::connect(addr);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    // alice / wrong: Postfix's warning line.
    let r = c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n");
    assert!(r.starts_with("535"), "{r}");
    c.cmd("QUIT");
    let got = until(&log, "authentication failed");
    let connect = got.iter().find(|l| l.contains("connect from")).unwrap();
    let (pri, rest) = split(connect);
    assert_eq!(pri, 158, "{connect}");
    assert_eq!(
        rest,
        format!("postern/smtpd[{pid}]: connect from unknown[127.0.0.1]"),
        "{connect}"
    );
    let warning = got.last().unwrap();
    let (pri, rest) = split(warning);
    // local3 * 8 + warning (4).
    assert_eq!(pri, 156, "{warning}");
    assert!(
        rest.starts_with(&format!(
            "postern/smtpd[{pid}]: warning: unknown[127.0.0.1]: SASL PLAIN authentication failed"
        )),
        "{warning}"
    );
    // Nothing of the log went to stderr.
    let stderr = server.stderr();
    assert!(!stderr.contains("postern/smtpd["), "{stderr}");
}

#[test]
fn syslog_name_tags_the_stderr_lines_too() {
    let (server, _tmp) = Server::start("syslog_name = \"postern-edge\"\n");
    let mut c = Client::connect(server.smtp);
    c.cmd("QUIT");
    server.wait_log(&format!(
        "postern-edge/smtpd[{}]: connect from unknown[127.0.0.1]",
        server.pid()
    ));
    assert!(!server.log().contains(" postern/"), "{}", server.log());
}

#[test]
fn a_missing_or_restarted_syslog_gets_lines_again_and_hears_what_was_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log");
    // No syslog yet: the server starts and serves all the same.
    let (server, addr) = syslogging(tmp.path(), "");
    let mut c = Client::connect(addr);
    c.cmd("QUIT");

    // syslogd starts: the next lines arrive, then how many were lost.
    let log = syslogd(&path);
    let mut c = Client::connect_from(addr, "127.0.0.2");
    c.cmd("QUIT");
    // In either order: the warning follows the first line that got
    // through, which may be one the server logged before this session.
    let mut got = until(&log, "log lines dropped");
    let warning = got.pop().unwrap();
    if !got
        .iter()
        .any(|l| l.contains("connect from unknown[127.0.0.2]"))
    {
        until(&log, "connect from unknown[127.0.0.2]");
    }
    let (pri, rest) = split(&warning);
    // mail (2) * 8 + warning (4).
    assert_eq!(pri, 20);
    assert!(rest.starts_with("postern/postlogd["), "{rest}");

    // syslogd restarts: a new socket at the same path.
    drop(log);
    std::fs::remove_file(&path).unwrap();
    let log = syslogd(&path);
    let mut c = Client::connect_from(addr, "127.0.0.3");
    c.cmd("QUIT");
    until(&log, "connect from unknown[127.0.0.3]");

    let stderr = server.stderr();
    assert!(
        stderr.contains("postern: warning: syslog: cannot send to"),
        "{stderr}"
    );
}

#[test]
fn a_stuck_syslog_does_not_hold_the_server_up() {
    let tmp = tempfile::tempdir().unwrap();
    // Bound and never read: its queue fills and every send waits.
    let log = syslogd(&tmp.path().join("log"));
    let (_server, addr) = syslogging(tmp.path(), "");
    // Well past the socket's queue (net.unix.max_dgram_qlen, 512): two
    // lines a session.
    let start = Instant::now();
    for _ in 0..400 {
        let mut c = Client::connect(addr);
        assert!(c.cmd("QUIT").starts_with("221"));
    }
    let took = start.elapsed();
    println!("400 sessions with syslog stuck: {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    drop(log);
}

#[test]
fn bad_syslog_settings_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, expected) in [
        (
            "log_output = \"syslogd\"\n",
            "log_output: expected one of stderr, syslog, found \"syslogd\"",
        ),
        (
            "syslog_facility = \"mial\"\n",
            "syslog_facility: expected one of",
        ),
    ] {
        check_refuses(tmp.path(), extra, expected);
    }
}

/// A real rsyslogd (Debian's rsyslog) on a private socket, writing what
/// it received with its facility and severity to a file.
#[test]
fn rsyslogd_files_the_lines_under_mail() {
    let Ok(rsyslogd) = which("rsyslogd") else {
        panic!("rsyslogd is not installed (apt-get install rsyslog); .ci/run installs it");
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display();
    std::fs::write(
        tmp.path().join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{d}/log\")\n\
             template(name=\"t\" type=\"string\" \
                string=\"%syslogfacility-text%.%syslogseverity-text% %syslogtag%%msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{d}/maillog\" template=\"t\")\n"
        ),
    )
    .unwrap();
    let mut rsyslog = Command::new(rsyslogd)
        .arg("-n")
        .arg("-f")
        .arg(tmp.path().join("rsyslog.conf"))
        .arg("-i")
        .arg(tmp.path().join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !tmp.path().join("log").exists() {
        assert!(start.elapsed() < WAIT, "rsyslogd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (server, addr) = syslogging(tmp.path(), "");
    let pid = server.0.id();
    let mut c = Client::connect_from(addr, "127.0.0.2");
    c.cmd("EHLO client.example.net");
    c.cmd("MAIL FROM:<a@example.net>");
    let r = c.cmd("RCPT TO:<x@elsewhere.example>");
    assert!(r.starts_with("554"), "{r}");
    c.cmd("QUIT");
    let expected = [
        format!("mail.info postern/smtpd[{pid}]: connect from unknown[127.0.0.2]"),
        format!(
            "mail.info postern/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1"
        ),
    ];
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(tmp.path().join("maillog")).unwrap_or_default();
        if expected.iter().all(|e| text.contains(e.as_str())) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "rsyslogd's file lacks {expected:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([Path::new("/usr/sbin").to_path_buf()])
        .map(|dir| dir.join(program))
        .find(|p| p.exists())
        .ok_or(())
}
