//! Hostile plugins in a real server: each session gets the entry's
//! `on_error` within the deadline plus a margin, other sessions are
//! served meanwhile, and an entry that keeps failing is skipped until
//! reload.

use std::time::{Duration, Instant};

use crate::policy_tables::guest_config;
use crate::support::*;

/// A server whose recipient list starts with `test_sandbox` doing `what`.
fn hostile_server(what: &str, plugins_extra: &str) -> (Server, tempfile::TempDir) {
    hostile_guest_server("test_sandbox", what, plugins_extra)
}

/// A server whose recipient list starts with test guest `guest` doing
/// `what`, with `plugins_extra` in `[plugins]`.
fn hostile_guest_server(
    guest: &str,
    what: &str,
    plugins_extra: &str,
) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        "smtpd_recipient_restrictions = [{{ plugin = \"{guest}\", check = \"{what}\" }}, \
         \"permit_mynetworks\", \"reject_unauth_destination\"]\n\
         [plugins]\n{plugins_extra}\n"
    );
    guest_config(tmp.path(), guest, &extra);
    (Server::start_in(tmp.path()), tmp)
}

fn rcpt(server: &Server) -> (String, Duration) {
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250")
    );
    let started = Instant::now();
    let r = c.cmd("RCPT TO:<alice@example.org>");
    (r, started.elapsed())
}

#[test]
fn every_attack_gets_on_error_in_time_while_other_sessions_are_served() {
    for what in ["bomb", "stack", "panic", "flood"] {
        let (server, _tmp) = hostile_server(what, "max_failures = 0");
        let (r, took) = rcpt(&server);
        // The log flood (100,000 lines of 4 KB) may finish inside the
        // 250 ms deadline on a fast machine, its lines beyond the cap
        // dropped, or be cut by the deadline: either way the log holds
        // only the capped lines and the session goes on.
        let failed = r.starts_with("451 4.3.0 Error: policy plugin test_sandbox failed");
        assert!(
            failed || (what == "flood" && r.starts_with("250 ")),
            "{what}: {r}"
        );
        // The deadline is 250 ms; the margin covers a debug build on a
        // loaded 2-core machine (speed targets live in benchmarks).
        assert!(took < Duration::from_millis(250 + 2000), "{what}: {took:?}");
        if what == "flood" {
            server.wait_log("plugin test_sandbox wrote too many log lines");
        }
        if failed {
            server.wait_log("plugin test_sandbox failed at recipient");
        }
    }
}

#[test]
fn a_hanging_plugin_does_not_hold_other_sessions() {
    // An endless loop with a long deadline: it burns CPU for 2 s.
    let (server, _tmp) = hostile_guest_server("test_hostile", "loop", "deadline = \"2s\"");
    let smtp = server.smtp;
    let busy = std::thread::spawn(move || {
        let mut c = Client::connect(smtp);
        assert!(c.cmd("EHLO busy.test.example").starts_with("250"));
        assert!(
            c.cmd("MAIL FROM:<s@client.test.example>")
                .starts_with("250")
        );
        c.cmd("RCPT TO:<alice@example.org>")
    });
    // Meanwhile another session is greeted and answered at once.
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO other.test.example").starts_with("250"));
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(
        // Well under the 2 s the other plugin burns (margin for a loaded
        // 2-core machine running a debug build).
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let r = busy.join().unwrap();
    assert!(
        r.starts_with("451 4.3.0 Error: policy plugin test_hostile failed"),
        "{r}"
    );
}

#[test]
fn an_entry_that_keeps_failing_is_skipped_until_reload() {
    let (server, tmp) = hostile_server("panic", "max_failures = 3");
    for _ in 0..5 {
        let (r, _) = rcpt(&server);
        assert!(r.starts_with("451 4.3.0"), "{r}");
    }
    let log = server.wait_log("failed 3 times in a row: skipped until reload");
    assert_eq!(
        log.matches("plugin test_sandbox failed at recipient")
            .count(),
        3,
        "{log}"
    );
    let out = std::process::Command::new(POSTERN)
        .arg("--config")
        .arg(tmp.path().join("postern.toml"))
        .arg("reload")
        .output()
        .unwrap();
    assert!(out.status.success());
    server.wait_log("reload -- version");
    let (r, _) = rcpt(&server);
    assert!(r.starts_with("451 4.3.0"), "{r}");
    let log = server.wait_log_count("plugin test_sandbox failed at recipient", 4);
    assert_eq!(
        log.matches("plugin test_sandbox failed at recipient")
            .count(),
        4,
        "{log}"
    );
}

#[test]
fn a_missing_data_dir_is_a_config_error_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let extra = format!(
        "smtpd_recipient_restrictions = [{{ plugin = \"test_sandbox\", data_dir = \"{}\" }}, \
         \"permit_mynetworks\", \"reject_unauth_destination\"]\n",
        missing.display()
    );
    let config = guest_config(tmp.path(), "test_sandbox", &extra);
    let line = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("smtpd_recipient_restrictions"))
        .unwrap()
        + 1;
    let (ok, stderr) = postern_check(&config);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "{}:{line}: smtpd.restrictions.recipient: entry",
            config.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("data_dir {}: No such file", missing.display())),
        "{stderr}"
    );
}

#[test]
fn a_granted_data_dir_is_read_in_a_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello"), "hello from the operator\n").unwrap();
    let extra = format!(
        "smtpd_recipient_restrictions = [{{ plugin = \"test_sandbox\", check = \"data\", \
         path = \"/data/hello\", data_dir = \"{}\" }}]\n\
         smtpd_relay_restrictions = [\"permit_mynetworks\", \"reject_unauth_destination\"]\n",
        data.display()
    );
    guest_config(tmp.path(), "test_sandbox", &extra);
    let server = Server::start_in(tmp.path());
    let (r, _) = rcpt(&server);
    assert_eq!(r.trim_end(), "554 5.7.1 read hello from the operator");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        1,
        "the plugin wrote in its data_dir"
    );
}
