//! Transactions that succeed: the shapes of replies, content and envelope.

use postern_mail::{Address, ReversePath};

use crate::harness::{Server, codes, relay_rule, settings};

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

#[tokio::test]
async fn full_transaction_with_dot_stuffed_body() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    assert_eq!(
        c.cmd("EHLO client.test").await,
        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-ETRN\r\n\
         250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n\
         250 CHUNKING\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<sender@origin.test> BODY=8BITMIME").await,
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<alice@local.test>").await,
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        c.cmd("DATA").await,
        "354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    c.send("Subject: test\r\n\r\n..dot first\r\nplain\r\n...\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await, "250 2.0.0 Ok: queued as ABC00001\r\n");
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
    assert_eq!(c.rest().await, "");

    let done = server.done().await;
    let m = done.message();
    assert_eq!(m.id.as_str(), "ABC00001");
    let content = String::from_utf8(m.content.clone()).unwrap();
    let (received, body) = content.split_at(content.find("Subject:").unwrap());
    assert!(
        received.starts_with(
            "Received: from client.test (unknown [127.0.0.1])\r\n\
             \tby mx.test (Postern) with ESMTP id ABC00001\r\n\
             \tfor <alice@local.test>; "
        ),
        "{received:?}"
    );
    assert!(received.ends_with(" +0000 (UTC)\r\n"), "{received:?}");
    assert_eq!(body, "Subject: test\r\n\r\n.dot first\r\nplain\r\n..\r\n");
    let e = &m.envelope;
    assert_eq!(e.sender, ReversePath::Address(addr("sender@origin.test")));
    assert_eq!(e.recipients.len(), 1);
    assert_eq!(e.recipients[0].address, addr("alice@local.test"));
    assert_eq!(e.helo.as_deref(), Some("client.test"));
    assert_eq!(e.protocol, "ESMTP");
    assert_eq!(e.client.unwrap().ip().to_string(), "127.0.0.1");
    assert_eq!(e.client_name, "unknown");
    assert!(!e.hold);

    done.logged("connect from unknown[127.0.0.1]");
    done.logged("ABC00001: client=unknown[127.0.0.1]");
    done.logged("disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5");
}

#[tokio::test]
async fn pipelined_commands_in_one_write() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.send(
        "MAIL FROM:<s@origin.test>\r\nRCPT TO:<alice@local.test>\r\n\
         RCPT TO:<bob@virt.test>\r\nDATA\r\n",
    )
    .await;
    let mut replies = String::new();
    for _ in 0..4 {
        replies.push_str(&c.reply().await);
    }
    assert_eq!(
        replies,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    c.send("hi\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster@local.test>\r\nDATA\r\n")
        .await;
    let mut replies = String::new();
    for _ in 0..4 {
        replies.push_str(&c.reply().await);
    }
    assert_eq!(codes(&replies), ["250", "250", "250", "354"]);
    c.send(".\r\nQUIT\r\n").await;
    assert_eq!(codes(&c.rest().await), ["250", "221"]);

    let done = server.done().await;
    assert_eq!(done.messages.len(), 2);
    let first = &done.messages[0];
    assert_eq!(first.envelope.recipients.len(), 2);
    let content = String::from_utf8(first.content.clone()).unwrap();
    // Two recipients: no `for <...>` in the Received header.
    assert!(
        content.contains("with ESMTP id ABC00001;\r\n\t"),
        "{content}"
    );
    assert!(content.ends_with("\r\nhi\r\n"));
    let second = &done.messages[1];
    assert_eq!(second.id.as_str(), "ABC00002");
    assert_eq!(second.envelope.sender, ReversePath::Null);
    assert!(String::from_utf8_lossy(&second.content).ends_with("+0000 (UTC)\r\n"));
}

