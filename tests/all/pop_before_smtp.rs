//! POP-before-SMTP: a POP3 login from an address lets it relay through
//! `permit_pop_before_smtp` for `pop_before_smtp_timeout`, and no longer.

use std::time::Duration;

use crate::support::{
    Client, Server, config_text, python, rcpt_from, reload, send_accepted, wait_messages,
};

const CONFIG: &str = "pop_before_smtp_timeout = \"2s\"\n\
    smtpd_recipient_restrictions = [\"permit_mynetworks\", \"permit_pop_before_smtp\", \"reject_unauth_destination\"]\n\
    [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n";

/// RCPT to a remote address from 127.0.0.2 (not in mynetworks).
fn relay_reply(server: &Server) -> String {
    let (from, to) = ("alice@example.org", "friend@elsewhere.example");
    let (r, mut c) = rcpt_from(server.smtp, "127.0.0.2", "roaming.example", from, to);
    assert!(c.cmd("QUIT").starts_with("221"));
    r
}

/// Gives alice a mailbox to log in to; the pop3 service's port.
fn mailbox(server: &Server) -> String {
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "bob@example.org",
        &["alice@example.org"],
        "Subject: x\r\n\r\nx\r\n",
    );
    wait_messages(&server.new_dir("alice"), 1);
    server.listening("pop3").port().to_string()
}

/// Logs in as alice over POP3 from `source`.
const LOGIN: &str = r#"
import socket, sys
port, source, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
f = s.makefile("rb")
def cmd(line):
    if line:
        s.sendall(line.encode() + b"\r\n")
    return f.readline().decode().strip()
print(cmd(None))
print(cmd("USER alice@example.org"))
print(cmd("PASS " + password))
print(cmd("QUIT"))
"#;

#[test]
fn a_pop3_login_opens_relaying_for_a_while() {
    let (server, _tmp) = Server::start(CONFIG);
    let pop3 = mailbox(&server);
    let denied = "554 5.7.1 <friend@elsewhere.example>: Relay access denied\r\n";
    assert_eq!(relay_reply(&server), denied);
    // A failed login opens nothing.
    let out = python(LOGIN, &[&pop3, "127.0.0.2", "wrong"]);
    assert!(out.contains("-ERR"), "{out}");
    assert_eq!(relay_reply(&server), denied);
    // Another address's login opens nothing for 127.0.0.2.
    let out = python(LOGIN, &[&pop3, "127.0.0.3", "secret"]);
    assert!(out.contains("+OK Logged in."), "{out}");
    assert_eq!(relay_reply(&server), denied);

    let out = python(LOGIN, &[&pop3, "127.0.0.2", "secret"]);
    assert!(out.contains("+OK Logged in."), "{out}");
    assert_eq!(relay_reply(&server), "250 2.1.5 Ok\r\n");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(relay_reply(&server), denied);
}

/// `pop_before_smtp_timeout` follows a reload: a login made under an hour
/// stops counting once the reload says a second.
#[test]
fn the_timeout_follows_a_reload() {
    let hour = CONFIG.replace("\"2s\"", "\"1h\"");
    let (server, tmp) = Server::start(&hour);
    let pop3 = mailbox(&server);
    let out = python(LOGIN, &[&pop3, "127.0.0.2", "secret"]);
    assert!(out.contains("+OK Logged in."), "{out}");
    assert_eq!(relay_reply(&server), "250 2.1.5 Ok\r\n");

    let config = tmp.path().join("postern.toml");
    let second = CONFIG.replace("\"2s\"", "\"1s\"");
    std::fs::write(&config, config_text(tmp.path(), &second)).unwrap();
    reload(&config);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        relay_reply(&server),
        "554 5.7.1 <friend@elsewhere.example>: Relay access denied\r\n"
    );
}
