//! Bad input gets the right reply, and the server keeps serving.

use crate::support::*;

#[test]
fn oversized_messages_are_refused() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    // Announced too big (SIZE=, RFC 1870).
    let r = c.cmd("MAIL FROM:<s@client.test.example> SIZE=200000");
    assert!(r.starts_with("552 5.3.4"), "{r}");
    // Not announced, but too big when it comes.
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let line = format!("{}\r\n", "y".repeat(998));
    for _ in 0..150 {
        c.send(line.as_bytes());
    }
    c.send(b".\r\n");
    let r = c.reply();
    assert!(r.starts_with("552 5.3.4"), "{r}");
    // Still serving: a normal message goes through on the same connection.
    let r = send_message(
        &mut c,
        "s@client.test.example",
        &["alice@example.org"],
        "Subject: small\r\n\r\nok\r\n",
    );
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    assert_eq!(wait_messages(&server.new_dir("alice"), 1).len(), 1);
}

#[test]
fn overlong_command_lines_are_refused() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    let r = c.cmd(&format!("EHLO {}", "a".repeat(5000)));
    assert!(r.starts_with("500 5.5.2"), "{r}");
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221 2.0.0"));
}

#[test]
fn commands_out_of_order() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .starts_with("503 5.5.1")
    );
    assert!(c.cmd("DATA").starts_with("503 5.5.1"));
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250 2.1.0")
    );
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("503 5.5.1")
    );
    // In a transaction without recipients Postfix answers 554, not 503.
    let r = c.cmd("DATA");
    assert!(r.starts_with("554 5.5.1 Error: no valid recipients"), "{r}");
    assert!(c.cmd("RSET").starts_with("250 2.0.0"));
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .starts_with("503 5.5.1")
    );
    assert!(c.cmd("MAIL FROM:<not an address>").starts_with("501 5.1.7"));
    assert!(c.cmd("NOOP").starts_with("250 2.0.0"));
    assert!(c.cmd("QUIT").starts_with("221 2.0.0"));
}

#[test]
fn garbage_bytes_then_a_clean_session() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut garbage = Vec::new();
    for _ in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        garbage.push((seed >> 24) as u8);
    }
    // Keep line ends out so the reply count is known: one line of garbage.
    garbage.retain(|b| *b != b'\n' && *b != b'\r');
    garbage.extend_from_slice(b"\r\n");
    c.send(&garbage);
    let r = c.reply();
    assert!(r.starts_with("5"), "{r}");
    // A fresh connection works, and so does this one.
    let r = send_message(
        &mut c,
        "s@client.test.example",
        &["alice@example.org"],
        "Subject: after garbage\r\n\r\nok\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let mut d = Client::connect(server.smtp);
    assert!(d.cmd("EHLO again.test.example").starts_with("250"));
}

#[test]
fn too_many_errors_disconnect() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    let mut last = String::new();
    for _ in 0..40 {
        last = c.cmd("BOGUS");
        if last.is_empty() || last.starts_with("421") {
            break;
        }
    }
    assert!(last.starts_with("421 4.7.0") || last.is_empty(), "{last}");
    // The server itself keeps serving.
    let mut d = Client::connect(server.smtp);
    assert!(d.cmd("NOOP").starts_with("250"));
}
