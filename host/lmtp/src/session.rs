//! One LMTP session (RFC 2033): greeting, LHLO, MAIL, RCPT, the short
//! verbs, and the loop that reads commands through the SMTP codec. DATA is
//! in `data`.
//!
//! Replies follow Postfix's smtpd where LMTP and SMTP agree (`503 5.5.1
//! Error: need MAIL command`, `452 4.5.3 Error: too many recipients`) and
//! Dovecot's LMTP where they do not (`250 2.0.0 <rcpt> ID Saved`).

use std::sync::Arc;
use std::time::Instant;

use postern_mail::{Address, EnhancedCode, Envelope, QueueId, Recipient, Reply};
use postern_smtp::codec::{Body, Command, ForwardPath, LineReader, MailFrom, RcptTo};
use postern_smtp::session::io::{Input, Io, Stop};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::settings::{Connection, Settings};

/// The `tracing` target of every LMTP server log line: `postern/lmtpd`,
/// apart from `postern/lmtp`, the delivery agent that speaks LMTP to
/// other servers (Postfix's lmtp(8)).
pub(crate) const TARGET: &str = "postern/lmtpd";

/// Runs one LMTP session over `stream` to its end: greeting, commands,
/// transactions, QUIT or a close. Nothing the client sends can panic it;
/// its memory is bounded by `line_length_limit`, `message_size_limit` and
/// `smtpd_recipient_limit`. Logs go to `postern/lmtpd` in maillog shapes.
pub async fn serve<S>(stream: S, conn: Connection, settings: Arc<Settings>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    tracing::info!(target: TARGET, "connect from {}", conn.client);
    let mut session = Session {
        io: Io::new(stream),
        lines: LineReader::new(settings.line_length_limit),
        settings,
        conn,
        lhlo: None,
        transaction: None,
        errors: 0,
        commands: (0, 0),
    };
    let end = session.run().await;
    let timeout = session.settings.timeout;
    session.io.shutdown(timeout).await;
    let client = &session.conn.client;
    match end {
        Err(Stop::Timeout) => {
            tracing::info!(target: TARGET, "timeout after {} from {client}", session.last());
        }
        Err(Stop::Io(e)) => tracing::info!(target: TARGET, "lost connection from {client}: {e}"),
        Err(Stop::Eof) | Ok(()) => {}
        // TLS, AUTH and the SMTP error limits do not exist in LMTP.
        Err(other) => tracing::info!(target: TARGET, "session with {client} ended: {other:?}"),
    }
    let (ok, all) = session.commands;
    let counts = if ok == all {
        format!("commands={all}")
    } else {
        format!("commands={ok}/{all}")
    };
    tracing::info!(target: TARGET, "disconnect from {client} {counts}");
}

/// One mail transaction: from MAIL to the replies after DATA.
#[derive(Debug)]
pub(crate) struct Transaction {
    /// Names the transaction in log lines and `250` replies.
    pub(crate) id: QueueId,
    /// The sender, and BODY=8BITMIME.
    pub(crate) envelope: Envelope,
    /// The accepted recipients, in RCPT order: one reply each after DATA.
    pub(crate) recipients: Vec<Recipient>,
    /// When MAIL arrived, for `delay=`.
    pub(crate) started: Instant,
}

pub(crate) struct Session<S> {
    pub(crate) io: Io<S>,
    lines: LineReader,
    pub(crate) settings: Arc<Settings>,
    pub(crate) conn: Connection,
    /// The LHLO argument, once given.
    pub(crate) lhlo: Option<String>,
    pub(crate) transaction: Option<Transaction>,
    /// Error replies so far, for `smtpd_hard_error_limit`.
    errors: u32,
    /// Commands that succeeded, and all, for the `disconnect` line.
    commands: (u32, u32),
}

