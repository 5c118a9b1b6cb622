//! What `postern queue list` and `postern queue show ID` print: Postfix's
//! mailq (`postqueue -p`) and `postcat -q` formats, so that scripts that
//! read those read these.

use postern_mail::ReversePath;

use crate::date;
use crate::format::QueuedMessage;
use crate::inspect::QueueEntry;
use crate::spool::QueueName;

/// The sender column of a bounce.
const NULL_SENDER: &str = "MAILER-DAEMON";

/// The listing, as mailq prints it: per message `ID[*!] size date sender`
/// (`*` active, `!` on hold), the recipients still to deliver below the
/// sender, each after its deferral reason in parentheses, a blank line;
/// then `-- N Kbytes in M Requests.`, or `Mail queue is empty`.
pub fn render_list(entries: &[QueueEntry]) -> String {
    if entries.is_empty() {
        return "Mail queue is empty\n".to_owned();
    }
    let width = entries
        .iter()
        .map(|e| e.id.as_str().len())
        .max()
        .unwrap_or(10)
        .max(10);
    // ID and its mark, 8 of size, space, 19 of date, two spaces: the
    // sender column, 41 with Postfix's 10-character ids.
    let indent = " ".repeat(width + 1 + 8 + 1 + 19 + 2);
    let mut out = format!(
        "{:<w$} --Size-- ----Arrival Time---- -Sender/Recipient-------\n",
        "-Queue ID-",
        w = width + 1
    );
    let mut total: u64 = 0;
    for e in entries {
        total = total.saturating_add(e.size);
        let mark = match e.queue {
            QueueName::Active => '*',
            QueueName::Hold => '!',
            _ => ' ',
        };
        let sender = match &e.sender {
            ReversePath::Null => NULL_SENDER.to_owned(),
            ReversePath::Address(a) => a.to_string(),
        };
        out.push_str(&format!(
            "{:<width$}{mark}{:>8} {}  {sender}\n",
            e.id.as_str(),
            e.size,
            date::mailq(e.arrival),
        ));
        for (recipient, status) in &e.recipients {
            if status.is_final() {
                continue;
            }
            if let Some((_, reason)) = status.dsn_detail() {
                out.push_str(&format!("({})\n", one_line(reason)));
            }
            out.push_str(&format!("{indent}{}\n", recipient.address));
        }
        out.push('\n');
    }
    let n = entries.len();
    out.push_str(&format!(
        "-- {} Kbytes in {n} Request{}.\n",
        total.div_ceil(1024),
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// One message as `postcat -q` shows it: the envelope records, every
/// recipient with its state, then the content byte for byte.
pub fn render_message(queue: QueueName, message: &QueuedMessage) -> Vec<u8> {
    let env = &message.envelope;
    let mut out = format!("*** ENVELOPE RECORDS {queue}/{} ***\n", message.id);
    out.push_str(&format!("message_size: {}\n", message.content.len()));
    out.push_str(&format!(
        "message_arrival_time: {}\n",
        date::rfc5322(env.arrival)
    ));
    out.push_str(&format!("sender: {}\n", env.sender));
    if let Some(client) = env.client {
        out.push_str(&format!("client_address: {client}\n"));
    }
    out.push_str(&format!("client_name: {}\n", env.client_name));
    if let Some(helo) = &env.helo {
        out.push_str(&format!("helo_name: {}\n", one_line(helo)));
    }
    out.push_str(&format!("protocol_name: {}\n", env.protocol));
    if let Some(filter) = &env.content_filter {
        // postcat's name for the FILTER record.
        out.push_str(&format!("content_filter: {}\n", one_line(filter)));
    }
    for (i, r) in env.recipients.iter().enumerate() {
        let status = message
            .statuses
            .get(i)
            .map(ToString::to_string)
            .unwrap_or_default();
        out.push_str(&format!(
            "recipient: {} (original {}) {}\n",
            r.address,
            r.original,
            one_line(&status)
        ));
    }
    out.push_str("*** MESSAGE CONTENTS ***\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&message.content);
    if !message.content.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"*** END OF MESSAGE ***\n");
    bytes
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use postern_mail::{Address, EnhancedCode, QueueId, Recipient};

    use super::*;
    use crate::status::RecipientStatus;

    #[test]
    fn mailq_shape() {
        assert_eq!(render_list(&[]), "Mail queue is empty\n");
        let rcpt = |a: &str| Recipient::new(Address::parse(a).unwrap());
        let deferred = RecipientStatus::Deferred {
            dsn: EnhancedCode::new(4, 4, 0),
            detail: "no route".to_owned(),
        };
        let entries = [
            QueueEntry {
                id: QueueId::parse("ABCDEF1234").unwrap(),
                queue: QueueName::Deferred,
                sender: ReversePath::Address(Address::parse("a@x.org").unwrap()),
                recipients: vec![
                    (rcpt("b@y.org"), deferred),
                    (rcpt("c@y.org"), RecipientStatus::Pending),
                ],
                size: 1500,
                arrival: UNIX_EPOCH + Duration::from_secs(1_795_443_816),
                next_attempt: None,
            },
            QueueEntry {
                id: QueueId::parse("ABCDEF1235").unwrap(),
                queue: QueueName::Hold,
                sender: ReversePath::Null,
                recipients: vec![(rcpt("d@y.org"), RecipientStatus::Pending)],
                size: 100,
                arrival: UNIX_EPOCH,
                next_attempt: None,
            },
        ];
        let pad = " ".repeat(41);
        assert_eq!(
            render_list(&entries),
            format!(
                "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n\
                 ABCDEF1234     1500 Mon Nov 23 14:23:36  a@x.org\n\
                 (no route)\n\
                 {pad}b@y.org\n\
                 {pad}c@y.org\n\
                 \n\
                 ABCDEF1235!     100 Thu Jan  1 00:00:00  MAILER-DAEMON\n\
                 {pad}d@y.org\n\
                 \n\
                 -- 2 Kbytes in 2 Requests.\n"
            )
        );
    }
}
