//! Durability: whatever got a 250 survives a SIGKILL, and is delivered
//! exactly once after the restart.

use crate::support::*;

#[test]
fn sigkill_after_250_delivers_each_message_exactly_once() {
    let (server, tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    let n = 25;
    for i in 0..n {
        let body = format!(
            "Subject: crash {i}\r\nMessage-ID: <crash-{i}@client.test.example>\r\n\r\nbody {i}\r\n"
        );
        let r = send_message(
            &mut c,
            "s@client.test.example",
            &["alice@example.org"],
            &body,
        );
        assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    }
    // Killed right after the last 250: some messages are still queued.
    server.kill();
    let server = Server::start_in(tmp.path());
    let msgs = wait_messages(&server.new_dir("alice"), n);
    for i in 0..n {
        let id = format!("Message-ID: <crash-{i}@client.test.example>");
        let count = msgs
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains(&id))
            .count();
        assert_eq!(count, 1, "message {i} delivered {count} times");
    }
    // The queue is empty afterwards.
    let active = std::fs::read_dir(tmp.path().join("queue/active"))
        .unwrap()
        .count();
    assert_eq!(active, 0);
}