/// What a command asks of the loop.
pub(crate) enum Next {
    Continue,
    Close,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    async fn run(&mut self) -> Result<(), Stop> {
        let greeting = format!("{} LMTP Postern ready", self.settings.myhostname);
        self.io.reply(&Reply::plain(220, greeting));
        loop {
            let timeout = self.settings.timeout;
            let input = if self.transaction.is_none() && self.io.pending().is_empty() {
                // Between transactions a stop closes the session at once.
                self.io.flush(timeout).await?;
                match self.next_or_stop().await? {
                    Some(input) => input,
                    None => {
                        let text = format!("{} Service shutting down", self.settings.myhostname);
                        self.io
                            .reply(&Reply::new(421, EnhancedCode::new(4, 3, 2), text));
                        return Ok(());
                    }
                }
            } else {
                self.io.next_line(&mut self.lines, timeout).await?
            };
            let reply_ok = match input {
                Input::TooLong => {
                    self.io.reply(&Reply::new(
                        500,
                        EnhancedCode::new(5, 5, 2),
                        "Error: line too long",
                    ));
                    false
                }
                Input::Line { text: line, .. } => match self.command(&line).await? {
                    (Next::Close, ok) => {
                        self.count(ok);
                        return Ok(());
                    }
                    (Next::Continue, ok) => ok,
                },
            };
            self.count(reply_ok);
            if !reply_ok {
                self.errors = self.errors.saturating_add(1);
                if self.errors >= self.settings.hard_error_limit {
                    let text = format!("{} Error: too many errors", self.settings.myhostname);
                    self.io
                        .reply(&Reply::new(421, EnhancedCode::new(4, 7, 0), text));
                    tracing::info!(target: TARGET, "too many errors after {} from {}", self.last(), self.conn.client);
                    return Ok(());
                }
            }
        }
    }

    /// The next command line, or `None` when the server stops first.
    async fn next_or_stop(&mut self) -> Result<Option<Input>, Stop> {
        let timeout = self.settings.timeout;
        let Some(mut stop) = self.settings.stop.clone() else {
            return self.io.next_line(&mut self.lines, timeout).await.map(Some);
        };
        if *stop.borrow_and_update() {
            return Ok(None);
        }
        // Only the read is cancelled when the stop wins (replies were
        // flushed above), and a read that is cancelled loses nothing.
        tokio::select! {
            input = self.io.next_line(&mut self.lines, timeout) => input.map(Some),
            _ = stop.wait_for(|s| *s) => Ok(None),
        }
    }

    fn count(&mut self, ok: bool) {
        self.commands.1 = self.commands.1.saturating_add(1);
        if ok {
            self.commands.0 = self.commands.0.saturating_add(1);
        }
    }

