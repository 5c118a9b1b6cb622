//! The notice itself: an RFC 3464 delivery status notification,
//! `multipart/report; report-type=delivery-status` (RFC 6522), with the
//! three parts Postfix's bounce(8) writes: a human-readable explanation,
//! the `message/delivery-status` report, and the returned message: its
//! headers (`text/rfc822-headers`), or all of it (`message/rfc822`) when
//! the sender asked `RET=FULL` (RFC 3461 §4.3). The sender's `ENVID` comes
//! back as `Original-Envelope-Id` and each `ORCPT` as
//! `Original-Recipient` (RFC 3461 §6.3). A failure notice (a bounce) and a
//! success notice (`NOTIFY=SUCCESS`, RFC 3461 §5.2.2) differ in wording
//! and in each recipient's `Action`.

use std::time::SystemTime;

use postern_mail::{Domain, EnhancedCode, QueueId, Recipient, Ret};

use crate::date;
use crate::format::QueuedMessage;
use crate::status::RecipientStatus;

/// Who the notice is for, and so how it is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// The original sender (a bounce).
    Sender,
    /// The postmaster, about a bounce that could not be returned (a double
    /// bounce).
    Postmaster,
    /// The original sender, about recipients delivered with
    /// `NOTIFY=SUCCESS`.
    Success,
}

/// One recipient as the report lists it.
#[derive(Debug, Clone)]
pub(crate) struct Failure<'a> {
    pub recipient: &'a Recipient,
    /// RFC 3464 §2.3.3: `failed`, `delivered` or `relayed`.
    pub action: &'static str,
    /// `5.x.x` with `failed` (RFC 3464 §2.3.4), `2.x.x` otherwise.
    pub status: EnhancedCode,
    pub diagnostic: String,
}

