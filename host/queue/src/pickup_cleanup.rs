//! Cleanup's work on a local submission, before it is queued: the
//! envelope, and the headers Postfix's cleanup adds for `sendmail` mail
//! (`Received: by HOST (Postern, from userid N)`, `Date:`, `Message-Id:`
//! and `From:` when missing), with `Bcc:` and `Resent-Bcc:` removed.

use std::time::SystemTime;

use postern_mail::date::{Civil, rfc5322};
use postern_mail::{Address, Envelope, QueueId, ReversePath};

use crate::pickup::Submission;

/// The envelope of a local submission.
pub(crate) fn local_envelope(submission: &Submission, arrival: Option<SystemTime>) -> Envelope {
    let mut envelope = Envelope::new(submission.sender.clone());
    let mut seen: Vec<&Address> = Vec::new();
    for r in &submission.recipients {
        if !seen.contains(&&r.address) {
            seen.push(&r.address);
            let mut recipient = r.clone();
            recipient.notify = r.notify.or(submission.notify);
            envelope.recipients.push(recipient);
        }
    }
    envelope.ret = submission.ret;
    envelope.envid = submission.envid.clone();
    envelope.client_name = "localhost".to_owned();
    envelope.protocol = "local".to_owned();
    if let Some((helo, protocol)) = &submission.helo {
        envelope.helo = Some(helo.clone());
        envelope.protocol = protocol.clone();
    }
    envelope.arrival = arrival.unwrap_or_else(SystemTime::now);
    envelope.eight_bit_mime = submission.content.iter().any(|b| *b >= 0x80);
    envelope
}

/// The message as queued: our Received line and the headers cleanup adds
/// for local submissions, then the submitted header without `Bcc:`, then
/// the body.
pub(crate) fn local_headers(submission: &Submission, hostname: &str, id: &QueueId) -> Vec<u8> {
    let now = SystemTime::now();
    let content = &submission.content;
    let (header, body) = split_header(content);
    let mut kept: Vec<&[u8]> = Vec::new();
    let (mut date, mut message_id, mut from, mut dropping) = (false, false, false, false);
    for line in header {
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if !dropping {
                kept.push(line);
            }
            continue;
        }
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map_or(&line[..0], |c| &line[..c]);
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        date |= is("date");
        message_id |= is("message-id");
        from |= is("from");
        dropping = is("bcc") || is("resent-bcc");
        if !dropping {
            kept.push(line);
        }
    }
    // Postfix's shape for `sendmail -bs` too: the one Received line names
    // the HELO the local user gave, and the uid the kernel gave.
    let mut out = match &submission.helo {
        Some((helo, protocol)) => format!(
            "Received: from {helo} (localhost)\r\n\tby {hostname} (Postern, from userid {})\r\n\twith {protocol} id {id}; {}\r\n",
            submission.uid,
            rfc5322(now)
        ),
        None => format!(
            "Received: by {hostname} (Postern, from userid {})\r\n\tid {id}; {}\r\n",
            submission.uid,
            rfc5322(now)
        ),
    };
    if !date {
        out.push_str(&format!("Date: {}\r\n", rfc5322(now)));
    }
    if !message_id {
        let c = Civil::from_time(now);
        out.push_str(&format!(
            "Message-Id: <{}{:02}{:02}{:02}{:02}{:02}.{id}@{hostname}>\r\n",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ));
    }
    if !from {
        let sender = match &submission.sender {
            ReversePath::Address(a) => a.to_string(),
            _ => format!("MAILER-DAEMON@{hostname}"),
        };
        match &submission.full_name {
            Some(name) if !name.is_empty() => {
                out.push_str(&format!("From: {} <{sender}>\r\n", quote_phrase(name)));
            }
            _ => out.push_str(&format!("From: {sender}\r\n")),
        }
    }
    let mut bytes = out.into_bytes();
    for line in kept {
        bytes.extend_from_slice(line);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// A display name as an RFC 5322 §3.2.5 phrase: quoted when it holds
/// specials.
fn quote_phrase(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c));
    if plain {
        name.to_owned()
    } else {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

/// The header lines (without line ends) and the body. The header ends at
/// the first empty line, or before the first line that is not a header
/// field (then the body starts there: a message typed without headers).
fn split_header(content: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < content.len() {
        let end = content[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |p| at + p + 1);
        let raw = &content[at..end];
        let line = raw
            .strip_suffix(b"\r\n")
            .or_else(|| raw.strip_suffix(b"\n"))
            .unwrap_or(raw);
        if line.is_empty() {
            return (lines, &content[end..]);
        }
        let continuation = (line.starts_with(b" ") || line.starts_with(b"\t")) && !lines.is_empty();
        if !continuation && !is_field(line) {
            return (lines, &content[at..]);
        }
        lines.push(line);
        at = end;
    }
    (lines, &content[content.len()..])
}

/// RFC 5322 §2.2: a field name of printable ASCII but colon, then a colon.
fn is_field(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(c) if c > 0 => line[..c].iter().all(|b| (0x21..0x7f).contains(b)),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pickup_file::submission;

    #[test]
    fn cleanup_adds_headers_and_drops_bcc() {
        let id = QueueId::parse("ABCDEF123456").unwrap();
        let s = submission(b"To: bob@example.org\r\nBcc: carol@example.org,\r\n dave@example.org\r\nSubject: hi\r\n\r\nbody\r\n");
        let out = String::from_utf8(local_headers(&s, "mx.example.org", &id)).unwrap();
        assert!(
            out.starts_with(
                "Received: by mx.example.org (Postern, from userid 1000)\r\n\tid ABCDEF123456; "
            ),
            "{out}"
        );
        assert!(out.contains("\r\nDate: "), "{out}");
        assert!(out.contains(".ABCDEF123456@mx.example.org>\r\n"), "{out}");
        assert!(
            out.contains("From: \"Alice \\\"A\\\" Example\" <alice@mx.example.org>\r\n"),
            "{out}"
        );
        assert!(!out.contains("carol") && !out.contains("dave"), "{out}");
        assert!(out.ends_with("To: bob@example.org\r\nSubject: hi\r\n\r\nbody\r\n"));
        let bs = Submission {
            helo: Some(("client.example".to_owned(), "ESMTP".to_owned())),
            ..s
        };
        let out = String::from_utf8(local_headers(&bs, "mx.example.org", &id)).unwrap();
        assert!(
            out.starts_with("Received: from client.example (localhost)\r\n\tby mx.example.org (Postern, from userid 1000)\r\n\twith ESMTP id ABCDEF123456; "),
            "{out}"
        );
    }

    #[test]
    fn a_message_without_headers_gets_a_separator() {
        let id = QueueId::parse("ABCDEF123456").unwrap();
        let mut s = submission(b"just a line\r\nFrom: not a header here\r\n");
        s.full_name = None;
        let out = String::from_utf8(local_headers(&s, "h", &id)).unwrap();
        assert!(
            out.ends_with(
                "From: alice@mx.example.org\r\n\r\njust a line\r\nFrom: not a header here\r\n"
            ),
            "{out}"
        );
        let (header, body) = split_header(b"Subject: a\r\n");
        assert_eq!((header.len(), body), (1, &b""[..]));
    }
}