    /// What the session was waiting for, for `timeout after ...`.
    fn last(&self) -> &'static str {
        match &self.transaction {
            None if self.lhlo.is_none() => "CONNECT",
            None => "LHLO",
            Some(t) if t.recipients.is_empty() => "MAIL",
            Some(_) => "RCPT",
        }
    }

    /// Runs one command line; says whether the loop goes on, and whether
    /// the reply was a success (for the error limit and the counters).
    async fn command(&mut self, line: &[u8]) -> Result<(Next, bool), Stop> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        let (word, args) = text
            .split_once(|c: char| c.is_ascii_whitespace())
            .map_or((text, ""), |(w, a)| (w, a.trim()));
        if word.eq_ignore_ascii_case("LHLO") {
            return Ok((Next::Continue, self.lhlo(args)));
        }
        if word.eq_ignore_ascii_case("HELO") || word.eq_ignore_ascii_case("EHLO") {
            // RFC 2033 §4.1: an LMTP server must not take HELO or EHLO,
            // so that an SMTP client pointed here by mistake stops.
            self.io.reply(&Reply::new(
                500,
                EnhancedCode::new(5, 5, 1),
                "Error: this is an LMTP server; use LHLO",
            ));
            return Ok((Next::Continue, false));
        }
        let ok = match Command::parse(line) {
            Err(e) => {
                self.io.reply(&e.reply());
                false
            }
            Ok(Command::Mail(mail)) => self.mail(mail),
            Ok(Command::Rcpt(rcpt)) => self.rcpt(rcpt),
            Ok(Command::Data) => return self.data().await.map(|ok| (Next::Continue, ok)),
            Ok(Command::Rset) => {
                self.transaction = None;
                self.io.reply(&ok_reply(EnhancedCode::new(2, 0, 0)));
                true
            }
            Ok(Command::Noop) => {
                self.io.reply(&ok_reply(EnhancedCode::new(2, 0, 0)));
                true
            }
            Ok(Command::Vrfy(_)) => {
                // Dovecot's answer: existence is what RCPT tells.
                self.io.reply(&Reply::new(
                    252,
                    EnhancedCode::new(2, 3, 3),
                    "Try RCPT instead",
                ));
                true
            }
            Ok(Command::Quit) => {
                self.io
                    .reply(&Reply::new(221, EnhancedCode::new(2, 0, 0), "Bye"));
                return Ok((Next::Close, true));
            }
            // STARTTLS, AUTH, BDAT, ETRN, HELP: not offered in LMTP here.
            Ok(_) => {
                self.io.reply(&Reply::new(
                    502,
                    EnhancedCode::new(5, 5, 2),
                    "Error: command not recognized",
                ));
                false
            }
        };
        Ok((Next::Continue, ok))
    }

    /// `LHLO name` (RFC 2033 §4.1): the extensions, and a fresh start.
    fn lhlo(&mut self, name: &str) -> bool {
        if name.is_empty() {
            self.io.reply(&Reply::new(
                501,
                EnhancedCode::new(5, 5, 4),
                "Syntax: LHLO hostname",
            ));
            return false;
        }
        let size = match self.settings.message_size_limit {
            0 => "SIZE".to_owned(),
            n => format!("SIZE {n}"),
        };
        let lines = [
            self.settings.myhostname.to_string(),
            "PIPELINING".to_owned(),
            size,
            "ENHANCEDSTATUSCODES".to_owned(),
            "8BITMIME".to_owned(),
        ];
        self.io.reply(&Reply::plain(250, lines.join("\n")));
        self.lhlo = Some(printable(name));
        self.transaction = None;
        true
    }

    /// `MAIL FROM:<sender> [SIZE=n] [BODY=...]`.
    fn mail(&mut self, mail: MailFrom) -> bool {
        let refuse = |code, e: EnhancedCode, text: &str| Reply::new(code, e, text);
        let limit = self.settings.message_size_limit;
        let reply = if self.lhlo.is_none() {
            refuse(503, EnhancedCode::new(5, 5, 1), "Error: send LHLO first")
        } else if self.transaction.is_some() {
            refuse(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: nested MAIL command",
            )
        } else if mail.smtputf8 {
            // Not announced: the sending MTA must not ask for it.
            refuse(
                555,
                EnhancedCode::new(5, 5, 4),
                "Unsupported option: SMTPUTF8",
            )
        } else if limit > 0 && mail.size.is_some_and(|s| s > limit) {
            refuse(
                552,
                EnhancedCode::new(5, 3, 4),
                "Message size exceeds fixed limit",
            )
        } else {
            let mut envelope = Envelope::new(mail.sender);
            envelope.client = self.conn.peer;
            envelope.helo.clone_from(&self.lhlo);
            envelope.protocol = "LMTP".to_owned();
            envelope.eight_bit_mime = mail.body == Some(Body::EightBitMime);
            let id = (self.settings.next_id)();
            tracing::info!(target: TARGET, "{id}: client={}", self.conn.client);
            self.transaction = Some(Transaction {
                id,
                envelope,
                recipients: Vec::new(),
                started: Instant::now(),
            });
            ok_reply(EnhancedCode::new(2, 1, 0))
        };
        let ok = reply.is_positive();
        self.io.reply(&reply);
        ok
    }

    /// `RCPT TO:<address>`: taken only for a mailbox here.
    fn rcpt(&mut self, rcpt: RcptTo) -> bool {
        let myhostname = self.settings.myhostname.clone();
        let limit = self.settings.recipient_limit;
        let Some(tx) = &mut self.transaction else {
            self.io.reply(&Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: need MAIL command",
            ));
            return false;
        };
        if tx.recipients.len() >= limit {
            self.io.reply(&Reply::new(
                452,
                EnhancedCode::new(4, 5, 3),
                "Error: too many recipients",
            ));
            return false;
        }
        let address = match rcpt.recipient {
            // RFC 5321 §4.5.1: `<Postmaster>` is the postmaster here.
            ForwardPath::Postmaster => Address::new("postmaster", myhostname),
            ForwardPath::Address(a) => a,
        };
        if !self.settings.mailboxes.exists(&address) {
            let reply = Reply::new(
                550,
                EnhancedCode::new(5, 1, 1),
                format!("<{address}>: Recipient address rejected: User unknown"),
            );
            tracing::info!(target: TARGET, "{}: reject: RCPT from {}: {reply}; from=<{}> to=<{address}> proto=LMTP helo=<{}>", tx.id, self.conn.client, tx.envelope.sender, self.lhlo.as_deref().unwrap_or_default());
            self.io.reply(&reply);
            return false;
        }
        let mut recipient = Recipient::new(address);
        recipient.notify = rcpt.notify;
        recipient.orcpt = rcpt.orcpt;
        tx.recipients.push(recipient);
        self.io.reply(&ok_reply(EnhancedCode::new(2, 1, 5)));
        true
    }
}

/// `250 X.Y.Z Ok`.
fn ok_reply(code: EnhancedCode) -> Reply {
    Reply::new(250, code, "Ok")
}

/// `s` with control characters replaced by `?`, as Postfix's
/// `printable()` does before client text reaches a header or a log line.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
