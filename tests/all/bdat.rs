//! CHUNKING/BDAT (RFC 3030) end to end over raw sockets: chunks with LAST
//! delivered byte for byte (no dot-unstuffing: a chunk may hold lines
//! that are only a dot), pipelined chunks, a chunk whose announced size is
//! wrong either way, the mixing rules with DATA, MAIL and RCPT, a BDAT
//! outside a transaction, a bad size (521 and close), and
//! `message_size_limit` counted across chunks.

use crate::support::*;

/// The delivered message without the headers the server put on top
/// (Return-Path, Delivered-To, Received, and Message-Id and Date for this
/// local client): what follows our Received header's date line.
fn after_trace(delivered: &[u8], first_client_header: &[u8]) -> Vec<u8> {
    let at = delivered
        .windows(first_client_header.len())
        .position(|w| w == first_client_header)
        .expect("client header in the delivered message");
    delivered[at..].to_vec()
}

fn start_transaction(c: &mut Client, rcpt: &str) {
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<sender@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd(&format!("RCPT TO:<{rcpt}>")).starts_with("250"));
}

#[test]
fn chunks_with_last_arrive_byte_for_byte() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    start_transaction(&mut c, "alice@example.org");
    // What DATA would unstuff or end on is plain content in a chunk.
    let part1: &[u8] = b"Subject: chunked\r\nMessage-ID: <c1@client.test.example>\r\n\
        Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n.\r\n..two dots\r\n";
    let part2: &[u8] = b".\r\nQUIT\r\n\r\n.\r\nlast line\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes());
    c.send(part1);
    assert_eq!(
        c.reply(),
        format!("250 2.0.0 Ok: {} bytes\r\n", part1.len())
    );
    // The second chunk and an empty LAST, pipelined in one write.
    let mut batch = format!("BDAT {}\r\n", part2.len()).into_bytes();
    batch.extend_from_slice(part2);
    batch.extend_from_slice(b"BDAT 0 LAST\r\n");
    c.send(&batch);
    assert!(c.reply().starts_with("250 2.0.0 Ok: "));
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert!(c.cmd("QUIT").starts_with("221"));
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert_eq!(
        after_trace(&got[0], b"Subject: chunked"),
        [part1, part2].concat()
    );
    let log = server.wait_log("bdat=3");
    assert!(log.contains("disconnect from"), "{log}");
}

#[test]
fn single_chunk_with_last() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    start_transaction(&mut c, "bob@example.org");
    let body: &[u8] = b"Subject: one\r\n\r\nbare\nline feed stays\r\n";
    c.send(format!("BDAT {} LAST\r\n", body.len()).as_bytes());
    c.send(body);
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    // A new transaction may follow at once.
    assert!(c.cmd("MAIL FROM:<>").starts_with("250"));
    let got = wait_messages(&server.new_dir("bob"), 1);
    assert!(got[0].ends_with(body));
}

#[test]
fn chunk_shorter_than_announced_waits_then_loses_the_message() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    start_transaction(&mut c, "alice@example.org");
    // 100 announced, 30 sent: the QUIT is read as content, and the
    // connection closes before the chunk is complete.
    c.send(b"BDAT 100 LAST\r\nSubject: short\r\n\r\nhello\r\nQUIT\r\n");
    drop(c);
    server.wait_log("lost connection after BDAT");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(messages(&server.new_dir("alice")).is_empty());
}

#[test]
fn chunk_longer_than_announced_leaves_the_rest_as_commands() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    start_transaction(&mut c, "alice@example.org");
    // 17 announced: the line after them is taken as a command.
    c.send(b"BDAT 17 LAST\r\nSubject: long\r\n\r\nthis is not a command\r\n");
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert_eq!(c.reply(), "500 5.5.2 Error: command not recognized\r\n");
    assert!(c.cmd("NOOP").starts_with("250"));
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(
        got[0].ends_with(b"Subject: long\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got[0])
    );
}

#[test]
fn mixing_rules_and_bdat_outside_a_transaction() {
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    // No transaction: refused, and the chunk is read and dropped so the
    // next command is still a command.
    c.send(b"BDAT 6\r\nNOOP\r\n");
    assert_eq!(c.reply(), "503 5.5.1 Error: need RCPT command\r\n");
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<sender@client.test.example>")
            .starts_with("250")
    );
    c.send(b"BDAT 4\r\nabcd");
    assert_eq!(c.reply(), "554 5.5.1 Error: no valid recipients\r\n");
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    c.send(b"BDAT 4\r\nabcd");
    assert_eq!(c.reply(), "250 2.0.0 Ok: 4 bytes\r\n");
    assert_eq!(c.cmd("DATA"), "503 5.5.1 Error: DATA after BDAT\r\n");
    assert_eq!(
        c.cmd("RCPT TO:<bob@example.org>"),
        "503 5.5.1 Error: RCPT after BDAT\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<sender@client.test.example>"),
        "503 5.5.1 Error: MAIL after BDAT\r\n"
    );
    assert_eq!(c.cmd("BDAT 0"), "551 5.7.1 Null BDAT request\r\n");
    // RSET drops the chunks; DATA works in the next transaction.
    assert!(c.cmd("RSET").starts_with("250"));
    let r = send_message(
        &mut c,
        "sender@client.test.example",
        &["alice@example.org"],
        "Subject: after rset\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(!String::from_utf8_lossy(&got[0]).contains("abcd"));
}

#[test]
fn bad_bdat_size_closes_the_session() {
    let (server, _tmp) = Server::start("");
    for line in ["BDAT", "BDAT ten LAST", "BDAT 10 FIRST", "BDAT -5"] {
        let mut c = Client::connect(server.smtp);
        start_transaction(&mut c, "alice@example.org");
        c.send(format!("{line}\r\n0123456789NOOP\r\n").as_bytes());
        assert_eq!(
            c.rest(),
            "521 5.5.4 Syntax: BDAT count [LAST]\r\n",
            "{line}"
        );
    }
    assert!(messages(&server.new_dir("alice")).is_empty());
}

#[test]
fn message_size_limit_counts_every_chunk() {
    // The test config's message_size_limit is 100000.
    let (server, _tmp) = Server::start("");
    let mut c = Client::connect(server.smtp);
    start_transaction(&mut c, "alice@example.org");
    let chunk = vec![b'x'; 60_000];
    c.send(b"BDAT 60000\r\n");
    c.send(&chunk);
    assert_eq!(c.reply(), "250 2.0.0 Ok: 60000 bytes\r\n");
    c.send(b"BDAT 60000\r\n");
    c.send(&chunk);
    assert_eq!(c.reply(), "552 5.3.4 Chunk exceeds message size limit\r\n");
    // Later chunks are read and refused alike; LAST ends the transaction.
    c.send(b"BDAT 10 LAST\r\n0123456789");
    assert_eq!(c.reply(), "552 5.3.4 Chunk exceeds message size limit\r\n");
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .starts_with("503 5.5.1 Error: need MAIL")
    );
    // The next transaction is unaffected.
    assert!(
        c.cmd("MAIL FROM:<sender@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    c.send(b"BDAT 5 LAST\r\nhello");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(got[0].ends_with(b"hello"));
    server.wait_log("reject: END-OF-MESSAGE");
}
