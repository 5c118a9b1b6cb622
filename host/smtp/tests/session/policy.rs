//! The restriction lists and the directory: what is asked, in which order,
//! and what their answers do to the transaction.

use postern_mail::{Address, Decision, DomainClass, PolicyRequest, Stage, Verdict};

use crate::harness::{Rule, Server, codes, permit_with, refuse, relay_rule, settings};

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

#[tokio::test]
async fn relay_access_denied_is_answered_and_logged() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@x.test>").await;
    assert_eq!(
        c.cmd("RCPT TO:<u@example.com>").await,
        "554 5.7.1 <u@example.com>: Relay access denied\r\n"
    );
    c.cmd("QUIT").await;
    let done = server.done().await;
    done.logged(
        "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <u@example.com>: Relay \
         access denied; from=<s@x.test> to=<u@example.com> proto=ESMTP helo=<client.test> \
         plugin=reject_unauth_destination",
    );
    // The relay refusal ended the evaluation: recipient was never asked.
    let stages: Vec<Stage> = done.requests.iter().map(|r| r.stage).collect();
    assert_eq!(
        stages,
        [Stage::Client, Stage::Helo, Stage::Sender, Stage::Relay]
    );
}

#[tokio::test]
async fn unknown_users_at_our_domains() {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@x.test>").await;
    assert_eq!(
        c.cmd("RCPT TO:<nobody@local.test>").await,
        "550 5.1.1 <nobody@local.test>: Recipient address rejected: User unknown in local \
         recipient table\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<nobody@virt.test>").await,
        "550 5.1.1 <nobody@virt.test>: Recipient address rejected: User unknown in virtual \
         mailbox table\r\n"
    );
    assert_eq!(codes(&c.cmd("RCPT TO:<anyone@relay.test>").await), ["250"]);
    c.cmd("QUIT").await;
    let done = server.done().await;
    done.logged(
        "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <nobody@local.test>: \
         Recipient address rejected: User unknown in local recipient table; from=<s@x.test> \
         to=<nobody@local.test> proto=ESMTP helo=<client.test>",
    );
}

#[tokio::test]
async fn every_stage_is_asked_in_order_with_what_is_known() {
    let server = Server::start(
        settings(),
        Box::new(|_: &PolicyRequest| permit_with(vec![])),
    )
    .await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@x.test> SIZE=42").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("12345\r\n.\r\n").await;
    assert_eq!(codes(&c.reply().await), ["250"]);
    c.cmd("QUIT").await;
    let port = server.addr.port();
    let done = server.done().await;
    let r = &done.requests;
    let stages: Vec<Stage> = r.iter().map(|r| r.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Client,
            Stage::Helo,
            Stage::Sender,
            Stage::Relay,
            Stage::Recipient,
            Stage::Data,
            Stage::EndOfData
        ]
    );
    for req in r {
        assert_eq!(req.client_address.unwrap().to_string(), "127.0.0.1");
        assert_eq!(req.server_address.unwrap().to_string(), "127.0.0.1");
        assert_eq!(req.server_port, port);
        assert!(req.client_port > 0);
        assert_eq!(req.client_name, "unknown");
        assert_eq!(req.helo_name, "client.test");
        assert_eq!(req.sender, "s@x.test");
        assert_eq!(req.recipient, "alice@local.test");
        assert_eq!(req.recipient_class, Some(DomainClass::Local));
        assert_eq!(req.protocol_name, "ESMTP");
        // Postfix takes the queue id at the first accepted RCPT.
        let id = if matches!(req.stage, Stage::Data | Stage::EndOfData) {
            "ABC00001"
        } else {
            ""
        };
        assert_eq!(req.queue_id, id);
        assert_eq!(req.instance, r[0].instance);
        assert!(!req.instance.is_empty());
        assert!(!req.trusted);
    }
    assert_eq!(r[4].recipient_count, 0);
    assert_eq!(r[4].size, 42);
    assert_eq!(r[5].recipient_count, 1);
    assert_eq!(r[6].size, 7);
}

