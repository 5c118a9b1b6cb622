//! The SMTP server session: one task per connection that owns its socket
//! (mini-redis style), reads commands through the codec, asks the policy,
//! the directory and the queue, and answers as Postfix's smtpd does.
//!
//! One file per command: `helo.rs`, `mail.rs`, `rcpt.rs`, `data.rs`,
//! `bdat.rs`, `vrfy.rs`, `etrn.rs`, `starttls.rs`, `auth.rs`; the verbs
//! that are only a reply (RSET, NOOP, HELP, QUIT) live in `simple.rs`.
//! `check.rs` asks the restriction lists, `pipelining.rs` notes input sent
//! ahead of the replies where RFC 2920 forbids it, `received.rs` writes the trace
//! header, `cleanup.rs` a submission's missing Message-Id and Date, `log.rs` shapes log lines, `io.rs` buffers the socket,
//! `tls.rs` holds the certificate and the stream that STARTTLS upgrades,
//! `transaction.rs` holds one mail transaction, `limits.rs` the per-client
//! limits, the error slow-down, `header_size_limit` and the stop signal.

mod auth;
mod bdat;
mod check;
mod cleanup;
mod data;
mod early;
mod etrn;
mod helo;
pub mod io;
mod limits;
mod log;
mod mail;
mod pipelining;
mod rcpt;
mod received;
mod settings;
mod simple;
mod starttls;
mod tls;
mod transaction;
mod vrfy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use postern_mail::{
    Directory, EnhancedCode, Enqueue, Policy, PolicySession, Reply, Stage, Verdict,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::codec::{BareNewline, Command, LineReader, Verb};
use auth::Login;
use io::{Input, Io, Stop};
use log::{Counters, TARGET};
pub use settings::{ClientLimits, Connection, SessionSettings, Shutdown};
use tls::Stream;
pub use tls::{TlsConfig, TlsError, TlsInfo};
use transaction::Transaction;

/// The byte stream a session runs over: a TCP stream, or an in-memory pipe
/// in tests; the session wraps it in its own TLS-capable stream.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Numbers sessions for the policy `instance` attribute.
static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// Runs one SMTP session over `stream` to its end: greeting, commands,
/// transactions, QUIT or a close. Every failure of the client gets a
/// protocol reply or a close; nothing the client sends can panic it, and its
/// memory is bounded by the command line and message size limits. Logs go to
/// the `postern/smtpd` tracing target in maillog shapes.
pub async fn serve<S>(
    stream: S,
    conn: Connection,
    settings: Arc<SessionSettings>,
    policy: Arc<dyn Policy>,
    directory: Arc<dyn Directory>,
    queue: Arc<dyn Enqueue>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut session = Session {
        io: Io::new(Stream::Plain(stream)),
        lines: LineReader::new(settings.max_command_line),
        client: conn.client(),
        conn,
        settings,
        policy,
        policy_session: PolicySession::new(),
        directory,
        queue,
        helo: None,
        esmtp: false,
        txn: None,
        counters: Counters::default(),
        errors: 0,
        junk: 0,
        last: "CONNECT",
        number: SESSIONS.fetch_add(1, Ordering::Relaxed),
        transactions: 0,
        tls: None,
        login: None,
        start_tls: false,
        illegal_pipelining: false,
        access_denied: false,
        standing: Vec::new(),
    };
    session.serve().await;
}

/// The state of one session.
pub(crate) struct Session<S> {
    io: Io<Stream<S>>,
    lines: LineReader,
    conn: Connection,
    /// `name[ip]` as every log line names the client.
    client: String,
    settings: Arc<SessionSettings>,
    policy: Arc<dyn Policy>,
    /// What the policy keeps for this session's transaction (its plugin
    /// instances, the snapshot it is evaluated against): released when
    /// the transaction ends ([`Session::end_transaction`]).
    policy_session: PolicySession,
    directory: Arc<dyn Directory>,
    queue: Arc<dyn Enqueue>,
    /// The HELO/EHLO argument, control characters replaced.
    helo: Option<String>,
    /// The client said EHLO (protocol ESMTP) rather than HELO.
    esmtp: bool,
    txn: Option<Transaction>,
    counters: Counters,
    /// Failed commands since the last delivered message, against
    /// `hard_error_limit`.
    errors: u32,
    /// Junk commands ([`limits::junk`]) since the last delivered message.
    junk: u32,
    /// The last command, for `timeout after X` and `lost connection
    /// after X`.
    last: &'static str,
    number: u64,
    transactions: u64,
    /// What the TLS handshake negotiated, once there was one.
    tls: Option<TlsInfo>,
    /// The successful AUTH, if any.
    login: Option<Login>,
    /// STARTTLS was accepted: the handshake follows its `220`.
    start_tls: bool,
    /// The client sent commands ahead of a reply where RFC 2920 forbids
    /// it, at some point in this session (`pipelining.rs`).
    illegal_pipelining: bool,
    /// Without `smtpd_delay_reject`: the client list refused the client
    /// at connect; every command but QUIT gets `503` (`early.rs`).
    access_denied: bool,
    /// Without `smtpd_delay_reject`: the actions (HOLD, DISCARD, ...) the
    /// client and helo lists chose at connect and HELO, applied to every
    /// transaction of the session as if chosen at its RCPT; each with the
    /// list that chose it, since a new HELO drops the helo list's.
    standing: Vec<(Stage, Verdict)>,
}

impl<S: Transport> Session<S> {
    async fn serve(&mut self) {
        // Postfix's exact shape (pflogsumm counts these lines); the service
        // name is the program name's business, not the line's.
        tracing::info!(target: TARGET, "connect from {}", self.client);
        metrics::counter!("postern_smtpd_connections_total").increment(1);
        let end = self.run().await;
        let timeout = self.settings.command_timeout;
        let host = &self.settings.hostname;
        let last = self.last;
        match end {
            Ok(()) => {}
            Err(Stop::Eof) => {
                tracing::info!(target: TARGET, "lost connection after {last} from {}", self.client);
            }
            Err(Stop::Io(e)) => {
                tracing::debug!(target: TARGET, "{}: {e}", self.client);
                tracing::info!(target: TARGET, "lost connection after {last} from {}", self.client);
            }
            Err(Stop::Timeout) => {
                let reply = Reply::new(
                    421,
                    EnhancedCode::new(4, 4, 2),
                    format!("{host} Error: timeout exceeded"),
                );
                self.io.reply(&reply);
                tracing::info!(target: TARGET, "timeout after {last} from {}", self.client);
            }
            Err(Stop::TooManyErrors) => {
                let reply = Reply::new(
                    421,
                    EnhancedCode::new(4, 7, 0),
                    format!("{host} Error: too many errors"),
                );
                self.io.reply(&reply);
                tracing::info!(target: TARGET, "too many errors after {last} from {}", self.client);
            }
            Err(Stop::TooManyAuthFailures) => {
                let reply = Reply::new(
                    421,
                    EnhancedCode::new(4, 7, 0),
                    format!("{host} Error: too many failed authentication attempts"),
                );
                self.io.reply(&reply);
                tracing::info!(target: TARGET, "too many failed authentication attempts after {last} from {}", self.client);
            }
            Err(Stop::ShuttingDown) => {
                self.io.reply(&limits::shutting_down());
                tracing::info!(target: TARGET, "shutdown after {last} from {}", self.client);
            }
            Err(Stop::Tls(e)) => {
                // Postfix's wording; the peer gets no reply (there is no
                // channel left to send one on).
                tracing::info!(target: TARGET, "SSL_accept error from {}: {e}", self.client);
                tracing::info!(target: TARGET, "lost connection after {last} from {}", self.client);
            }
        }
        self.io.shutdown(timeout).await;
        tracing::info!(
            target: TARGET,
            "disconnect from {} {}",
            self.client,
            self.counters.summary()
        );
    }

