//! One mail transaction on an open session: MAIL, RCPT for every
//! recipient, DATA, with PIPELINING (RFC 2920) when offered, and one final
//! reply per recipient: the RCPT refusal, or the end-of-data reply (one
//! per accepted recipient for LMTP, RFC 2033 §4.2).
//!
//! The MAIL and RCPT command texts are in `commands`; the tests against a
//! scripted server in `tests`.

mod commands;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use postern_mail::{EnhancedCode, Envelope, Recipient, Reply};

use super::ClientError;
use super::session::Session;
use super::stuff::dot_stuff;
use commands::needs_utf8;

impl Session {
    /// Sends `content` from `sender` to `recipients`; answers each
    /// recipient's final reply, in order. `Err` when the connection broke
    /// or timed out before every recipient had an answer: the caller
    /// defers them all (a recipient the server already accepted may then
    /// get a second copy, as with any MTA).
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        recipients: &[Recipient],
        content: &[u8],
    ) -> Result<Vec<Reply>, ClientError> {
        if self.needs_reset {
            self.reset().await?;
        }
        let size = content.len() as u64;
        if let Some(limit) = self.extensions.size.filter(|&l| l > 0 && size > l) {
            // RFC 1870 §6: the server would refuse it; say why here.
            let reply = Reply::new(
                552,
                EnhancedCode::new(5, 3, 4),
                format!(
                    "message size {size} exceeds size limit {limit} of server {}",
                    self.relay
                ),
            );
            return Ok(vec![reply; recipients.len()]);
        }
        let utf8 = envelope.smtputf8 && needs_utf8(envelope, recipients);
        if utf8 && !self.extensions.smtputf8 {
            // RFC 6531 §3.2: a message with UTF-8 addresses cannot be
            // downgraded; it goes back to its sender.
            let reply = Reply::new(
                555,
                EnhancedCode::new(5, 6, 7),
                format!(
                    "SMTPUTF8 is required, but was not offered by host {}",
                    self.relay
                ),
            );
            return Ok(vec![reply; recipients.len()]);
        }
        // Until its end-of-data reply, a transaction leaves the server in
        // a state the next one must RSET first.
        self.needs_reset = true;
        self.transactions = self.transactions.saturating_add(1);
        let mail = self.mail_command(envelope, size, utf8, content);
        let rcpts: Vec<String> = recipients.iter().map(|r| self.rcpt_command(r)).collect();
        let t = self.settings.timeouts;
        let (mail_reply, rcpt_replies, data_reply) = if self.extensions.pipelining {
            // One write for the whole envelope and DATA (RFC 2920 §3.1:
            // DATA ends a command group), then the replies in order.
            let mut batch = format!("{mail}\r\n");
            for r in &rcpts {
                batch.push_str(r);
                batch.push_str("\r\n");
            }
            batch.push_str("DATA\r\n");
            self.write(batch.as_bytes(), t.mail, "MAIL FROM").await?;
            let mail_reply = self.read_reply(t.mail, "MAIL FROM").await?;
            let mut rcpt_replies = Vec::with_capacity(rcpts.len());
            for _ in &rcpts {
                rcpt_replies.push(self.read_reply(t.rcpt, "RCPT TO").await?);
            }
            let data_reply = self.read_reply(t.data_init, "DATA").await?;
            (mail_reply, rcpt_replies, Some(data_reply))
        } else {
            let mail_reply = self.command(&mail, t.mail, "MAIL FROM").await?;
            let mut rcpt_replies = Vec::with_capacity(rcpts.len());
            if mail_reply.code == 250 {
                for r in &rcpts {
                    rcpt_replies.push(self.command(r, t.rcpt, "RCPT TO").await?);
                }
            }
            (mail_reply, rcpt_replies, None)
        };
        if mail_reply.code == 421 {
            // RFC 5321 §3.8: the server is closing the connection (on a
            // reused one: it timed out while idle). An error, so that the
            // caller may try a new connection: nothing was sent yet.
            return Err(self.refused("MAIL FROM", mail_reply));
        }
        if mail_reply.code != 250 {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                self.write(b".\r\n", t.data_done, "end of DATA").await?;
                self.read_reply(t.data_done, "end of DATA").await?;
            }
            let reply = in_reply_to(mail_reply, "MAIL FROM");
            return Ok(vec![reply; recipients.len()]);
        }
        let mut finals: Vec<Option<Reply>> = rcpt_replies
            .into_iter()
            .map(|r| (r.code != 250 && r.code != 251).then(|| in_reply_to(r, "RCPT TO")))
            .collect();
        let accepted = finals.iter().filter(|f| f.is_none()).count();
        let data_reply = match data_reply {
            Some(r) => r,
            None if accepted == 0 => Reply::plain(554, "no valid recipients"),
            None => self.command("DATA", t.data_init, "DATA").await?,
        };
        if data_reply.code == 354 && accepted == 0 {
            // RFC 2920 §3.1: a server that said 354 after refusing every
            // recipient gets an empty message, which it must discard.
            self.write(b".\r\n", t.data_done, "end of DATA").await?;
            self.read_reply(t.data_done, "end of DATA").await?;
            self.needs_reset = false;
        }
        if accepted == 0 {
            return Ok(finals.into_iter().flatten().collect());
        }
        if data_reply.code != 354 {
            let reply = in_reply_to(data_reply, "DATA");
            return Ok(fill(finals, |_| reply.clone()));
        }
        self.write(&dot_stuff(content), t.data_xfer, "end of DATA")
            .await?;
        if self.settings.lmtp {
            for slot in finals.iter_mut().filter(|f| f.is_none()) {
                let reply = self.read_reply(t.data_done, "end of DATA").await?;
                *slot = Some(in_reply_to(reply, "end of DATA"));
            }
            self.needs_reset = false;
            return Ok(finals.into_iter().flatten().collect());
        }
        let reply = in_reply_to(
            self.read_reply(t.data_done, "end of DATA").await?,
            "end of DATA",
        );
        // RFC 5321 §4.1.1.4: the end of data clears the server's buffers,
        // whatever it answered.
        self.needs_reset = false;
        Ok(fill(std::mem::take(&mut finals), |_| reply.clone()))
    }
}

/// Every recipient's reply: the refusals as they are, the others from
/// `accepted`.
fn fill(finals: Vec<Option<Reply>>, accepted: impl Fn(usize) -> Reply) -> Vec<Reply> {
    finals
        .into_iter()
        .enumerate()
        .map(|(i, f)| f.unwrap_or_else(|| accepted(i)))
        .collect()
}

/// A reply with the command it answered, as Postfix logs a refusal:
/// `... (in reply to RCPT TO command)`. A reply without an enhanced code
/// gets the default for its class (RFC 3463 §3.1).
fn in_reply_to(mut reply: Reply, stage: &str) -> Reply {
    if reply.enhanced.is_none() {
        let class = u8::try_from(reply.code / 100).unwrap_or(4);
        reply.enhanced = Some(EnhancedCode::new(if class == 3 { 2 } else { class }, 0, 0));
    }
    if reply.code >= 400 {
        reply.text = format!(
            "{} (in reply to {stage} command)",
            reply.text.replace('\n', " ")
        );
    }
    reply
}
