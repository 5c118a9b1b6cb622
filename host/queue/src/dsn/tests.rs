//! Tests of the notices [`super::compose()`] writes: report fields, `RET`,
//! `ENVID` and `ORCPT`, success notices, remote replies and delay
//! warnings, each checked in the text of a whole notice. Apart because
//! they are longer than the code they test.

use std::time::Duration;

use postern_mail::{Address, Domain, QueueId, Ret};

use super::*;
use crate::format::QueuedMessage;
use crate::testing::envelope;

#[test]
fn report_fields() {
    let env = envelope(&["bob@example.net"]);
    let message = QueuedMessage {
        id: QueueId::parse("AAAAAA111111").unwrap(),
        envelope: env,
        content: b"Subject: hi\r\nX: y\r\n\r\nsecret body\r\n".to_vec(),
        statuses: vec![RecipientStatus::Pending],
        deferrals: 0,
        next_attempt: None,
        notified: vec![false],
        remote: vec![None],
        warned: false,
    };
    let mut rcpt = message.envelope.recipients[0].clone();
    rcpt.original = Address::parse("Bob@Example.NET").unwrap();
    let status = RecipientStatus::Bounced {
        dsn: EnhancedCode::new(5, 1, 1),
        detail: "unknown user: \"bob\"\r\nsecond line".to_owned(),
    };
    let failures = [Failure::of(&rcpt, &status, None).unwrap()];
    let notice = QueueId::parse("BBBBBB222222").unwrap();
    let host = Domain::parse("mx.example.org").unwrap();
    let text = compose(
        &host,
        &notice,
        "alice@example.org",
        Audience::Sender,
        &message,
        &failures,
        SystemTime::UNIX_EPOCH,
    );
    let text = String::from_utf8(text).unwrap();
    for needle in [
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n",
        "report-type=delivery-status;",
        "Reporting-MTA: dns; mx.example.org\r\n",
        "Arrival-Date: ",
        "Final-Recipient: rfc822; bob@example.net\r\n",
        "Original-Recipient: rfc822; Bob@example.net\r\n",
        "Action: failed\r\nStatus: 5.1.1\r\n",
        "Diagnostic-Code: X-Postern; unknown user: \"bob\"  second line\r\n",
        "Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: hi\r\nX: y\r\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    assert!(!text.contains("secret body"));
    assert!(text.ends_with("--\r\n"));
}

fn message(ret: Option<Ret>) -> QueuedMessage {
    let mut env = envelope(&["bob@example.net"]);
    env.ret = ret;
    env.envid = Some("QQ314159".to_owned());
    env.recipients[0].orcpt = Some(postern_mail::Orcpt {
        addr_type: "rfc822".to_owned(),
        address: "Bob@Original.example".to_owned(),
    });
    QueuedMessage {
        id: QueueId::parse("AAAAAA111111").unwrap(),
        envelope: env,
        content: b"Subject: hi\r\n\r\nsecret body\r\n".to_vec(),
        statuses: vec![RecipientStatus::Pending],
        deferrals: 0,
        next_attempt: None,
        notified: vec![false],
        remote: vec![None],
        warned: false,
    }
}

fn notice(message: &QueuedMessage, audience: Audience, status: &RecipientStatus) -> String {
    let rcpt = &message.envelope.recipients[0];
    let entry = match audience {
        Audience::Success => Failure::success(rcpt, status, None),
        _ => Failure::of(rcpt, status, None),
    };
    let text = compose(
        &Domain::parse("mx.example.org").unwrap(),
        &QueueId::parse("BBBBBB222222").unwrap(),
        "alice@example.org",
        audience,
        message,
        &[entry.unwrap()],
        SystemTime::UNIX_EPOCH,
    );
    String::from_utf8(text).unwrap()
}

#[test]
fn ret_full_returns_the_message_with_envid_and_orcpt() {
    let bounced = RecipientStatus::Bounced {
        dsn: EnhancedCode::new(5, 1, 1),
        detail: "unknown user".to_owned(),
    };
    let text = notice(&message(Some(Ret::Full)), Audience::Sender, &bounced);
    for needle in [
        "Original-Envelope-Id: QQ314159\r\nReporting-MTA: dns; mx.example.org\r\n",
        "Original-Recipient: rfc822;Bob@Original.example\r\n",
        "Content-Type: message/rfc822\r\n",
        "secret body",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    let text = notice(&message(Some(Ret::Headers)), Audience::Sender, &bounced);
    assert!(!text.contains("secret body"));
    assert!(text.contains("Content-Type: text/rfc822-headers\r\n"));
}

#[test]
fn success_notice() {
    let sent = RecipientStatus::Sent {
        dsn: EnhancedCode::new(2, 0, 0),
        detail: "delivered to maildir".to_owned(),
    };
    let text = notice(&message(None), Audience::Success, &sent);
    for needle in [
        "Subject: Successful Mail Delivery Report\r\n",
        "Action: delivered\r\nStatus: 2.0.0\r\n",
        "Content-Description: Delivered Message Headers\r\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    let relayed = RecipientStatus::Sent {
        dsn: EnhancedCode::new(2, 0, 0),
        detail: "250 2.0.0 Ok: queued as X".to_owned(),
    };
    let text = notice(&message(None), Audience::Success, &relayed);
    assert!(text.contains("Action: relayed\r\n"), "{text}");
}

#[test]
fn a_remote_reply_is_quoted_with_its_mta() {
    let remote = RemoteReply {
        mta: "mx.example.net".to_owned(),
        reply: "550 5.1.1 <bob@example.net>: unknown user".to_owned(),
    };
    let bounced = RecipientStatus::Bounced {
        dsn: EnhancedCode::new(5, 1, 1),
        detail: "host mx.example.net[192.0.2.1] said: 550 5.1.1 <bob@example.net>: unknown user (in reply to RCPT TO command)".to_owned(),
    };
    let m = message(None);
    let rcpt = &m.envelope.recipients[0];
    let entry = Failure::of(rcpt, &bounced, Some(&remote)).unwrap();
    let text = compose(
        &Domain::parse("mx.example.org").unwrap(),
        &QueueId::parse("BBBBBB222222").unwrap(),
        "alice@example.org",
        Audience::Sender,
        &m,
        &[entry],
        SystemTime::UNIX_EPOCH,
    );
    let text = String::from_utf8(text).unwrap();
    for needle in [
        "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: unknown user\r\n",
        "<bob@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    assert!(!text.contains("X-Postern;"), "{text}");
}

#[test]
fn delay_warning() {
    let deferred = RecipientStatus::Deferred {
        dsn: EnhancedCode::new(4, 4, 1),
        detail: "connect to mx.example.net[192.0.2.1]:25: Connection refused".to_owned(),
    };
    let mut m = message(Some(Ret::Full));
    m.envelope.arrival = SystemTime::UNIX_EPOCH;
    let rcpt = &m.envelope.recipients[0];
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(5 * 86_400);
    let entry = Failure::delayed(rcpt, &deferred, None, until).unwrap();
    assert!(Failure::delayed(rcpt, &RecipientStatus::Pending, None, until).is_none());
    let text = compose(
        &Domain::parse("mx.example.org").unwrap(),
        &QueueId::parse("BBBBBB222222").unwrap(),
        "alice@example.org",
        Audience::Delay,
        &m,
        &[entry],
        SystemTime::UNIX_EPOCH + Duration::from_secs(4 * 3600),
    );
    let text = String::from_utf8(text).unwrap();
    for needle in [
        "Subject: Delayed Mail (still being retried)\r\n",
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n",
        "Your message could not be delivered for 4 hour(s).\r\n",
        "It will be retried until it is 5 day(s) old.\r\n",
        "Action: delayed\r\nStatus: 4.4.1\r\nDiagnostic-Code: X-Postern; connect to",
        "Will-Retry-Until: Tue, 06 Jan 1970 00:00:00 +0000",
        "Content-Description: Delayed Message Headers\r\nContent-Type: text/rfc822-headers\r\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    // RET=FULL or not, a warning returns only the headers.
    assert!(!text.contains("secret body"), "{text}");
}