    /// The command loop; `Ok` after QUIT.
    async fn run(&mut self) -> Result<(), Stop> {
        if self.settings.implicit_tls {
            self.handshake().await?;
        }
        let mut counted = match self.admit() {
            Ok(guard) => guard,
            Err(reply) => {
                self.io.reply(&reply);
                return Ok(());
            }
        };
        self.check_pregreet().await;
        let greeting = match self.check_connect().await {
            Some(refusal) => refusal,
            None => Reply::plain(220, self.settings.banner.clone()),
        };
        self.io.reply(&greeting);
        if matches!(greeting.code, 421 | 521) {
            self.io.flush(self.settings.command_timeout).await?;
            return Ok(());
        }
        loop {
            if self.errors >= self.settings.hard_error_limit {
                return Err(Stop::TooManyErrors);
            }
            let input = self.next_input().await?;
            let (line, reply) = match input {
                Input::TooLong => (Line::Uncounted, line_too_long()),
                Input::Line { bare_lf: true, .. }
                    if self.settings.bare_newline == BareNewline::Reject =>
                {
                    (Line::Uncounted, bare_lf())
                }
                Input::Line { text, .. } => match Command::parse(&text) {
                    Ok(cmd) => {
                        let verb = cmd.verb();
                        self.check_pipelining(verb).await;
                        self.last = verb.keyword();
                        (Line::Verb(verb), self.dispatch(cmd).await?)
                    }
                    Err(e) => {
                        self.last = e.verb().map_or("UNKNOWN", Verb::keyword);
                        self.refuse(&e)
                    }
                },
            };
            let failed = reply.code >= 400;
            match line {
                Line::Verb(verb) => self.counters.record(Some(verb), !failed),
                Line::Unknown => self.counters.record(None, !failed),
                Line::Uncounted => {}
            }
            self.error_sleep().await;
            if failed {
                self.errors = self.errors.saturating_add(1);
            }
            if limits::junk(line) {
                self.junk = self.junk.saturating_add(1);
                if self.junk > self.settings.junk_command_limit {
                    self.errors = self.errors.saturating_add(1);
                }
            }
            self.io.reply(&reply);
            if matches!(reply.code, 421 | 521) {
                // RFC 5321 §3.8: 421 closes the channel; 521 (RFC 7504)
                // refuses all mail. Either comes from a policy (an access
                // map's `421 text`, as Postfix disconnects on it) or from
                // a BDAT without a usable size, whose chunk's end is lost
                // so that nothing more can be read as commands.
                self.io.flush(self.settings.command_timeout).await?;
                return Ok(());
            }
            if std::mem::take(&mut self.start_tls) {
                self.handshake().await?;
            }
            if line == Line::Verb(Verb::Quit) {
                // The client is leaving: its place in the per-client
                // connection count is given back before it can read the
                // 221, so a client that reconnects at once is not counted
                // twice (smtpd_client_connection_count_limit).
                drop(counted.take());
                self.io.flush(self.settings.command_timeout).await?;
                return Ok(());
            }
        }
    }

