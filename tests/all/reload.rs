//! `postern reload`: a new policy without dropping a connection, and a
//! broken one refused with the running policy kept.

use std::process::Command;

use crate::service_overrides::{PLAIN_SMTP, rcpt_at, service_config, smtp_addresses, start};
use crate::support::*;

#[test]
fn reload_swaps_the_policy_and_keeps_connections() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let mut open = Client::connect(server.smtp);
    assert!(open.cmd("EHLO before.test.example").starts_with("250"));

    // Refuse every recipient from now on.
    std::fs::write(
        &config,
        config_text(tmp.path(), "smtpd_recipient_restrictions = [\"reject\"]"),
    )
    .unwrap();
    reload(&config);
    server.wait_log("reload -- version");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO after.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250")
    );
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("554 5.7.1"), "{r}");
    // The connection opened before the reload is still served.
    assert!(open.cmd("NOOP").starts_with("250"));

    // A broken plugin: the reload is refused and the last policy stays.
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(plugins.join("permit_mynetworks.wasm"), b"\0asm garbage").unwrap();
    let extra = format!("plugin_directory = \"{}\"", plugins.display());
    std::fs::write(&config, config_text(tmp.path(), &extra)).unwrap();
    // `postern reload` says why and fails; the daemon logs it too.
    let stderr = reload_refused(&config);
    assert!(
        stderr.contains("reload failed, the running configuration is kept"),
        "{stderr}"
    );
    assert!(stderr.contains("permit_mynetworks.wasm"), "{stderr}");
    let log = server.wait_log("reload failed, keeping the running policy");
    assert!(log.contains("permit_mynetworks.wasm"), "{log}");
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("554 5.7.1"), "{r}");
}

#[test]
fn reload_without_a_server_says_so_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config(tmp.path(), "");
    let stderr = reload_refused(&config);
    assert!(
        stderr.contains("the mail system is not running"),
        "{stderr}"
    );
}

#[test]
fn sighup_still_reloads_and_logs_a_failure() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    // Signals are handled from "daemon started" on; before, SIGHUP would
    // end the process.
    server.wait_log("daemon started");
    let pid = std::fs::read_to_string(tmp.path().join("queue/pid/master.pid")).unwrap();
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    std::fs::write(
        &config,
        config_text(tmp.path(), "smtpd_recipient_restrictions = [\"reject\"]"),
    )
    .unwrap();
    hup();
    server.wait_log("reload -- version");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("554"));
    std::fs::write(&config, "myhostname = [\n").unwrap();
    hup();
    let log = server.wait_log("reload failed, keeping the running policy");
    assert!(log.contains("postern.toml:"), "{log}");
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("554"));
}

#[test]
fn the_control_socket_answers_bad_commands_with_an_error() {
    use std::io::{Read, Write};
    let (server, tmp) = Server::start("");
    let socket = tmp.path().join("queue/private/control");
    let ask = |bytes: &[u8]| {
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(bytes).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let a = ask(b"shutdown-everything\n");
    assert!(a.starts_with("error\nunknown command"), "{a}");
    // As long as the limit (a longer line would leave bytes unread, and
    // the client would see a reset instead of the answer).
    let a = ask(&[b'x'; 256]);
    assert!(a.starts_with("error\nexpected one command line"), "{a}");
    let a = ask(b"plugins\n");
    assert!(a.starts_with("ok\n"), "{a}");
    assert!(a.contains("permit_mynetworks calls="), "{a}");
    // The server still serves mail.
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("NOOP").starts_with("250"));
}