#[tokio::test]
async fn helo_means_smtp_and_a_plain_greeting() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    assert_eq!(c.cmd("HELO old.client").await, "250 mx.test\r\n");
    assert_eq!(c.cmd("MAIL FROM:<a@origin.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RCPT TO:<Postmaster>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(codes(&c.cmd("DATA").await), ["354"]);
    c.send("x\r\n.\r\n").await;
    assert_eq!(codes(&c.reply().await), ["250"]);
    c.cmd("QUIT").await;

    let done = server.done().await;
    let m = done.message();
    assert_eq!(m.envelope.protocol, "SMTP");
    assert_eq!(m.envelope.recipients[0].address, addr("postmaster@mx.test"));
    assert!(String::from_utf8_lossy(&m.content).contains(
        "Received: from old.client (unknown [127.0.0.1])\r\n\tby mx.test (Postern) with SMTP id"
    ));
    done.logged("disconnect from unknown[127.0.0.1] helo=1 mail=1 rcpt=1 data=1 quit=1 commands=5");
}

#[tokio::test]
async fn ehlo_and_rset_end_the_transaction() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    assert_eq!(codes(&c.cmd("MAIL FROM:<a@origin.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RSET").await), ["250"]);
    assert_eq!(
        c.cmd("RCPT TO:<alice@local.test>").await,
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(codes(&c.cmd("MAIL FROM:<a@origin.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    c.ehlo().await;
    assert_eq!(codes(&c.cmd("MAIL FROM:<a@origin.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok\r\n");
    c.cmd("QUIT").await;
    let done = server.done().await;
    // Each transaction took a new queue id at its first accepted RCPT.
    done.logged("ABC00003: client=unknown[127.0.0.1]");
}

#[tokio::test]
async fn duplicate_recipients_and_the_recipient_limit() {
    let mut s = settings();
    s.recipient_limit = 2;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@origin.test>").await;
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<alice@local.test>").await), ["250"]);
    assert_eq!(codes(&c.cmd("RCPT TO:<x@relay.test>").await), ["250"]);
    assert_eq!(
        c.cmd("RCPT TO:<y@relay.test>").await,
        "452 4.5.3 Error: too many recipients\r\n"
    );
    c.cmd("DATA").await;
    c.send(".\r\n").await;
    assert_eq!(codes(&c.reply().await), ["250"]);
    c.cmd("QUIT").await;
    let done = server.done().await;
    assert_eq!(done.message().envelope.recipients.len(), 2);
}

#[tokio::test]
async fn lost_connection_is_logged() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@origin.test>").await;
    drop(c);
    let done = server.done().await;
    done.logged("lost connection after MAIL from unknown[127.0.0.1]");
    done.logged("disconnect from unknown[127.0.0.1] ehlo=1 mail=1 commands=2");
}

/// Cleanup adds Message-Id and Date only for submissions (loopback or
/// authenticated clients); mail relayed from elsewhere keeps its headers.
#[tokio::test]
async fn message_id_and_date_only_for_submissions() {
    for (peer, added) in [(None, true), (Some("192.0.2.9:4000"), false)] {
        let server =
            Server::start_as(settings(), relay_rule(), peer.map(|p| p.parse().unwrap())).await;
        let mut c = server.client().await;
        c.ehlo().await;
        c.cmd("MAIL FROM:<s@origin.test> BODY=8BITMIME SMTPUTF8")
            .await;
        c.cmd(
            "RCPT TO:<postmaster@local.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;pm+2B1@local.test",
        )
        .await;
        c.send("BDAT 20 LAST\r\nSubject: x\r\n\r\nbody\r\n").await;
        let r = c.reply().await;
        assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
        c.cmd("QUIT").await;
        let done = server.done().await;
        let m = &done.messages[0];
        let content = String::from_utf8(m.content.clone()).unwrap();
        assert_eq!(content.contains("\r\nMessage-Id: <"), added, "{content}");
        assert_eq!(content.contains("\r\nDate: "), added, "{content}");
        assert!(
            content.ends_with("\r\nSubject: x\r\n\r\nbody\r\n"),
            "{content}"
        );
        // The ESMTP parameters reach the queue with the envelope.
        assert!(m.envelope.smtputf8 && m.envelope.eight_bit_mime);
        let r = &m.envelope.recipients[0];
        assert_eq!(r.notify.unwrap().keywords(), "SUCCESS,FAILURE");
        assert_eq!(
            r.orcpt.as_ref().unwrap().to_string(),
            "rfc822;pm+1@local.test"
        );
    }
}