    async fn dispatch(&mut self, cmd: Command) -> Result<Reply, Stop> {
        if let Some(reply) = self.denied(cmd.verb()) {
            return Ok(reply);
        }
        if let Some(reply) = self.tls_gate(cmd.verb()) {
            return Ok(reply);
        }
        Ok(match cmd {
            Command::Helo(name) => self.helo(&name, false).await,
            Command::Ehlo(name) => self.helo(&name, true).await,
            Command::Mail(mail) => self.mail(mail).await,
            Command::Rcpt(rcpt) => self.rcpt(rcpt).await,
            Command::Data => return self.data().await,
            Command::Rset => self.rset(),
            Command::Noop => simple::noop(),
            Command::Quit => simple::quit(),
            Command::Vrfy(arg) => self.vrfy(&arg),
            Command::Help => simple::help(),
            Command::StartTls => self.starttls(),
            Command::Auth(args) => return self.auth(&args).await,
            Command::Bdat { size, last } => return self.bdat(size, last).await,
            Command::Etrn(arg) => self.etrn(&arg),
        })
    }

    /// `ESMTP` after EHLO, `SMTP` otherwise: Postfix's `proto=`.
    fn protocol(&self) -> &'static str {
        if self.esmtp { "ESMTP" } else { "SMTP" }
    }

    /// The Received header's `with`: RFC 3848 adds `S` for TLS and `A`
    /// for AUTH to `ESMTP` (`ESMTPSA`).
    fn received_protocol(&self) -> String {
        let mut p = self.protocol().to_owned();
        if self.esmtp && (self.tls.is_some() || self.login.is_some()) {
            if self.tls.is_some() {
                p.push('S');
            }
            if self.login.is_some() {
                p.push('A');
            }
        }
        p
    }
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client)
            .field("helo", &self.helo)
            .field("txn", &self.txn)
            .finish_non_exhaustive()
    }
}

/// What a command-phase line was, for the `disconnect` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A known verb, counted under its name.
    Verb(Verb),
    /// Not a verb we know: counted as `unknown`, as Postfix does.
    Unknown,
    /// Too long, or a bare LF in reject mode: an error, but not a command.
    Uncounted,
}

fn line_too_long() -> Reply {
    Reply::new(500, EnhancedCode::new(5, 5, 2), "Error: line too long")
}

fn bare_lf() -> Reply {
    Reply::new(500, EnhancedCode::new(5, 5, 2), "Error: bare <LF> received")
}
