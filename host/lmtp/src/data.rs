//! DATA (RFC 2033 §4.2): the content through the SMTP server's decoder
//! (dot-unstuffing, `<CRLF>.<CRLF>` as the only end, the size limit), a
//! `Received:` header, then one delivery and one reply per accepted
//! recipient, in RCPT order, each sent as soon as it is known.
//!
//! A `250` means that recipient's mailbox has the message on disk; a
//! failure is that recipient's alone: `451`/`452` when trying again later
//! may help (a Maildir that cannot be written, a full disk), `550`/`554`
//! when it will not (a delivery loop, a user gone since RCPT).

use std::time::SystemTime;

use postern_mail::{Address, DeliveryStatus, EnhancedCode, Recipient, Reply};
use postern_smtp::codec::DataDecoder;
use postern_smtp::session::io::Stop;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Session, TARGET, Transaction, printable};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// `DATA`: says whether the command succeeded (the per-recipient
    /// replies may still be failures).
    pub(crate) async fn data(&mut self) -> Result<bool, Stop> {
        let refused = match &self.transaction {
            None => Some("Error: need MAIL command"),
            // RFC 2033 §4.2: no successful RCPT, DATA fails with 503.
            Some(tx) if tx.recipients.is_empty() => Some("Error: need RCPT command"),
            Some(_) => None,
        };
        let Some(mut tx) = self.transaction.take().filter(|_| refused.is_none()) else {
            let text = refused.unwrap_or("Error: need MAIL command");
            self.io
                .reply(&Reply::new(503, EnhancedCode::new(5, 5, 1), text));
            return Ok(false);
        };
        let timeout = self.settings.timeout;
        self.io
            .reply(&Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
        self.io.flush(timeout).await?;
        let limit = match self.settings.message_size_limit {
            0 => u64::MAX,
            n => n,
        };
        let mut decoder = DataDecoder::new(limit, self.settings.bare_newline);
        self.io.read_data(&mut decoder, timeout).await?;
        let size = decoder.size();
        let content = match decoder.finish() {
            Ok(content) => content,
            Err(e) => {
                let reply = e.reply();
                tracing::info!(target: TARGET, "{}: reject: DATA from {}: {reply}; from=<{}> proto=LMTP helo=<{}>", tx.id, self.conn.client, tx.envelope.sender, self.lhlo.as_deref().unwrap_or_default());
                for recipient in &tx.recipients {
                    self.io.reply(&Reply {
                        text: format!("<{}> {}", recipient.address, reply.text),
                        ..reply.clone()
                    });
                }
                return Ok(true);
            }
        };
        tx.envelope.recipients.clone_from(&tx.recipients);
        let mut message = self.received(&tx).into_bytes();
        message.extend_from_slice(&content);
        drop(content);
        if let Some(id) = message_id(&message) {
            tracing::info!(target: TARGET, "{}: message-id={id}", tx.id);
        }
        tracing::info!(target: TARGET, "{}: from=<{}>, size={size}, nrcpt={} (lmtp)", tx.id, tx.envelope.sender, tx.recipients.len());
        // A recipient given twice gets the message once, and two replies.
        let mut done: Vec<(Address, DeliveryStatus)> = Vec::new();
        for recipient in &tx.recipients {
            let status = match done.iter().find(|(a, _)| *a == recipient.address) {
                Some((_, status)) => status.clone(),
                None => {
                    let status = self
                        .settings
                        .mailboxes
                        .deliver(&tx.id, &tx.envelope, recipient, &message)
                        .await;
                    done.push((recipient.address.clone(), status.clone()));
                    status
                }
            };
            log_status(&tx, recipient, &status);
            self.io.reply(&reply(&tx, recipient, &status));
            // Each reply goes out when known: the client's timer runs
            // per reply, and a slow mailbox delays only its own.
            self.io.flush(timeout).await?;
        }
        Ok(true)
    }

    /// The trace header this server adds, as Dovecot's LMTP does (RFC 5321
    /// §4.4), naming the recipient when there is only one.
    fn received(&self, tx: &Transaction) -> String {
        let helo = self.lhlo.as_deref().unwrap_or("unknown");
        let from = match self.conn.peer {
            Some(peer) => format!("{helo} (unknown [{}])", peer.ip()),
            None => format!("{helo} (local)"),
        };
        let date = postern_mail::date::rfc5322(SystemTime::now());
        let host = &self.settings.myhostname;
        let id = &tx.id;
        match tx.recipients.as_slice() {
            [one] => format!(
                "Received: from {from}\r\n\tby {host} (Postern) with LMTP id {id}\r\n\tfor <{}>; {date}\r\n",
                one.address
            ),
            _ => format!(
                "Received: from {from}\r\n\tby {host} (Postern) with LMTP id {id};\r\n\t{date}\r\n"
            ),
        }
    }
}