#[tokio::test]
async fn hold_prepend_bcc_and_warn() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Recipient => permit_with(vec![
            Verdict::Hold("held for review".into()),
            Verdict::Prepend("X-Policy: checked".into()),
            Verdict::Bcc(addr("audit@relay.test")),
            Verdict::Warn("looks odd".into()),
        ]),
        _ => permit_with(vec![]),
    });
    let server = Server::start(settings(), rule).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@x.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("body\r\n.\r\n").await;
    assert_eq!(codes(&c.reply().await), ["250"]);
    c.cmd("QUIT").await;
    let done = server.done().await;
    let m = done.message();
    assert!(m.envelope.hold);
    let to: Vec<String> = m
        .envelope
        .recipients
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(to, ["alice@local.test", "audit@relay.test"]);
    assert!(
        m.content
            .starts_with(b"X-Policy: checked\r\nReceived: from client.test")
    );
    let tail = "from=<s@x.test> to=<alice@local.test> proto=ESMTP helo=<client.test>";
    done.logged(&format!(
        "NOQUEUE: warn: RCPT from unknown[127.0.0.1]: looks odd; {tail}"
    ));
    done.logged(&format!(
        "ABC00001: hold: RCPT from unknown[127.0.0.1]: held for review; {tail}"
    ));
}

#[tokio::test]
async fn redirect_replaces_the_recipients() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::EndOfData => permit_with(vec![Verdict::Redirect(addr("alice@local.test"))]),
        _ => permit_with(vec![]),
    });
    let server = Server::start(settings(), rule).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@x.test>").await;
    c.cmd("RCPT TO:<one@relay.test>").await;
    c.cmd("RCPT TO:<two@relay.test>").await;
    c.cmd("DATA").await;
    c.send("body\r\n.\r\n").await;
    assert_eq!(codes(&c.reply().await), ["250"]);
    c.cmd("QUIT").await;
    let done = server.done().await;
    let r = &done.message().envelope.recipients;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].address, addr("alice@local.test"));
    assert_eq!(r[0].original, addr("one@relay.test"));
}

#[tokio::test]
async fn discard_acknowledges_and_drops() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Sender if r.sender == "spam@x.test" => {
            permit_with(vec![Verdict::Discard("spam sender".into())])
        }
        _ => permit_with(vec![]),
    });
    let server = Server::start(settings(), rule).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<spam@x.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("buy now\r\n.\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 Ok: queued as ABC00001\r\n");
    c.cmd("QUIT").await;
    let done = server.done().await;
    assert!(done.messages.is_empty());
    done.logged(
        "ABC00001: discard: RCPT from unknown[127.0.0.1]: spam sender; from=<spam@x.test> \
         to=<alice@local.test> proto=ESMTP helo=<client.test>",
    );
}

#[tokio::test]
async fn data_and_end_of_data_refusals() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Data if r.sender.is_empty() => refuse(
            550,
            "5.5.3",
            "<DATA>: Data command rejected: Multi-recipient bounce",
            "reject_multi_recipient_bounce",
        ),
        Stage::EndOfData if r.size > 10 => {
            refuse(452, "4.3.1", "Message too long today", "size_gate")
        }
        _ => permit_with(vec![]),
    });
    let server = Server::start(settings(), rule).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    assert_eq!(
        c.cmd("DATA").await,
        "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce\r\n"
    );
    c.cmd("RSET").await;
    c.cmd("MAIL FROM:<s@x.test>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.cmd("DATA").await;
    c.send("more than ten bytes\r\n.\r\n").await;
    assert_eq!(c.reply().await, "452 4.3.1 Message too long today\r\n");
    c.cmd("QUIT").await;
    let done = server.done().await;
    assert!(done.messages.is_empty());
    done.logged(
        "ABC00001: reject: DATA from unknown[127.0.0.1]: 550 5.5.3 <DATA>: Data command \
         rejected: Multi-recipient bounce; from=<> to=<alice@local.test> proto=ESMTP \
         helo=<client.test> plugin=reject_multi_recipient_bounce",
    );
    done.logged(
        "ABC00002: reject: END-OF-MESSAGE from unknown[127.0.0.1]: 452 4.3.1 Message too long \
         today; from=<s@x.test> to=<alice@local.test> proto=ESMTP helo=<client.test> \
         plugin=size_gate",
    );
}

