//! `postern reload` re-reads the users file for everything that reads it:
//! the RCPT checks (known recipients and the virtual domains the file
//! adds), local delivery and the router, not only logins. A user added is
//! accepted and delivered to; a user removed is refused `550 5.1.1`; a
//! broken file changes nothing.

use crate::support::*;

/// The RCPT reply for `rcpt` in a fresh transaction from `source`.
fn rcpt(server: &Server, source: &str, rcpt: &str) -> String {
    let from = "s@client.test.example";
    rcpt_from(server.smtp, source, "client.test.example", from, rcpt).0
}

fn reload_ok(server: &Server, config: &std::path::Path, users: usize) {
    reload(config);
    server.wait_log(&format!("reload: {users} users"));
}

#[test]
fn reload_adds_and_removes_recipients_and_mailboxes() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let users = tmp.path().join("users");
    let r = rcpt(&server, "127.0.0.1", "carol@example.org");
    assert!(r.starts_with("550 5.1.1 "), "{r}");
    assert!(r.contains("User unknown in local recipient table"), "{r}");
    // An untrusted client: newdomain.example is nobody's yet.
    let r = rcpt(&server, "127.0.0.2", "dave@newdomain.example");
    assert!(r.starts_with("554 5.7.1"), "{r}");

    // carol at a local domain, dave at a virtual domain only the users
    // file names; bob is gone.
    std::fs::write(
        &users,
        "alice@example.org:{PLAIN}secret::::\n\
         carol@example.org:{PLAIN}secret::::\n\
         dave@newdomain.example:{PLAIN}secret::::\n",
    )
    .unwrap();
    reload_ok(&server, &config, 3);

    let r = rcpt(&server, "127.0.0.1", "bob@example.org");
    assert!(r.starts_with("550 5.1.1 "), "{r}");
    let r = rcpt(&server, "127.0.0.2", "dave@other.newdomain.example");
    assert!(r.starts_with("554 5.7.1"), "{r}");
    let r = rcpt(&server, "127.0.0.2", "nobody@newdomain.example");
    assert!(
        r.starts_with("550 5.1.1 ") && r.contains("virtual mailbox table"),
        "{r}"
    );
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    let body = "Subject: new users\r\n\r\nhello\r\n";
    let r = send_message(
        &mut c,
        "s@client.test.example",
        &["carol@example.org", "dave@newdomain.example"],
        body,
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let carol = wait_messages(&server.new_dir("carol"), 1);
    assert!(String::from_utf8_lossy(&carol[0]).contains("Delivered-To: carol@example.org"));
    let dave = wait_messages(
        &tmp.path().join("mail/newdomain.example/dave/Maildir/new"),
        1,
    );
    assert!(String::from_utf8_lossy(&dave[0]).contains("Delivered-To: dave@newdomain.example"));

    // A broken users file: nothing changes, not even for RCPT.
    std::fs::write(&users, "carol@example.org:{PLAIN}x:abc::::\n").unwrap();
    let stderr = reload_refused(&config);
    assert!(stderr.contains("users:1: bad uid"), "{stderr}");
    assert!(rcpt(&server, "127.0.0.2", "carol@example.org").starts_with("250"));

    // The whole virtual domain goes with its last user.
    std::fs::write(&users, "alice@example.org:{PLAIN}secret::::\n").unwrap();
    reload_ok(&server, &config, 1);
    let r = rcpt(&server, "127.0.0.1", "carol@example.org");
    assert!(r.starts_with("550 5.1.1 "), "{r}");
    let r = rcpt(&server, "127.0.0.2", "dave@newdomain.example");
    assert!(r.starts_with("554 5.7.1"), "{r}");
    assert!(rcpt(&server, "127.0.0.1", "alice@example.org").starts_with("250"));
}

#[test]
fn a_new_user_logs_in_to_pop3_and_reads_what_was_delivered() {
    let services = "[[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n";
    let (server, tmp) = Server::start(services);
    std::fs::write(
        tmp.path().join("users"),
        format!("{USERS}erin@example.org:{{PLAIN}}secret::::\n"),
    )
    .unwrap();
    reload_ok(&server, &tmp.path().join("postern.toml"), 3);
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "bob@example.org",
        &["erin@example.org"],
        "Subject: welcome\r\n\r\nhi erin\r\n",
    );
    wait_messages(&server.new_dir("erin"), 1);
    let needle = "listening on pop3 ";
    let log = server.wait_log(needle);
    let addr = log
        .lines()
        .find_map(|l| l.split(needle).nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = python(
        r#"
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30)
p.user("erin@example.org")
p.pass_("secret")
print("stat", p.stat()[0])
print(b"\n".join(p.retr(1)[1]).decode())
p.quit()
"#,
        &[host, port],
    );
    assert!(out.starts_with("stat 1\n"), "{out}");
    assert!(out.contains("hi erin"), "{out}");
}
