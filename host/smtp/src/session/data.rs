//! DATA (RFC 5321 §4.1.1.4): the `data` list, `354`, the content through
//! the codec's decoder, the `end_of_data` list, the Received header, and
//! the hand-over to the queue. `250 ... queued as ID` is sent only after the
//! queue said the message is on disk (DESIGN §8: no mail lost).

use std::time::SystemTime;

use postern_mail::{EnhancedCode, Reply, Stage};

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
        let Some(txn) = &self.txn else {
            return Ok(Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: need RCPT command",
            ));
        };
        if txn.recipients.is_empty() {
            return Ok(Reply::new(
                554,
                EnhancedCode::new(5, 5, 1),
                "Error: no valid recipients",
            ));
        }
        let size = txn.size.unwrap_or(0);
        match self.restrict(&[Stage::Data], None, size).await {
            Ok(actions) => self.apply_actions("DATA", &actions, None),
            Err(refusal) => {
                self.log_reject("DATA", &refusal.reply, None, refusal.decided_by.as_deref());
                return Ok(refusal.reply);
            }
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
        let reply = self.end_of_data(decoder).await;
        self.txn = None;
        Ok(reply)
    }

    /// After the final dot: the decoder's verdict, the `end_of_data` list,
    /// then the queue.
    async fn end_of_data(&mut self, decoder: DataDecoder) -> Reply {
        let body = match decoder.finish() {
            Ok(body) => body,
            Err(e) => {
                let reply = e.reply();
                self.log_reject("END-OF-MESSAGE", &reply, None, None);
                return reply;
            }
        };
        let size = body.len() as u64;
        match self.restrict(&[Stage::EndOfData], None, size).await {
            Ok(actions) => self.apply_actions("END-OF-MESSAGE", &actions, None),
            Err(refusal) => {
                self.log_reject(
                    "END-OF-MESSAGE",
                    &refusal.reply,
                    None,
                    refusal.decided_by.as_deref(),
                );
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
            return queued;
        }
        let trace = Trace {
            helo: self.helo.as_deref(),
            client_name: &self.conn.client_name,
            client_ip: self.conn.client_ip(),
            hostname: &self.settings.hostname,
            protocol: &self.received_protocol(),
            id: &id,
            recipient: txn.single_recipient(),
            now: SystemTime::now(),
            tls: self.tls.as_ref().map(super::TlsInfo::describe),
        }
        .header();
        // PREPEND headers go above our own Received header, as in Postfix.
        let prepended: usize = txn.prepend.iter().map(|h| h.len() + 2).sum();
        let mut content = Vec::with_capacity(prepended + trace.len() + body.len());
        for header in &txn.prepend {
            content.extend_from_slice(header.as_bytes());
            content.extend_from_slice(b"\r\n");
        }
        content.extend_from_slice(trace.as_bytes());
        content.extend_from_slice(&body);
        drop(body);
        let envelope = txn.envelope(
            self.conn.peer,
            &self.conn.client_name,
            self.helo.as_deref(),
            self.protocol(),
        );
        match self.queue.enqueue(id.clone(), envelope, content).await {
            Ok(()) => {
                self.junk = 0;
                queued
            }
            Err(e) => {
                tracing::warn!(target: TARGET, "{id}: queue file write error: {e}");
                queue_error()
            }
        }
    }
}

fn queue_error() -> Reply {
    Reply::new(
        451,
        EnhancedCode::new(4, 3, 0),
        "Error: queue file write error",
    )
}