/// BDAT meets the same `data` and `end_of_data` lists as DATA: a refusal
/// at the first chunk holds for every chunk up to LAST.
#[tokio::test]
async fn bdat_meets_the_data_and_end_of_data_lists() {
    let rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Data if r.sender.is_empty() => refuse(
            550,
            "5.5.3",
            "<DATA>: Data command rejected: Multi-recipient bounce",
            "reject_multi_recipient_bounce",
        ),
        Stage::EndOfData if r.size > 10 => {
            refuse(452, "4.3.1", "Message too long today", "size_gate")
        }
        _ => permit_with(vec![]),
    });
    let server = Server::start(settings(), rule).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<>").await;
    c.cmd("RCPT TO:<alice@local.test>").await;
    let refused = "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce\r\n";
    c.send("BDAT 3\r\nabc").await;
    assert_eq!(c.reply().await, refused);
    c.send("BDAT 3 LAST\r\ndef").await;
    assert_eq!(c.reply().await, refused);
    // LAST ended the transaction.
    assert!(c.cmd("MAIL FROM:<s@x.test>").await.starts_with("250"));
    c.cmd("RCPT TO:<alice@local.test>").await;
    c.send("BDAT 20 LAST\r\nmore than ten bytes\n").await;
    assert_eq!(c.reply().await, "452 4.3.1 Message too long today\r\n");
    c.cmd("QUIT").await;
    let done = server.done().await;
    assert!(done.messages.is_empty());
    done.logged(
        "ABC00001: reject: BDAT from unknown[127.0.0.1]: 550 5.5.3 <DATA>: Data command \
         rejected: Multi-recipient bounce; from=<> to=<alice@local.test> proto=ESMTP \
         helo=<client.test> plugin=reject_multi_recipient_bounce",
    );
    done.logged(
        "ABC00002: reject: END-OF-MESSAGE from unknown[127.0.0.1]: 452 4.3.1 Message too long \
         today; from=<s@x.test> to=<alice@local.test> proto=ESMTP helo=<client.test> \
         plugin=size_gate",
    );
    assert!(
        !done
            .logs
            .iter()
            .any(|l| l.starts_with("ABC00001: reject: END-OF-MESSAGE"))
    );
}

#[tokio::test]
async fn a_421_or_521_from_a_policy_closes_the_connection() {
    for (code, enhanced) in [(421, "4.7.0"), (521, "5.7.1")] {
        let rule: Rule = Box::new(move |r: &PolicyRequest| {
            if r.stage == Stage::Recipient {
                refuse(code, enhanced, "Go away", "check_client_access")
            } else {
                Decision::permit()
            }
        });
        let server = Server::start(settings(), rule).await;
        let mut c = server.client().await;
        c.ehlo().await;
        c.cmd("MAIL FROM:<s@x.test>").await;
        c.send("RCPT TO:<u@example.org>\r\nNOOP\r\n").await;
        // The refusal, then the end of the stream: the NOOP is never read.
        assert_eq!(c.rest().await, format!("{code} {enhanced} Go away\r\n"));
        server.done().await;
    }
}

#[tokio::test]
async fn hangup_closes_with_421_logged_as_hangup_and_info_is_logged() {
    let rule: Rule = Box::new(|r: &PolicyRequest| match r.stage {
        Stage::Sender => permit_with(vec![Verdict::Info("sender watched".into())]),
        Stage::Recipient => Decision {
            verdict: Verdict::Hangup(postern_mail::Reply::new(
                421,
                postern_mail::EnhancedCode::new(4, 7, 0),
                "go away",
            )),
            decided_by: Some("check_sender_access".into()),
            actions: Vec::new(),
        },
        _ => Decision::permit(),
    });
    let server = Server::start(settings(), rule).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<s@x.test>").await;
    c.send("RCPT TO:<alice@local.test>\r\nNOOP\r\n").await;
    assert_eq!(c.rest().await, "421 4.7.0 go away\r\n");
    let done = server.done().await;
    let tail = "from=<s@x.test> to=<alice@local.test> proto=ESMTP helo=<client.test>";
    // Postfix's log_whatsup lines.
    done.logged(&format!(
        "NOQUEUE: info: RCPT from unknown[127.0.0.1]: sender watched; {tail}"
    ));
    done.logged(&format!(
        "NOQUEUE: hangup: RCPT from unknown[127.0.0.1]: go away; {tail} \
         plugin=check_sender_access"
    ));
    assert!(
        !done.logs.iter().any(|l| l.contains("reject:")),
        "{:?}",
        done.logs
    );
}