impl<'a> Failure<'a> {
    /// The report line of a bounced or expired recipient; `None` for any
    /// other state.
    pub fn of(recipient: &'a Recipient, status: &RecipientStatus) -> Option<Failure<'a>> {
        match status {
            RecipientStatus::Bounced { dsn, detail } => Some(Failure {
                recipient,
                action: "failed",
                status: *dsn,
                diagnostic: detail.clone(),
            }),
            // RFC 3463 §3.5: X.4.7 "delivery time expired".
            RecipientStatus::Expired { detail, .. } => Some(Failure {
                recipient,
                action: "failed",
                status: EnhancedCode::new(5, 4, 7),
                diagnostic: if detail.is_empty() {
                    "delivery time expired".to_owned()
                } else {
                    format!("delivery time expired; last attempt: {detail}")
                },
            }),
            _ => None,
        }
    }

    /// The report line of a delivered recipient; `None` for any other
    /// state. RFC 3461 §6.2: `delivered` into a mailbox here, `relayed`
    /// when handed to another MTA (which is all we know of a remote
    /// delivery). A local agent's text says `delivered ...`.
    pub fn success(recipient: &'a Recipient, status: &RecipientStatus) -> Option<Failure<'a>> {
        let RecipientStatus::Sent { dsn, detail } = status else {
            return None;
        };
        let action = if detail.starts_with("delivered") {
            "delivered"
        } else {
            "relayed"
        };
        Some(Failure {
            recipient,
            action,
            status: *dsn,
            diagnostic: detail.clone(),
        })
    }
}

/// The complete notice (headers and body, CRLF line ends) about
/// `failures` of `original`, queued as `notice_id`, addressed to `to`.
pub(crate) fn compose(
    hostname: &Domain,
    notice_id: &QueueId,
    to: &str,
    audience: Audience,
    original: &QueuedMessage,
    failures: &[Failure<'_>],
    now: SystemTime,
) -> Vec<u8> {
    let boundary = format!("{notice_id}.{}/{hostname}", unix(now));
    let subject = match audience {
        Audience::Sender => "Undelivered Mail Returned to Sender",
        Audience::Postmaster => "Postmaster Copy: Undelivered Mail",
        Audience::Success => "Successful Mail Delivery Report",
    };
    let mut m = String::new();
    let mut line = |s: &str| {
        m.push_str(s);
        m.push_str("\r\n");
    };
    line(&format!(
        "From: MAILER-DAEMON@{hostname} (Mail Delivery System)"
    ));
    line(&format!("To: {to}"));
    line(&format!("Subject: {subject}"));
    line(&format!("Date: {}", date::rfc5322(now)));
    line(&format!("Message-ID: <{notice_id}@{hostname}>"));
    // RFC 3834 §5: a notice is never to be answered automatically.
    line("Auto-Submitted: auto-replied");
    line("MIME-Version: 1.0");
    line(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\""
    ));
    line("Content-Transfer-Encoding: 8bit");
    line("");
    line("This is a MIME-encapsulated message.");
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Notification");
    line("Content-Type: text/plain; charset=utf-8");
    line("Content-Transfer-Encoding: 8bit");
    line("");
    line(&format!("This is the mail system at host {hostname}."));
    line("");
    match audience {
        Audience::Sender => {
            line("I'm sorry to have to inform you that your message could not");
            line("be delivered to one or more recipients. It's attached below.");
            line("");
            line("For further assistance, please send mail to postmaster.");
            line("");
            line("If you do so, please include this problem report. You can");
            line("delete your own text from the attached returned message.");
        }
        Audience::Postmaster => {
            line("A message with the null sender (a bounce) could not be");
            line("delivered, and cannot be returned. Its report is below.");
        }
        Audience::Success => {
            line("Your message was successfully delivered to the destination(s)");
            line("listed below. If the message was delivered to mailbox you will");
            line("receive no further notifications. Otherwise you may still receive");
            line("notifications of mail delivery errors from other systems.");
        }
    }
    line("");
    line("                   The mail system");
    for f in failures {
        line("");
        line(&format!(
            "<{}>: {}",
            f.recipient.address,
            one_line(&f.diagnostic)
        ));
    }
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Delivery report");
    line("Content-Type: message/delivery-status");
    line("");
    // RFC 3464 §2.2: the per-message fields; the sender's ENVID first
    // (§2.2.1), decoded text as RFC 3461 §6.3 asks.
    if let Some(envid) = &original.envelope.envid {
        line(&format!("Original-Envelope-Id: {}", one_line(envid)));
    }
    line(&format!("Reporting-MTA: dns; {hostname}"));
    line(&format!("X-Postern-Queue-ID: {}", original.id));
    line(&format!(
        "X-Postern-Sender: rfc822; {}",
        original.envelope.sender
    ));
    line(&format!(
        "Arrival-Date: {}",
        date::rfc5322(original.envelope.arrival)
    ));
    // RFC 3464 §2.3: one block per recipient, each after a blank line.
    for f in failures {
        line("");
        line(&format!("Final-Recipient: rfc822; {}", f.recipient.address));
        // RFC 3461 §6.3: the ORCPT as the sender gave it, else the
        // address as given in RCPT TO.
        match &f.recipient.orcpt {
            Some(orcpt) => line(&format!(
                "Original-Recipient: {}",
                one_line(&orcpt.to_string())
            )),
            None => line(&format!(
                "Original-Recipient: rfc822; {}",
                f.recipient.original
            )),
        }
        line(&format!("Action: {}", f.action));
        line(&format!("Status: {}", f.status));
        line(&format!(
            "Diagnostic-Code: X-Postern; {}",
            one_line(&f.diagnostic)
        ));
    }
    line("");
    line(&format!("--{boundary}"));
    // RFC 3461 §4.3: the whole message only when asked for.
    let full = original.envelope.ret == Some(Ret::Full);
    let what = if audience == Audience::Success {
        "Delivered"
    } else {
        "Undelivered"
    };
    if full {
        line(&format!("Content-Description: {what} Message"));
        line("Content-Type: message/rfc822");
    } else {
        line(&format!("Content-Description: {what} Message Headers"));
        line("Content-Type: text/rfc822-headers");
    }
    line("Content-Transfer-Encoding: 8bit");
    line("");
    let mut bytes = m.into_bytes();
    if full {
        bytes.extend_from_slice(&crlf(&original.content));
    } else {
        bytes.extend_from_slice(&crlf(headers(&original.content)));
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

/// The header section of `content`: up to, not including, the first empty
/// line (or all of it when it has no body).
fn headers(content: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < content.len() {
        let end = content[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |i| start + i + 1);
        let line = &content[start..end];
        if line == b"\r\n" || line == b"\n" {
            return &content[..start];
        }
        start = end;
    }
    content
}

/// `bytes` with every line ending in CRLF, the last one included.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let text = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Agent text may span lines; a report field is one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::Address;

    use super::*;
    use crate::testing::envelope;

    #[test]
    fn header_section_only() {
        assert_eq!(
            headers(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(headers(b"A: 1\n\nbody"), b"A: 1\n");
        assert_eq!(headers(b"A: 1\r\n"), b"A: 1\r\n");
        assert_eq!(crlf(b"A: 1\nB: 2"), b"A: 1\r\nB: 2\r\n");
    }

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
        };
        let mut rcpt = message.envelope.recipients[0].clone();
        rcpt.original = Address::parse("Bob@Example.NET").unwrap();
        let status = RecipientStatus::Bounced {
            dsn: EnhancedCode::new(5, 1, 1),
            detail: "unknown user: \"bob\"\r\nsecond line".to_owned(),
        };
        let failures = [Failure::of(&rcpt, &status).unwrap()];
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
        }
    }

    fn notice(message: &QueuedMessage, audience: Audience, status: &RecipientStatus) -> String {
        let rcpt = &message.envelope.recipients[0];
        let entry = match audience {
            Audience::Success => Failure::success(rcpt, status),
            _ => Failure::of(rcpt, status),
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
}