#[test]
fn reload_rereads_the_users_file_for_logins() {
    let (server, tmp) = Server::start("smtpd_sasl_auth_enable = true");
    let login = |plain: &str| {
        let mut c = Client::connect(server.smtp);
        assert!(c.cmd("EHLO client.test.example").starts_with("250"));
        c.cmd(&format!("AUTH PLAIN {plain}"))
    };
    // bob / secret, then bob / changed (base64 of "\0bob@example.org\0...").
    let old = "AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=";
    let new = "AGJvYkBleGFtcGxlLm9yZwBjaGFuZ2Vk";
    assert!(login(old).starts_with("235"));
    std::fs::write(
        tmp.path().join("users"),
        "alice@example.org:{PLAIN}secret::::\nbob@example.org:{PLAIN}changed::::\n",
    )
    .unwrap();
    reload(&tmp.path().join("postern.toml"));
    assert!(login(new).starts_with("235"));
    assert!(login(old).starts_with("535"));
    // A broken users file refuses the whole reload, naming the line.
    std::fs::write(
        tmp.path().join("users"),
        "bob@example.org:{PLAIN}x:abc::::\n",
    )
    .unwrap();
    let stderr = reload_refused(&tmp.path().join("postern.toml"));
    assert!(stderr.contains("users:1: bad uid"), "{stderr}");
    assert!(login(new).starts_with("235"));
}

/// A server with two smtp services, the second with `service_keys`
/// appended (its own restriction lists, say), after `extra` lines.
fn two_services(
    extra: &str,
    service_keys: &str,
) -> (Server, tempfile::TempDir, Vec<std::net::SocketAddr>) {
    let (server, tmp) = start(&format!("{extra}\n{PLAIN_SMTP}"), service_keys);
    let addrs = smtp_addresses(&server);
    (server, tmp, addrs)
}

fn two_services_text(dir: &std::path::Path, extra: &str, service_keys: &str) -> String {
    service_config(dir, &format!("{extra}\n{PLAIN_SMTP}"), service_keys)
}

/// Writes [`two_services_text`] over the config in `dir`.
fn rewrite_two_services(dir: &std::path::Path, extra: &str, service_keys: &str) {
    let text = two_services_text(dir, extra, service_keys);
    std::fs::write(dir.join("postern.toml"), text).unwrap();
}

const STRICT: &str = "[service.restrictions]\nrecipient = [\"reject\"]";

#[test]
fn a_service_gains_and_loses_its_own_lists_at_reload() {
    let (server, tmp, addrs) = two_services("", "");
    let (plain, other) = (addrs[0], addrs[1]);
    assert!(rcpt_at(other).starts_with("250"));
    let config = tmp.path().join("postern.toml");

    // The second service gets lists of its own; a third service appears.
    let third = "[[service]]\nname = \"submission\"\nlisten = \"127.0.0.1:0\"\n";
    let text = two_services_text(tmp.path(), "", STRICT);
    std::fs::write(&config, format!("{text}{third}")).unwrap();
    reload(&config);
    server.wait_log("reload: service smtp restriction lists");
    // The notes are logged one after the other: wait for this one too.
    let log = server.wait_log("take a restart");
    assert!(log.contains("reload: service submission at "), "{log}");
    let r = rcpt_at(other);
    assert!(r.starts_with("554 5.7.1"), "{r}");
    assert!(rcpt_at(plain).starts_with("250"));

    // And loses them: it follows the main lists again, reloaded too.
    rewrite_two_services(
        tmp.path(),
        "smtpd_recipient_restrictions = [\"permit_mynetworks\", \"reject\"]",
        "",
    );
    reload(&config);
    server.wait_log("reload: service smtp has no restriction lists of its own now");
    assert!(rcpt_at(other).starts_with("250"));
    assert!(rcpt_at(plain).starts_with("250"));
}

#[test]
fn a_broken_service_list_refuses_the_whole_reload() {
    let (server, tmp, addrs) = two_services("", STRICT);
    let (plain, strict) = (addrs[0], addrs[1]);
    assert!(rcpt_at(strict).starts_with("554"));
    let config = tmp.path().join("postern.toml");
    // The main lists would now reject everything, and the service's own
    // names a plugin that does not exist: neither is taken.
    let broken = "[service.restrictions]\nrecipient = [\"reject_unauth_destination\", { plugin = \"no_such_plugin\" }]";
    rewrite_two_services(
        tmp.path(),
        "smtpd_recipient_restrictions = [\"reject\"]",
        broken,
    );
    let stderr = reload_refused(&config);
    assert!(
        stderr.contains("reload failed, the running configuration is kept"),
        "{stderr}"
    );
    assert!(stderr.contains("service smtp: restrictions"), "{stderr}");
    assert!(stderr.contains("no_such_plugin"), "{stderr}");
    server.wait_log("reload failed, keeping the running policy");
    assert!(rcpt_at(plain).starts_with("250"));
    assert!(rcpt_at(strict).starts_with("554"));
    // Fixed, it goes through, for both.
    rewrite_two_services(
        tmp.path(),
        "smtpd_recipient_restrictions = [\"reject\"]",
        "",
    );
    reload(&config);
    server.wait_log("reload -- version");
    assert!(rcpt_at(plain).starts_with("554"));
    assert!(rcpt_at(strict).starts_with("554"));
}

