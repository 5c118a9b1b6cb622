//! `postern import-postfix` on the sample setups of
//! `../shared/fixtures/postfix/` (issue 10, item 4): each imports into a
//! config `postern check` accepts, every setting left behind is named
//! with its line, and the full server runs on loopback. The same SMTP
//! conversations sent to a private Postfix and to the imported Postern
//! are in `postfix_side_by_side.rs`, which shares the helpers here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/postfix")
        .join(name)
        .canonicalize()
        .expect("../shared/fixtures/postfix beside the repository")
}

/// Runs the import; (config, stderr).
pub(crate) fn import(args: &[&Path]) -> (String, String) {
    let out = Command::new(POSTERN)
        .arg("import-postfix")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The imported config made runnable in `dir`: the test's data
/// directories first (top-level keys precede the tables), listeners on
/// ephemeral loopback ports, and loopback only as the trusted network
/// except 127.0.0.2, the untrusted client.
pub(crate) fn runnable(config: &str, dir: &Path) -> String {
    let d = dir.display();
    let mut text = format!(
        "plugin_cache_directory = \"{SHARED_CACHE}\"\n\
         data_directory = \"{d}\"\n\
         queue_directory = \"{d}/queue\"\n\
         virtual_mailbox_base = \"{d}/mail\"\n\
         inet_interfaces = \"127.0.0.1\"\n"
    );
    for line in config.lines() {
        let line = match line {
            l if l.starts_with("listen = ") => "listen = \"127.0.0.1:0\"".to_owned(),
            l if l.starts_with("mynetworks = ") => {
                "mynetworks = \"192.0.2.0/24, 127.0.0.1/32\"".to_owned()
            }
            l if l.starts_with("inet_interfaces = ") => continue,
            l => l.to_owned(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Writes the runnable config to `dir/postern.toml`; `postern check`
/// must accept it.
pub(crate) fn check(config: &str, dir: &Path) {
    let path = dir.join("postern.toml");
    std::fs::write(&path, runnable(config, dir)).unwrap();
    let (ok, err) = postern_check(&path);
    assert!(ok, "{err}\n{}", std::fs::read_to_string(&path).unwrap());
}

#[test]
fn the_relay_server_imports_with_its_relayhost_and_networks() {
    let (config, notes) = import(&[&fixture("relay-server")]);
    assert!(
        config.contains("relayhost = \"mail.example.net:587\""),
        "{config}"
    );
    assert!(
        config.contains(
            "mynetworks = \"192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 127.0.0.0/8\""
        ),
        "{config}"
    );
    // The aliases file of the fixture directory stands in for /etc/aliases.
    assert!(config.contains("/relay-server/aliases\""), "{config}");
    assert!(
        notes.contains("main.cf:11: alias_database: not carried over"),
        "{notes}"
    );
    assert!(notes.contains("master.cf"), "{notes}");
    // Postfix 3 would not run this main.cf; the note says what runs.
    assert!(
        notes.contains("main.cf:0: compatibility_level: 0 (or not set)"),
        "{notes}"
    );
    let tmp = tempfile::tempdir().unwrap();
    check(&config, tmp.path());
}

#[test]
fn the_small_office_imports_with_its_limits_and_mailbox_command() {
    let (config, _) = import(&[&fixture("small-office")]);
    for line in [
        "relayhost = \"[mail.example.net]\"",
        "smtpd_client_connection_count_limit = \"3\"",
        "smtpd_client_message_rate_limit = \"10\"",
        "mailbox_command = \"/usr/bin/procmail\"",
    ] {
        assert!(config.contains(line), "{line} in {config}");
    }
    let tmp = tempfile::tempdir().unwrap();
    check(&config, tmp.path());
}

#[test]
fn the_full_server_imports_with_dovecot_and_answers_as_postfix_does() {
    let dir = fixture("full-server");
    let (config, notes) = import(&[&dir, Path::new("--dovecot"), &dir]);
    // Every setting left behind is named with its file and line.
    for expected in [
        "main.cf:16: smtpd_sasl_type: not carried over",
        "main.cf:17: smtpd_sasl_path: not carried over",
        "master.cf:3: submission/-o syslog_name: not carried over",
        "dovecot.conf:2: protocols/lmtp: not carried over",
        "dovecot.conf:6: passdb/args scheme",
        "/etc/dovecot/users does not exist",
    ] {
        assert!(notes.contains(expected), "{expected:?} in\n{notes}");
    }
    assert!(config.contains("[[service]]\nname = \"submission\"\nlisten = \"587\"\nsmtpd_tls_security_level = \"encrypt\""), "{config}");
    assert!(config.contains("name = \"imaps\""), "{config}");
    assert!(config.contains("check_helo_access hash:"), "{config}");

    // Run it: the users file the passdb names does not exist in the
    // fixture, so point it at the test users.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    // Likewise the relayhost's password table the note names.
    std::fs::write(tmp.path().join("sasl_passwd"), "").unwrap();
    let config = config
        .replace(
            "users_file = \"/etc/dovecot/users\"",
            &format!("users_file = \"{}/users\"", tmp.path().display()),
        )
        .replace(
            "hash:/etc/postfix/sasl_passwd",
            &format!("hash:{}/sasl_passwd", tmp.path().display()),
        );
    check(&config, tmp.path());
    let server = Server::start_in(tmp.path());

    // smtpd_helo_restrictions' access map, from an untrusted client,
    // decided at RCPT (smtpd_delay_reject), Postfix's words.
    let (from, to) = ("someone@example.net", "alice@example.com");
    let (r, mut c) = rcpt_from(server.smtp, "127.0.0.2", "badhelo.example.org", from, to);
    assert!(
        r.starts_with("450 4.7.1 <badhelo.example.org>: Helo command rejected: Try again later"),
        "{r}"
    );
    c.cmd("QUIT");

    // A trusted client relays (permit_mynetworks).
    let (from, to) = ("alice@example.com", "someone@example.net");
    let (r, mut c) = rcpt_from(server.smtp, "127.0.0.1", "client.example.com", from, to);
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT");

    // The submission service's master.cf overrides: TLS first.
    let submission = server.listening("submission");
    let mut c = Client::connect_from(submission, "127.0.0.2");
    assert!(c.cmd("EHLO client.example.net").starts_with("250"));
    let r = c.cmd("MAIL FROM:<someone@example.net>");
    assert!(
        r.starts_with("530 5.7.0 Must issue a STARTTLS command first"),
        "{r}"
    );
}
