//! Writing the notice: its headers, the three MIME parts and the
//! returned message, as bytes with CRLF line ends. Apart from the report
//! entries ([`Failure`]) because it is all wording and layout: what each
//! audience is told, and the RFC 3464 fields in their order.

use std::time::{Duration, SystemTime};

use postern_mail::{Domain, QueueId, Ret};

use super::{Audience, Failure};
use crate::date;
use crate::format::QueuedMessage;

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
mod tests {
    use super::*;

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
}
