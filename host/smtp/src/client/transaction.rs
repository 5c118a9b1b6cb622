//! One mail transaction on an open session: MAIL, RCPT for every
//! recipient, DATA, with PIPELINING (RFC 2920) when offered, and one final
//! reply per recipient: the RCPT refusal, or the end-of-data reply (one
//! per accepted recipient for LMTP, RFC 2033 §4.2).

use postern_mail::{EnhancedCode, Envelope, Recipient, Reply};

use super::ClientError;
use super::session::Session;
use super::stuff::{dot_stuff, is_8bit};
use crate::codec::xtext;

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

impl Session {
    /// MAIL FROM with the parameters the server understands: SIZE (RFC
    /// 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), and the DSN
    /// parameters RET and ENVID passed on (RFC 3461 §5.2).
    fn mail_command(&self, envelope: &Envelope, size: u64, utf8: bool, content: &[u8]) -> String {
        let ext = &self.extensions;
        let mut mail = format!("MAIL FROM:<{}>", envelope.sender);
        if ext.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if ext.eight_bit_mime && (envelope.eight_bit_mime || is_8bit(content)) {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        if ext.dsn {
            if let Some(ret) = envelope.ret {
                mail.push_str(&format!(" RET={}", ret.keyword()));
            }
            if let Some(envid) = &envelope.envid {
                mail.push_str(&format!(" ENVID={}", xtext::encode(envid)));
            }
        }
        mail
    }

    /// RCPT TO, with NOTIFY and ORCPT passed on to a DSN server.
    fn rcpt_command(&self, recipient: &Recipient) -> String {
        let mut rcpt = format!("RCPT TO:<{}>", recipient.address);
        if self.extensions.dsn {
            if let Some(notify) = recipient.notify {
                rcpt.push_str(&format!(" NOTIFY={}", notify.keywords()));
            }
            if let Some(orcpt) = &recipient.orcpt {
                rcpt.push_str(&format!(
                    " ORCPT={};{}",
                    orcpt.addr_type,
                    xtext::encode(&orcpt.address)
                ));
            }
        }
        rcpt
    }
}

/// Whether the envelope holds a non-ASCII address: what SMTPUTF8 is
/// needed for at the next hop.
fn needs_utf8(envelope: &Envelope, recipients: &[Recipient]) -> bool {
    !envelope.sender.to_string().is_ascii()
        || recipients.iter().any(|r| !r.address.to_string().is_ascii())
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use postern_mail::{Address, ReversePath};

    use super::*;
    use crate::client::{ClientSettings, Timeouts, TlsLevel};

    /// A scripted server on loopback: `answer` replies to each command
    /// line (the reply text without CRLF, lines joined by `\r\n`); after
    /// DATA's 354 the message is read to `.` and `after_data` answered.
    /// Returns its address and what it received.
    async fn server(
        greeting: &'static str,
        answer: fn(&str) -> String,
        after_data: &'static str,
    ) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            if !greeting.is_empty() {
                write
                    .write_all(format!("{greeting}\r\n").as_bytes())
                    .await
                    .unwrap();
            }
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(line.clone());
                let reply = if in_data {
                    if line != "." {
                        continue;
                    }
                    in_data = false;
                    after_data.to_owned()
                } else {
                    let reply = answer(&line);
                    in_data = reply.starts_with("354");
                    reply
                };
                if reply.is_empty() {
                    continue;
                }
                let _ = write.write_all(format!("{reply}\r\n").as_bytes()).await;
            }
        });
        (addr, seen)
    }

    fn settings(lmtp: bool) -> ClientSettings {
        let short = Duration::from_secs(2);
        ClientSettings {
            helo_name: "client.test".to_owned(),
            lmtp,
            tls_level: TlsLevel::None,
            tls: None,
            timeouts: Timeouts {
                connect: short,
                helo: short,
                starttls: short,
                mail: short,
                rcpt: short,
                data_init: short,
                data_xfer: short,
                data_done: short,
                rset: short,
                quit: short,
            },
        }
    }

    fn addresses(list: &[&str]) -> Vec<Recipient> {
        list.iter()
            .map(|a| Recipient::new(Address::parse(a).unwrap()))
            .collect()
    }

    fn sender() -> Envelope {
        Envelope::new(ReversePath::Address(
            Address::parse("s@client.test").unwrap(),
        ))
    }

    fn esmtp(line: &str) -> String {
        match line.split(' ').next().unwrap_or("") {
            "EHLO" => "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME".to_owned(),
            "RCPT" if line.contains("bad@") => "550 5.1.1 unknown user".to_owned(),
            "RCPT" if line.contains("later@") => "450 4.2.0 try later".to_owned(),
            "DATA" => "354 go ahead".to_owned(),
            _ => "250 2.0.0 ok".to_owned(),
        }
    }

    #[tokio::test]
    async fn pipelined_transaction_with_a_reply_per_recipient() {
        let (addr, seen) = server("220 mx.test ESMTP", esmtp, "250 2.0.0 Ok: queued as X").await;
        let mut s = Session::connect(addr, "mx.test", &settings(false))
            .await
            .unwrap();
        assert!(s.extensions.pipelining);
        let rcpts = addresses(&["a@x.test", "bad@x.test", "later@x.test", "b@x.test"]);
        let replies = s
            .send(&sender(), &rcpts, "caf\u{e9}\r\n.dot\r\n".as_bytes())
            .await
            .unwrap();
        let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
        assert_eq!(codes, [250, 550, 450, 250]);
        assert_eq!(
            replies[1].text,
            "unknown user (in reply to RCPT TO command)"
        );
        assert_eq!(replies[0].text, "Ok: queued as X");
        // A second transaction on the same session goes straight to
        // MAIL: the first ended with its end-of-data reply.
        let replies = s.send(&sender(), &rcpts[..1], b"x").await.unwrap();
        assert_eq!(replies[0].code, 250);
        assert_eq!(s.transactions(), 2);
        s.quit().await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0], "EHLO client.test");
        assert_eq!(seen[1], "MAIL FROM:<s@client.test> SIZE=13 BODY=8BITMIME");
        assert!(seen.contains(&"..dot".to_owned()), "{seen:?}");
        assert!(!seen.contains(&"RSET".to_owned()), "{seen:?}");
    }

    #[tokio::test]
    async fn too_big_for_the_server_is_refused_before_sending() {
        let (addr, seen) = server("220 mx.test", esmtp, "250 ok").await;
        let mut s = Session::connect(addr, "mx.test", &settings(false))
            .await
            .unwrap();
        let replies = s
            .send(&sender(), &addresses(&["a@x.test"]), &[b'x'; 2000])
            .await
            .unwrap();
        assert_eq!(replies[0].code, 552);
        assert_eq!(replies[0].enhanced, Some(EnhancedCode::new(5, 3, 4)));
        assert!(!seen.lock().unwrap().iter().any(|l| l.starts_with("MAIL")));
    }

    #[tokio::test]
    async fn helo_when_ehlo_is_refused_and_one_command_at_a_time() {
        fn old(line: &str) -> String {
            match line.split(' ').next().unwrap_or("") {
                "EHLO" => "502 5.5.2 what?".to_owned(),
                "HELO" => "250 old.test".to_owned(),
                "RCPT" if line.contains("bad@") => "550 no".to_owned(),
                "DATA" => "354 go".to_owned(),
                _ => "250 ok".to_owned(),
            }
        }
        let (addr, seen) = server("220 old.test", old, "250 ok").await;
        let mut s = Session::connect(addr, "old.test", &settings(false))
            .await
            .unwrap();
        assert_eq!(s.extensions, Default::default());
        let replies = s
            .send(&sender(), &addresses(&["bad@x.test"]), b"x")
            .await
            .unwrap();
        assert_eq!(replies[0].code, 550);
        assert_eq!(replies[0].enhanced, Some(EnhancedCode::new(5, 0, 0)));
        // The transaction was left open (MAIL taken, no DATA): the next
        // one starts with RSET.
        let replies = s
            .send(&sender(), &addresses(&["a@x.test"]), b"x")
            .await
            .unwrap();
        assert_eq!(replies[0].code, 250);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[1], "HELO client.test");
        assert_eq!(seen[2], "MAIL FROM:<s@client.test>");
        // No recipient accepted: no DATA.
        assert_eq!(seen[4], "RSET", "{seen:?}");
        assert_eq!(seen[5], "MAIL FROM:<s@client.test>");
    }

    #[tokio::test]
    async fn a_closing_server_is_an_error_worth_a_new_connection() {
        fn closing(line: &str) -> String {
            match line.split(' ').next().unwrap_or("") {
                "EHLO" => "250-mx.test\r\n250 PIPELINING".to_owned(),
                "MAIL" => "421 4.4.2 mx.test Error: timeout exceeded".to_owned(),
                _ => "503 5.5.1 Error: need MAIL command".to_owned(),
            }
        }
        let (addr, _) = server("220 mx.test", closing, "250 ok").await;
        let mut s = Session::connect(addr, "mx.test", &settings(false))
            .await
            .unwrap();
        let err = s
            .send(&sender(), &addresses(&["a@x.test"]), b"x")
            .await
            .unwrap_err();
        assert!(err.retry_fresh(), "{err}");
        assert!(err.to_string().contains("421 4.4.2"), "{err}");
        let lost = ClientError::Lost {
            relay: "r".to_owned(),
            stage: "end of DATA",
            error: "closed".to_owned(),
        };
        assert!(!lost.retry_fresh(), "the content may have arrived");
    }

    #[tokio::test]
    async fn lmtp_reads_a_reply_per_accepted_recipient() {
        fn lmtp(line: &str) -> String {
            match line.split(' ').next().unwrap_or("") {
                "LHLO" => "250-store.test\r\n250 PIPELINING".to_owned(),
                "RCPT" if line.contains("bad@") => "550 5.1.1 no".to_owned(),
                "DATA" => "354 go".to_owned(),
                _ => "250 ok".to_owned(),
            }
        }
        let (addr, _) = server(
            "220 store.test LMTP",
            lmtp,
            "250 2.0.0 a ok\r\n452 4.2.2 c over quota",
        )
        .await;
        let mut s = Session::connect(addr, "store.test", &settings(true))
            .await
            .unwrap();
        let rcpts = addresses(&["a@x.test", "bad@x.test", "c@x.test"]);
        let replies = s.send(&sender(), &rcpts, b"x").await.unwrap();
        let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
        assert_eq!(codes, [250, 550, 452]);
    }

    #[tokio::test]
    async fn garbage_and_silence_are_errors_not_hangs() {
        fn nothing(_: &str) -> String {
            String::new()
        }
        let (addr, _) = server("hello there", nothing, "").await;
        let err = Session::connect(addr, "x.test", &settings(false))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Protocol {
                    stage: "greeting",
                    ..
                }
            ),
            "{err}"
        );
        let (addr, _) = server("554 5.7.1 go away", nothing, "").await;
        let err = Session::connect(addr, "x.test", &settings(false))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("554 5.7.1 go away"), "{err}");
        let (addr, _) = server("220 x", nothing, "").await;
        let err = Session::connect(addr, "x.test", &settings(false))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Timeout { stage: "EHLO", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("timed out while EHLO"), "{err}");
        let err = Session::connect("127.0.0.1:1".parse().unwrap(), "x.test", &settings(false))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod parameter_tests {
    use postern_mail::envelope::{Notify, Orcpt, Ret};
    use postern_mail::{Address, ReversePath};

    use super::*;

    #[tokio::test]
    async fn dsn_parameters_and_smtputf8() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The server closes after EHLO: only the command texts matter.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"220 x\r\n").await.unwrap();
            let mut buf = [0u8; 100];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
            s.write_all(b"250-x\r\n250-DSN\r\n250 SMTPUTF8\r\n")
                .await
                .unwrap();
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
        });
        let settings = super::super::ClientSettings {
            helo_name: "c.test".to_owned(),
            lmtp: false,
            tls_level: super::super::TlsLevel::None,
            tls: None,
            timeouts: super::super::Timeouts::default(),
        };
        let s = Session::connect(addr, "x", &settings).await.unwrap();
        let mut envelope = Envelope::new(ReversePath::Address(Address::parse("s@c.test").unwrap()));
        envelope.ret = Some(Ret::Headers);
        envelope.envid = Some("id 1+2".to_owned());
        assert_eq!(
            s.mail_command(&envelope, 5, false, b"x"),
            "MAIL FROM:<s@c.test> RET=HDRS ENVID=id+201+2B2"
        );
        let mut r = Recipient::new(Address::parse("u@d.test").unwrap());
        r.notify = Some(Notify {
            success: true,
            failure: true,
            delay: false,
        });
        r.orcpt = Some(Orcpt {
            addr_type: "rfc822".to_owned(),
            address: "u+x@d.test".to_owned(),
        });
        assert_eq!(
            s.rcpt_command(&r),
            "RCPT TO:<u@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+2Bx@d.test"
        );
        envelope.smtputf8 = true;
        assert!(!needs_utf8(&envelope, std::slice::from_ref(&r)));
        let u = Recipient::new(Address::parse("j\u{f6}rg@d.test").unwrap());
        assert!(needs_utf8(&envelope, &[u]));
    }
}
