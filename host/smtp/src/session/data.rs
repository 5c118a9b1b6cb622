//! DATA (RFC 5321 §4.1.1.4): the `data` list, `354`, the content through
//! the codec's decoder, the `end_of_data` list, the Received header (and
//! for submissions the missing Message-Id and Date, `cleanup.rs`), and
//! the hand-over to the queue. BDAT (`bdat.rs`) shares all but the `354`
//! and the decoder. `250 ... queued as ID` is sent only after the
//! queue said the message is on disk (DESIGN §8: no mail lost).

use std::time::SystemTime;

use postern_mail::{EnhancedCode, MessageContent, Reply, Stage};

use super::io::Stop;
use super::log::TARGET;
use super::received::Trace;
use super::{Session, Transport};
use crate::codec::DataDecoder;

impl<S: Transport> Session<S> {
    /// Answers DATA, reads the content and answers the final dot. Only a
    /// socket failure or timeout is an `Err`; the transaction ends either
    /// way once content was read.
    pub(super) async fn data(&mut self) -> Result<Reply, Stop> {
        if self.txn.as_ref().is_some_and(|t| t.chunks.is_some()) {
            // RFC 3030 §3: DATA and BDAT do not mix in one transaction.
            return Ok(Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: DATA after BDAT",
            ));
        }
        if let Some(reply) = self.data_refusal("DATA").await {
            return Ok(reply);
        }
        self.io
            .reply(&Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
        // Never read content before the 354 is out (RFC 2920 §3.1).
        self.io.flush(self.settings.command_timeout).await?;
        let mut decoder =
            DataDecoder::new(self.settings.message_size_limit, self.settings.bare_newline);
        self.io
            .read_data(&mut decoder, self.settings.data_timeout)
            .await?;
        self.last = "END-OF-MESSAGE";
        let reply = self
            .end_of_data(decoder.finish().map_err(|e| e.reply()))
            .await;
        self.end_transaction();
        Ok(reply)
    }

    /// What DATA and the first BDAT share: a transaction with recipients,
    /// and the `data` restriction list. `None` when the message may come.
    pub(super) async fn data_refusal(&mut self, command: &str) -> Option<Reply> {
        let Some(txn) = &self.txn else {
            return Some(Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: need RCPT command",
            ));
        };
        if txn.recipients.is_empty() {
            return Some(Reply::new(
                554,
                EnhancedCode::new(5, 5, 1),
                "Error: no valid recipients",
            ));
        }
        let size = txn.size.unwrap_or(0);
        match self.restrict(&[Stage::Data], None, size).await {
            Ok(actions) => {
                self.apply_actions(command, &actions, None);
                None
            }
            Err(refusal) => {
                self.log_refusal(command, &refusal, None);
                Some(refusal.reply)
            }
        }
    }

    /// After the final dot or the last chunk: the content (or why it is
    /// refused), the `end_of_data` list, then the queue.
    pub(super) async fn end_of_data(&mut self, body: Result<Vec<u8>, Reply>) -> Reply {
        let body = match body {
            Ok(body) => body,
            Err(reply) => {
                self.log_reject("END-OF-MESSAGE", &reply, None, None);
                return reply;
            }
        };
        let content = MessageContent::new(self.header_limit(body));
        let size = content.bytes().len() as u64;
        let verdict = self
            .restrict_message(&[Stage::EndOfData], None, size, Some(&content))
            .await;
        // The last list of the transaction: what the policy kept for it
        // goes now, and with it every reference to the content.
        self.policy_session.release();
        let mut body = content.into_inner();
        match verdict {
            Ok(actions) => self.apply_actions("END-OF-MESSAGE", &actions, None),
            Err(refusal) => {
                self.log_refusal("END-OF-MESSAGE", &refusal, None);
                return refusal.reply;
            }
        }
        let Some(txn) = self.txn.take() else {
            // Unreachable: DATA only gets here with a transaction, and
            // nothing in between ends it.
            return queue_error();
        };
        let Some(id) = txn.id.clone() else {
            // Unreachable: a transaction with recipients has an id (the
            // first accepted RCPT took one).
            return queue_error();
        };
        let queued = Reply::new(
            250,
            EnhancedCode::new(2, 0, 0),
            format!("Ok: queued as {id}"),
        );
        if txn.discard {
            // Postfix DISCARD: claim delivery, keep nothing (logged as
            // `discard:` when the action was met).
            metrics::counter!("postern_smtpd_messages_total", "result" => "discarded").increment(1);
            self.delivered();
            return queued;
        }
        // RFC 6531 §3.7.3: UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA for
        // a transaction that said SMTPUTF8.
        let mut protocol = self.received_protocol();
        if txn.smtputf8
            && let Some(rest) = protocol.strip_prefix("ESMTP")
        {
            protocol = format!("UTF8SMTP{rest}");
        }
        let trace = Trace {
            helo: self.helo.as_deref(),
            client_name: &self.conn.client_name,
            client_ip: self.conn.client_ip(),
            hostname: &self.settings.hostname,
            protocol: &protocol,
            id: &id,
            recipient: txn.single_recipient(),
            now: SystemTime::now(),
            tls: self.tls.as_ref().map(super::TlsInfo::describe),
            sasl_username: self
                .login
                .as_ref()
                .filter(|_| self.settings.sasl_authenticated_header)
                .map(|l| l.username.as_str()),
        }
        .header();
        // Cleanup for submissions: an authenticated or local client's
        // message gets the Message-Id and Date it lacks, right below our
        // Received header (where the client's own headers begin).
        let submitted = self.login.is_some() || self.conn.client_ip().is_loopback();
        let added = if submitted {
            super::cleanup::missing_headers(&body, &self.settings.hostname, &id, SystemTime::now())
        } else {
            String::new()
        };
        // PREPEND headers go above our own Received header, as in Postfix.
        let prepended: usize = txn.prepend.iter().map(|h| h.len() + 2).sum();
        let head_len = prepended + trace.len() + added.len();
        let mut head = Vec::with_capacity(head_len);
        for header in &txn.prepend {
            head.extend_from_slice(header.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(trace.as_bytes());
        head.extend_from_slice(added.as_bytes());
        // In place, so that a message near the size limit is not held
        // twice in memory.
        body.splice(0..0, head);
        let content = body;
        let envelope = txn.envelope(
            self.conn.peer,
            &self.conn.client_name,
            self.helo.as_deref(),
            self.protocol(),
        );
        match self.queue.enqueue(id.clone(), envelope, content).await {
            Ok(()) => {
                metrics::counter!("postern_smtpd_messages_total", "result" => "queued")
                    .increment(1);
                self.delivered();
                queued
            }
            Err(e) => {
                metrics::counter!("postern_smtpd_messages_total", "result" => "queue_error")
                    .increment(1);
                tracing::warn!(target: TARGET, "{id}: queue file write error: {e}");
                if no_space(&e) {
                    insufficient_storage()
                } else {
                    queue_error()
                }
            }
        }
    }
}

/// Whether the queue failed for want of space (ENOSPC, EDQUOT).
fn no_space(e: &postern_mail::EnqueueError) -> bool {
    matches!(e, postern_mail::EnqueueError::Io(io) if matches!(io.raw_os_error(), Some(28 | 122)))
}

/// The queue's file system is full: Postfix's answer when it knows so.
pub(super) fn insufficient_storage() -> Reply {
    Reply::new(
        452,
        EnhancedCode::new(4, 3, 1),
        "Insufficient system storage",
    )
}

fn queue_error() -> Reply {
    Reply::new(
        451,
        EnhancedCode::new(4, 3, 0),
        "Error: queue file write error",
    )
}