/// The reply for one recipient after DATA. The text names the recipient,
/// as RFC 2033 §4.2's examples and Dovecot do; a temporary failure's cause
/// (a path, an errno) stays in the log.
fn reply(tx: &Transaction, recipient: &Recipient, status: &DeliveryStatus) -> Reply {
    let rcpt = &recipient.address;
    match status {
        DeliveryStatus::Sent { .. } => Reply::new(
            250,
            EnhancedCode::new(2, 0, 0),
            format!("<{rcpt}> {} Saved", tx.id),
        ),
        DeliveryStatus::Deferred { dsn, .. } => {
            let dsn = class(*dsn, 4, EnhancedCode::new(4, 3, 0));
            // 452: out of space (RFC 3463 X.2.2 mailbox full, X.3.1 system
            // storage); 451 for every other local error.
            let code = if matches!((dsn.subject, dsn.detail), (2, 2) | (3, 1)) {
                452
            } else {
                451
            };
            Reply::new(
                code,
                dsn,
                format!("<{rcpt}> Temporary failure, see the server log; try again later"),
            )
        }
        DeliveryStatus::Bounced { dsn, detail } => {
            let dsn = class(*dsn, 5, EnhancedCode::new(5, 3, 0));
            // 550: the mailbox (X.1.x address, X.2.x mailbox); 554 for
            // the rest (a loop, a refused destination).
            let code = if matches!(dsn.subject, 1 | 2) {
                550
            } else {
                554
            };
            Reply::new(code, dsn, format!("<{rcpt}> {}", printable(detail)))
        }
        // The status type may grow: a new outcome is a temporary failure
        // until this learns it.
        _ => Reply::new(
            451,
            EnhancedCode::new(4, 3, 0),
            format!("<{rcpt}> Temporary failure"),
        ),
    }
}

/// `dsn` if its class is `want`, else `fallback`: a reply code and its
/// enhanced code never disagree (RFC 3463 §2).
fn class(dsn: EnhancedCode, want: u8, fallback: EnhancedCode) -> EnhancedCode {
    if dsn.class == want { dsn } else { fallback }
}

/// `ID: to=<rcpt>, relay=local, delay=0.01, dsn=2.0.0, status=sent
/// (delivered to maildir)`: local(8)'s shape, which pflogsumm counts.
fn log_status(tx: &Transaction, recipient: &Recipient, status: &DeliveryStatus) {
    let delay = tx.started.elapsed().as_secs_f64();
    tracing::info!(target: TARGET, "{}: to=<{}>, relay=local, delay={delay:.2}, dsn={}, status={} ({})", tx.id, recipient.address, status.dsn(), status.word(), printable(status.detail()));
}

/// The `Message-ID:` of the header of `message`, for the log.
fn message_id(message: &[u8]) -> Option<String> {
    let header_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    let header = String::from_utf8_lossy(&message[..header_end]);
    let mut lines = header.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.eq_ignore_ascii_case("Message-ID") {
            continue;
        }
        let mut value = value.trim().to_owned();
        // A folded value goes on in lines that start with white space.
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push_str(next.trim());
        }
        return Some(printable(&value).chars().take(200).collect());
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_found_and_unfolded() {
        let m = b"Subject: x\r\nMessage-Id:\r\n <a@b>\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(message_id(m).as_deref(), Some("<a@b>"));
        assert_eq!(message_id(b"Subject: x\r\n\r\n"), None);
        assert_eq!(message_id(b""), None);
    }

    #[test]
    fn codes_keep_their_class() {
        let wrong = EnhancedCode::new(2, 0, 0);
        assert_eq!(class(wrong, 4, EnhancedCode::new(4, 3, 0)).class, 4);
        let right = EnhancedCode::new(4, 2, 2);
        assert_eq!(class(right, 4, EnhancedCode::new(4, 3, 0)), right);
    }
}
