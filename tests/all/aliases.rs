//! Aliases end to end: the SMTP server accepts alias names, and every
//! alias form delivers (users, addresses, a file, a command that writes
//! what it received); alias loops and failing commands bounce back to the
//! sender as DSNs; `postern aliases` reports `file:line:` problems.

use std::path::Path;

use crate::support::*;

/// A root-owned aliases file runs its files and commands as nobody: when
/// the tests run as root, the test directory is given to nobody so that
/// they can write there.
fn open_up(dir: &Path) {
    if rustix::process::geteuid().is_root() {
        let nobody = std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("nobody:x:").map(str::to_owned))
            .unwrap();
        let mut ids = nobody.split(':');
        let uid: u32 = ids.next().unwrap().parse().unwrap();
        let gid: u32 = ids.next().unwrap().parse().unwrap();
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
    }
}

fn aliases_server(aliases: impl Fn(&Path) -> String) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    open_up(dir);
    std::fs::write(dir.join("aliases"), aliases(dir)).unwrap();
    test_config(
        dir,
        &format!("alias_maps = \"hash:{}/aliases\"\n", dir.display()),
    );
    (Server::start_in(dir), tmp)
}

const READ_DSN: &str = r#"
import email, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read())
assert msg.get_content_type() == "multipart/report"
rcpt = msg.get_payload()[1].get_payload()[1]
print(rcpt["Final-Recipient"], "|", rcpt["Action"], "|", rcpt["Status"], "|", rcpt["Diagnostic-Code"])
"#;

#[test]
fn every_alias_form() {
    let (server, tmp) = aliases_server(|d| {
        format!(
            "# aliases for the tests\n\
             team: alice,\n\
             \tbob@example.org\n\
             robot: \"|(env | grep -E '^(SENDER|RECIPIENT|ORIGINAL_RECIPIENT|LOCAL|DOMAIN)=' | sort; cat) > {d}/robot.out\"\n\
             archive: {d}/archive.mbox\n\
             staff: :include:{d}/staff\n",
            d = d.display()
        )
    });
    std::fs::write(tmp.path().join("staff"), "alice\n").unwrap();
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "carol@client.test.example",
        &[
            "team@example.org",
            "Robot@example.org",
            "archive@example.org",
            "staff@example.org",
        ],
        "Subject: to the aliases\r\n\r\nFrom the start\r\nhello\r\n",
    );
    // team -> alice and bob; staff -> alice again (another recipient,
    // another copy).
    wait_messages(&server.new_dir("alice"), 2);
    let bob = wait_messages(&server.new_dir("bob"), 1);
    assert!(
        bob[0].starts_with(
            b"Return-Path: <carol@client.test.example>\r\nDelivered-To: bob@example.org\r\n"
        ),
        "{}",
        String::from_utf8_lossy(&bob[0])
    );
    let robot = wait_file(&tmp.path().join("robot.out"));
    assert!(
        robot.starts_with(
            "DOMAIN=example.org\nLOCAL=Robot\nORIGINAL_RECIPIENT=Robot@example.org\n\
             RECIPIENT=Robot@example.org\nSENDER=carol@client.test.example\n\
             Return-Path: <carol@client.test.example>\nDelivered-To: Robot@example.org\n"
        ),
        "{robot}"
    );
    assert!(
        robot.contains("Subject: to the aliases\n\nFrom the start\nhello\n"),
        "{robot}"
    );
    let mbox = wait_file(&tmp.path().join("archive.mbox"));
    assert!(
        mbox.starts_with("From carol@client.test.example  "),
        "{mbox}"
    );
    assert!(mbox.contains("\n>From the start\nhello\n\n"), "{mbox}");
    let log = server.wait_log(": removed");
    assert!(log.contains("status=sent (delivered to command: "), "{log}");
    assert!(log.contains("status=sent (delivered to file: "), "{log}");
}

#[test]
fn loops_and_failing_commands_bounce_to_the_sender() {
    let (server, _tmp) = aliases_server(|_| {
        "ping: pong\npong: ping\nbroken: \"|echo ticket system down >&2; exit 69\"\n".to_owned()
    });
    let mut c = Client::connect(server.smtp);
    // An unknown name is still refused at RCPT.
    c.cmd("EHLO client.test.example");
    c.cmd("MAIL FROM:<alice@example.org>");
    let r = c.cmd("RCPT TO:<nosuchalias@example.org>");
    assert!(r.starts_with("550 "), "{r}");
    c.cmd("RSET");
    send_accepted(
        &mut c,
        "alice@example.org",
        &["ping@example.org"],
        "Subject: round and round\r\n\r\nx\r\n",
    );
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "alice@example.org",
        &["broken@example.org"],
        "Subject: ticket\r\n\r\nx\r\n",
    );
    wait_messages(&server.new_dir("alice"), 2);
    let mut reports: Vec<String> = std::fs::read_dir(server.new_dir("alice"))
        .unwrap()
        .map(|e| python(READ_DSN, &[e.unwrap().path().to_str().unwrap()]))
        .collect();
    reports.sort();
    assert_eq!(
        reports,
        [
            "rfc822; broken@example.org | failed | 5.3.0 | X-Postern; command \"echo ticket system down >&2; exit 69\" died with status 69. Command output: ticket system down\n",
            "rfc822; ping@example.org | failed | 5.4.6 | X-Postern; mail forwarding loop: alias ping -> pong -> ping\n",
        ]
    );
}

#[test]
fn postern_aliases_checks_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("aliases"), "ok: alice\nbroken line\nbad: a@@b\n").unwrap();
    let config = test_config(
        dir,
        &format!("alias_maps = \"{}/aliases\"\n", dir.display()),
    );
    let run = || postern_run(&config, &["aliases"]);
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let file = dir.join("aliases").display().to_string();
    assert!(
        err.contains(&format!("{file}:2: expected \"name: value, ...\"")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:3: \"a@@b\" is not a valid address")),
        "{err}"
    );
    // The server refuses to start on them, naming the same lines.
    let (ok, err) = postern_check(&config);
    assert!(!ok);
    assert!(err.contains(&format!("{file}:2:")), "{err}");
    std::fs::write(dir.join("aliases"), "ok: alice\n").unwrap();
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 aliases"));
}

#[test]
fn reload_rereads_the_aliases() {
    let (server, tmp) = aliases_server(|_| "first: alice\n".to_owned());
    let rcpt = |name: &str| {
        let (from, to) = ("carol@client.test.example", format!("{name}@example.org"));
        rcpt_from(server.smtp, "127.0.0.1", "client.test.example", from, &to).0
    };
    assert!(rcpt("first").starts_with("250 "));
    assert!(rcpt("second").starts_with("550 "));
    std::fs::write(tmp.path().join("aliases"), "first: alice\nsecond: bob\n").unwrap();
    let config = tmp.path().join("postern.toml");
    reload(&config);
    server.wait_log("reload: 2 aliases");
    assert!(rcpt("second").starts_with("250 "));
    // A broken file keeps the running aliases.
    std::fs::write(tmp.path().join("aliases"), "second bob\n").unwrap();
    postern_run(&config, &["reload"]);
    server.wait_log("keeping the running aliases");
    assert!(rcpt("second").starts_with("250 "));
}
