//! Cleanup on submission (Postfix's cleanup with
//! `local_header_rewrite_clients`): a message submitted by an
//! authenticated or local client gets the `Message-Id:` and `Date:`
//! headers RFC 5322 §3.6 requires when it came without them. Mail relayed
//! from other servers is left as it came, as Postfix leaves it.

use std::time::SystemTime;

use postern_mail::QueueId;
use postern_mail::date::{Civil, rfc5322};

/// The headers `content` lacks among `Message-Id:` and `Date:`, as lines
/// ready to insert (CRLF included), empty when it has both. The
/// Message-Id is Postfix's `<YYYYMMDDhhmmss.QUEUEID@myhostname>`, unique
/// because the queue id is.
pub(crate) fn missing_headers(
    content: &[u8],
    hostname: &str,
    id: &QueueId,
    now: SystemTime,
) -> String {
    let (mut message_id, mut date) = (false, false);
    for name in header_names(content) {
        message_id |= name.eq_ignore_ascii_case(b"message-id");
        date |= name.eq_ignore_ascii_case(b"date");
    }
    let mut out = String::new();
    if !message_id {
        let c = Civil::from_time(now);
        out.push_str(&format!(
            "Message-Id: <{}{:02}{:02}{:02}{:02}{:02}.{id}@{hostname}>\r\n",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ));
    }
    if !date {
        out.push_str(&format!("Date: {}\r\n", rfc5322(now)));
    }
    out
}

/// The field names of the header section of `content` (RFC 5322 §2.2):
/// lines up to the first empty one, continuation lines skipped; stops at
/// the first line that is not a header field at all.
fn header_names(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    content
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with(b" ") && !l.starts_with(b"\t"))
        .map_while(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let name = &l[..colon];
            // RFC 5322 §3.6.8: printable ASCII but colon, no space.
            let is_name = !name.is_empty() && name.iter().all(|b| (0x21..0x7f).contains(b));
            is_name.then_some(name)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn missing(content: &[u8]) -> String {
        let id = QueueId::parse("3F2A1B9C").unwrap();
        missing_headers(
            content,
            "mx.example.org",
            &id,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn adds_both_when_missing() {
        assert_eq!(
            missing(b"Subject: hi\r\n\r\nbody\r\n"),
            "Message-Id: <20231114221320.3F2A1B9C@mx.example.org>\r\n\
             Date: Tue, 14 Nov 2023 22:13:20 +0000 (UTC)\r\n"
        );
        assert_eq!(missing(b"").len(), 99);
    }

    #[test]
    fn keeps_what_is_there() {
        assert_eq!(
            missing(b"message-ID: <a@b>\r\nDATE: today\r\n\r\nbody\r\n"),
            ""
        );
        assert!(missing(b"Date: x\r\n\r\n").starts_with("Message-Id: "));
        assert!(missing(b"Message-Id:\r\n <a@b>\r\n\r\n").starts_with("Date: "));
    }

    #[test]
    fn only_the_header_section_counts() {
        // In the body, or after a line that is no header, it is text.
        assert_eq!(
            missing(b"Subject: x\r\n\r\nDate: x\r\nMessage-Id: y\r\n").len(),
            99
        );
        assert_eq!(missing(b"hello\r\nDate: x\r\nMessage-Id: y\r\n").len(), 99);
        assert_eq!(missing(b"X: folded\r\n Date: no\r\n\r\n").len(), 99);
    }
}
