//! The notice itself: an RFC 3464 delivery status notification,
//! `multipart/report; report-type=delivery-status` (RFC 6522), with the
//! three parts Postfix's bounce(8) writes: a human-readable explanation,
//! the `message/delivery-status` report, and the returned message: its
//! headers (`text/rfc822-headers`), or all of it (`message/rfc822`) when
//! the sender asked `RET=FULL` (RFC 3461 §4.3). The sender's `ENVID` comes
//! back as `Original-Envelope-Id` and each `ORCPT` as
//! `Original-Recipient` (RFC 3461 §6.3). A failure notice (a bounce) and a
//! success notice (`NOTIFY=SUCCESS`, RFC 3461 §5.2.2) and a delay
//! warning (`delay_warning_time`, `NOTIFY=DELAY`; Postfix's "Delayed Mail
//! (still being retried)") differ in wording and in each recipient's
//! `Action`; a warning returns only the headers, whatever `RET` says, as
//! Postfix's does. When a remote server answered, the report names it
//! (`Remote-MTA: dns; mx.example.net`) and quotes its reply
//! (`Diagnostic-Code: smtp; 550 5.1.1 ...`), as Postfix's smtp agent
//! reports; other failures are `Diagnostic-Code: X-Postern; ...`.

use std::time::SystemTime;

use std::time::Duration;

use postern_mail::{Domain, EnhancedCode, QueueId, Recipient, RemoteReply, Ret};

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
    /// The original sender, about recipients still deferred after
    /// `delay_warning_time`.
    Delay,
}

/// One recipient as the report lists it.
#[derive(Debug, Clone)]
pub(crate) struct Failure<'a> {
    pub recipient: &'a Recipient,
    /// RFC 3464 §2.3.3: `failed`, `delayed`, `delivered` or `relayed`.
    pub action: &'static str,
    /// `5.x.x` with `failed` (RFC 3464 §2.3.4), `4.x.x` with `delayed`,
    /// `2.x.x` otherwise.
    pub status: EnhancedCode,
    pub diagnostic: String,
    /// The server that answered and its reply, when one did.
    pub remote: Option<&'a RemoteReply>,
    /// RFC 3464 §2.3.9 `Will-Retry-Until`, for a delayed recipient.
    pub retry_until: Option<SystemTime>,
}

impl<'a> Failure<'a> {
    /// The report line of a bounced or expired recipient; `None` for any
    /// other state.
    pub fn of(
        recipient: &'a Recipient,
        status: &RecipientStatus,
        remote: Option<&'a RemoteReply>,
    ) -> Option<Failure<'a>> {
        match status {
            RecipientStatus::Bounced { dsn, detail } => Some(Failure {
                recipient,
                action: "failed",
                status: *dsn,
                diagnostic: detail.clone(),
                remote,
                retry_until: None,
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
                remote,
                retry_until: None,
            }),
            _ => None,
        }
    }

    /// The report line of a recipient still deferred, to be retried until
    /// `until`; `None` for any other state.
    pub fn delayed(
        recipient: &'a Recipient,
        status: &RecipientStatus,
        remote: Option<&'a RemoteReply>,
        until: SystemTime,
    ) -> Option<Failure<'a>> {
        let RecipientStatus::Deferred { dsn, detail } = status else {
            return None;
        };
        Some(Failure {
            recipient,
            action: "delayed",
            // RFC 3464 §2.3.4: a delayed recipient's status is 4.x.x.
            status: if dsn.class == 4 {
                *dsn
            } else {
                EnhancedCode::new(4, 0, 0)
            },
            diagnostic: detail.clone(),
            remote,
            retry_until: Some(until),
        })
    }

    /// The report line of a delivered recipient; `None` for any other
    /// state. RFC 3461 §6.2: `delivered` into a mailbox here, `relayed`
    /// when handed to another MTA (which is all we know of a remote
    /// delivery). A local agent's text says `delivered ...`.
    pub fn success(
        recipient: &'a Recipient,
        status: &RecipientStatus,
        remote: Option<&'a RemoteReply>,
    ) -> Option<Failure<'a>> {
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
            remote,
            retry_until: None,
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
        Audience::Delay => "Delayed Mail (still being retried)",
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
        Audience::Delay => {
            line("####################################################################");
            line("# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #");
            line("####################################################################");
            line("");
            let waited = now
                .duration_since(original.envelope.arrival)
                .unwrap_or_default();
            line(&format!(
                "Your message could not be delivered for {}.",
                span(waited)
            ));
            if let Some(until) = failures.iter().find_map(|f| f.retry_until) {
                let lifetime = until
                    .duration_since(original.envelope.arrival)
                    .unwrap_or_default();
                line(&format!(
                    "It will be retried until it is {} old.",
                    span(lifetime)
                ));
            }
            line("");
            line("For further assistance, please send mail to postmaster.");
            line("");
            line("If you do so, please include this problem report. You can");
            line("delete your own text from the attached returned message.");
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
        // RFC 3464 §2.3.5, §2.3.6: the server's name and its own words
        // when one answered, as Postfix reports them; else ours.
        match f.remote {
            Some(remote) => {
                line(&format!("Remote-MTA: dns; {}", one_line(&remote.mta)));
                line(&format!(
                    "Diagnostic-Code: smtp; {}",
                    one_line(&remote.reply)
                ));
            }
            None => line(&format!(
                "Diagnostic-Code: X-Postern; {}",
                one_line(&f.diagnostic)
            )),
        }
        if let Some(until) = f.retry_until {
            line(&format!("Will-Retry-Until: {}", date::rfc5322(until)));
        }
    }
    line("");
    line(&format!("--{boundary}"));
    // RFC 3461 §4.3: the whole message only when asked for; a warning
    // carries the headers only (the message is still on its way).
    let full = original.envelope.ret == Some(Ret::Full) && audience != Audience::Delay;
    let what = match audience {
        Audience::Success => "Delivered",
        Audience::Delay => "Delayed",
        _ => "Undelivered",
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

/// A duration as the warning's text gives it: `2 hour(s)`, `5 day(s)`,
/// or seconds or minutes when shorter (test settings).
fn span(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s >= 3600 => format!("{} hour(s)", s / 3600),
        s if s >= 60 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
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
}