#[test]
fn a_service_gone_from_the_config_keeps_listening_with_its_lists() {
    let (server, tmp, addrs) = two_services("", STRICT);
    let (plain, strict) = (addrs[0], addrs[1]);
    let config = tmp.path().join("postern.toml");
    // Only one smtp service left in the file: the first one.
    std::fs::write(&config, config_text(tmp.path(), "")).unwrap();
    reload(&config);
    let log = server.wait_log("is gone from the config");
    assert!(log.contains("until a restart"), "{log}");
    assert!(rcpt_at(plain).starts_with("250"));
    assert!(rcpt_at(strict).starts_with("554"));
}

/// A changed parameter the reload cannot apply (here
/// `qmgr_message_active_limit`, which the delivery loop sizes itself by at
/// start) is named, with its new
/// and old value, by `postern reload` and in the log, instead of being
/// left silently as it was; a reload that changes nothing names nothing.
#[test]
fn a_reload_names_the_changes_that_take_a_restart() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let out = postern_run(&config, &["reload"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");

    std::fs::write(
        &config,
        config_text(tmp.path(), "qmgr_message_active_limit = 1000"),
    )
    .unwrap();
    let out = postern_run(&config, &["reload"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "postern: warning: qmgr_message_active_limit = 1000 (was 20000): takes effect at the next start"
        ),
        "{stderr}"
    );
    server.wait_log(
        "reload: qmgr_message_active_limit = 1000 (was 20000): takes effect at the next start",
    );

    // Compared with the config in force since: said once.
    let out = postern_run(&config, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("qmgr_message_active_limit"), "{stderr}");
}

/// `mynetworks` follows a reload, as with Postfix: a client the reload
/// takes out of it may no longer relay, one it puts back may again, and
/// `postern reload` has nothing to warn about.
#[test]
fn mynetworks_follows_a_reload() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let relay = || {
        let mut c = Client::connect(server.smtp);
        assert!(c.cmd("EHLO client.test.example").starts_with("250"));
        assert!(
            c.cmd("MAIL FROM:<s@client.test.example>")
                .starts_with("250")
        );
        c.cmd("RCPT TO:<someone@elsewhere.test.example>")
    };
    let with_mynetworks = |networks: &str| {
        let text = config_text(tmp.path(), "").replace(
            "mynetworks = \"127.0.0.1/32\"",
            &format!("mynetworks = \"{networks}\""),
        );
        std::fs::write(&config, text).unwrap();
        let out = postern_run(&config, &["reload"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
    };
    let r = relay();
    assert!(r.starts_with("250"), "{r}");
    with_mynetworks("192.0.2.0/24");
    let r = relay();
    assert!(r.starts_with("554 5.7.1"), "{r}");
    with_mynetworks("192.0.2.0/24, 127.0.0.0/8");
    let r = relay();
    assert!(r.starts_with("250"), "{r}");
}

/// The domain classes follow a reload, as `postfix reload` has smtpd,
/// trivial-rewrite and local read main.cf again: a domain added to
/// `mydestination` is accepted from the internet and delivered to the
/// local user, one removed is relaying (refused), a domain added to
/// `relay_domains` is relayed; and `postern reload` warns of none of it.
#[test]
fn domain_classes_follow_a_reload() {
    let tmp = tempfile::tempdir().unwrap();
    // 127.0.0.1 outside mynetworks: mail from the internet.
    let write = |mydestination: &str, relay_domains: &str| {
        let text = config_text(
            tmp.path(),
            &format!("relay_domains = \"{relay_domains}\"\n"),
        )
        .replace(
            "mydestination = \"$myhostname, localhost, example.org\"",
            &format!("mydestination = \"{mydestination}\""),
        )
        .replace(
            "mynetworks = \"127.0.0.1/32\"",
            "mynetworks = \"192.0.2.0/24\"",
        );
        std::fs::write(tmp.path().join("users"), USERS).unwrap();
        std::fs::write(tmp.path().join("postern.toml"), text).unwrap();
    };
    write("$myhostname, localhost, example.org", "");
    let server = Server::start_in(tmp.path());
    let config = tmp.path().join("postern.toml");
    let rcpt = |to: &str| {
        let from = "s@client.test.example";
        rcpt_from(server.smtp, "127.0.0.1", "client.test.example", from, to).0
    };
    let reload = || {
        let out = postern_run(&config, &["reload"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
    };
    for to in ["alice@example.net", "x@relay.test.example"] {
        let r = rcpt(to);
        assert!(r.starts_with("554 5.7.1"), "{to}: {r}");
    }
    assert!(rcpt("alice@localhost").starts_with("250"));

    write(
        "$myhostname, example.org, example.net",
        "relay.test.example",
    );
    reload();
    assert!(rcpt("x@relay.test.example").starts_with("250"));
    let r = rcpt("alice@localhost");
    assert!(r.starts_with("554 5.7.1"), "{r}");
    // The new local domain is delivered to the local user, one namespace
    // with the other local domains.
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "s@client.test.example",
        &["alice@example.net"],
        "Subject: new domain\r\n\r\nhello\r\n",
    );
    let got = wait_messages(&server.new_dir("alice"), 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Delivered-To: alice@example.net"), "{text}");
}

/// `relayhost` follows a reload, as `postfix reload` has trivial-rewrite
/// and smtp read it again: mail submitted after it goes to the new relay
/// host, and `postern reload` has nothing to warn about.
#[test]
fn relayhost_follows_a_reload() {
    use crate::remote_smtp::{Aiosmtpd, relaying_to, submit};
    let (first, second) = (Aiosmtpd::start("ok", &[]), Aiosmtpd::start("ok", &[]));
    let (server, tmp) = relaying_to(&first, "");
    submit(&server, "a@sender.test", &["bob@remote.test"], "one\r\n");
    assert_eq!(first.wait(1).len(), 1);

    let config = tmp.path().join("postern.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("[127.0.0.1]:{}\"", first.port),
        &format!("[127.0.0.1]:{}\"", second.port),
    );
    std::fs::write(&config, text).unwrap();
    let out = postern_run(&config, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    submit(&server, "a@sender.test", &["bob@remote.test"], "two\r\n");
    let got = second.wait(1);
    assert!(got[0].1.contains("two"), "{got:?}");
    assert_eq!(first.wait(1).len(), 1, "the old relay host got the second");
}

/// The SMTP server's own parameters follow a reload for the connections
/// made after it, as Postfix's new smtpd processes read main.cf again:
/// the banner, and HELO required before MAIL.
#[test]
fn smtpd_settings_follow_a_reload() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let mut before = Client::connect(server.smtp);
    std::fs::write(
        &config,
        config_text(
            tmp.path(),
            "smtpd_banner = \"$myhostname ESMTP reloaded\"\nsmtpd_helo_required = true",
        ),
    )
    .unwrap();
    let out = postern_run(&config, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    let mut after = Client::connect_raw(server.smtp, "127.0.0.1");
    let greeting = after.reply();
    assert_eq!(greeting.trim_end(), "220 mx.test.example ESMTP reloaded");
    let r = after.cmd("MAIL FROM:<s@client.test.example>");
    assert!(r.starts_with("503"), "{r}");
    // A connection made before keeps what it started with.
    let r = before.cmd("MAIL FROM:<s@client.test.example>");
    assert!(r.starts_with("250"), "{r}");
}
