//! The session's limits that are not one command's business: the
//! per-client limits counted in the service's [`Anvil`] (connections at
//! once, connections and messages per time unit), the slow-down after
//! `smtpd_soft_error_limit` errors and the error count forgiven by a
//! delivered message, TLS required by `smtpd_tls_security_level = encrypt`,
//! `header_size_limit`, and the server's stop signal. Replies and log
//! lines are Postfix's.
//!
//! [`Anvil`]: crate::anvil::Anvil

use postern_mail::{EnhancedCode, Reply};

use super::io::{Input, Stop};
use super::log::TARGET;
use super::{Line, Session, Transport};
use crate::anvil::ConnectionGuard;
use crate::codec::{ParseError, Verb};

impl<S: Transport> Session<S> {
    /// Counts the connection and checks the per-client connection limits:
    /// `Ok` holds the connection in the count until dropped; `Err` is the
    /// `421` to close with. Exempt clients and services without counters
    /// are not counted.
    pub(super) fn admit(&self) -> Result<Option<ConnectionGuard>, Reply> {
        let Some(anvil) = &self.settings.anvil else {
            return Ok(None);
        };
        if self.conn.limits_exempt {
            return Ok(None);
        }
        let limits = self.settings.client_limits;
        let admission = anvil.connect(self.conn.client_ip());
        let exceeded = if limits.connection_count > 0 && admission.count > limits.connection_count {
            Some(("Connection concurrency", admission.count))
        } else if limits.connection_rate > 0 && admission.rate > limits.connection_rate {
            Some(("Connection rate", admission.rate))
        } else {
            None
        };
        match exceeded {
            None => Ok(Some(admission.guard)),
            Some((what, n)) => {
                tracing::warn!(
                    target: TARGET,
                    "{what} limit exceeded: {n} from {} for service {}",
                    self.client,
                    self.conn.service
                );
                Err(Reply::new(
                    421,
                    EnhancedCode::new(4, 7, 0),
                    format!(
                        "{} Error: too many connections from {}",
                        self.settings.hostname,
                        self.conn.client_ip()
                    ),
                ))
            }
        }
    }

    /// `smtpd_tls_security_level = encrypt` before STARTTLS: RFC 3207 §4
    /// has the server answer `530` to every command but NOOP, EHLO,
    /// STARTTLS and QUIT; Postfix adds HELO, and so do we. RSET and AUTH
    /// are refused too (AUTH is not even offered), and BDAT's chunk is not
    /// read, as in Postfix. The verb is checked before its arguments, so a
    /// bad MAIL gets the `530` as well.
    pub(super) fn tls_gate(&self, verb: Verb) -> Option<Reply> {
        let allowed = matches!(
            verb,
            Verb::Helo | Verb::Ehlo | Verb::StartTls | Verb::Noop | Verb::Quit
        );
        (self.settings.tls_required && self.tls.is_none() && !allowed).then(|| {
            Reply::new(
                530,
                EnhancedCode::new(5, 7, 0),
                "Must issue a STARTTLS command first",
            )
        })
    }

    /// How a line that did not parse is counted and answered: a known verb
    /// with bad arguments under its name (or the `530` of [`tls_gate`]), an
    /// unknown verb as `unknown`, and a line that is not UTF-8 or is empty
    /// not at all (Postfix counts neither in its `disconnect` line, but
    /// both are errors).
    ///
    /// [`tls_gate`]: Session::tls_gate
    pub(super) fn refuse(&self, e: &ParseError) -> (Line, Reply) {
        match e {
            ParseError::BadUtf8 | ParseError::Empty => (Line::Uncounted, e.reply()),
            _ => match e.verb() {
                Some(verb) => (
                    Line::Verb(verb),
                    self.tls_gate(verb).unwrap_or_else(|| e.reply()),
                ),
                None => (Line::Unknown, e.reply()),
            },
        }
    }

    /// A message was delivered (queued, or discarded by policy): Postfix
    /// forgives the client's earlier errors and junk commands, so the
    /// soft and hard error limits count from here (smtpd.c, "Forgive any
    /// previous client errors when a message was received successfully").
    pub(super) fn delivered(&mut self) {
        self.errors = 0;
        self.junk = 0;
    }

    /// The refusal at MAIL that comes from a limit rather than the
    /// command: too many messages from this client in the time unit (the
    /// MAIL is counted either way, as anvil counts requests, not
    /// deliveries). TLS required is [`tls_gate`]'s business.
    ///
    /// [`tls_gate`]: Session::tls_gate
    pub(super) fn mail_limit(&self) -> Option<Reply> {
        let limit = self.settings.client_limits.message_rate;
        let anvil = self.settings.anvil.as_ref()?;
        if limit == 0 || self.conn.limits_exempt {
            return None;
        }
        let rate = anvil.message(self.conn.client_ip());
        (rate > limit).then(|| {
            tracing::warn!(
                target: TARGET,
                "Message delivery request rate limit exceeded: {rate} from {} for service {}",
                self.client,
                self.conn.service
            );
            Reply::new(
                450,
                EnhancedCode::new(4, 7, 1),
                format!("Error: too much mail from {}", self.conn.client_ip()),
            )
        })
    }

    /// Postfix's "sleep on anything": once the client has made
    /// `smtpd_soft_error_limit` errors, each reply waits
    /// `smtpd_error_sleep_time`. The hard limit ends the session later.
    pub(super) async fn error_sleep(&self) {
        if self.errors >= self.settings.soft_error_limit {
            tokio::time::sleep(self.settings.error_sleep_time).await;
        }
    }

    /// The next command line; with no transaction open, the server's stop
    /// signal ends the wait with [`Stop::ShuttingDown`]. A transaction in
    /// progress is left to finish (the server bounds how long it waits).
    pub(super) async fn next_input(&mut self) -> Result<Input, Stop> {
        let timeout = self.settings.command_timeout;
        if self.txn.is_some() {
            return self.io.next_line(&mut self.lines, timeout).await;
        }
        if self.settings.shutdown.is_set() {
            return Err(Stop::ShuttingDown);
        }
        // Replies go out before the wait, so that the stop never cuts one
        // in half: a read is safe to cancel, a write is not.
        self.io.flush(timeout).await?;
        let mut shutdown = self.settings.shutdown.clone();
        tokio::select! {
            input = self.io.next_line(&mut self.lines, timeout) => input,
            () = shutdown.wait() => Err(Stop::ShuttingDown),
        }
    }
}

impl<S: Transport> Session<S> {
    /// [`limit_headers`] with `header_size_limit`, logging each header cut.
    pub(super) fn header_limit(&self, content: Vec<u8>) -> Vec<u8> {
        let (content, cut) = limit_headers(content, self.settings.header_size_limit);
        let id = self.txn.as_ref().and_then(|t| t.id.as_ref());
        for name in cut {
            let id = id.map_or("NOQUEUE".to_owned(), ToString::to_string);
            tracing::warn!(
                target: TARGET,
                "{id}: header {name} from {} exceeds header_size_limit ({} bytes): truncated",
                self.client,
                self.settings.header_size_limit
            );
        }
        content
    }
}

/// Whether a command counts against `smtpd_junk_command_limit`: those a
/// client can repeat forever without sending mail. Postfix's smtpd flags
/// HELO, EHLO, RSET, NOOP, VRFY and ETRN; HELP, which Postfix lacks, is
/// one too.
pub(super) fn junk(line: Line) -> bool {
    matches!(
        line,
        Line::Verb(
            Verb::Helo
                | Verb::Ehlo
                | Verb::Rset
                | Verb::Noop
                | Verb::Vrfy
                | Verb::Etrn
                | Verb::Help
        )
    )
}

/// The reply to a session the stop closes between transactions.
pub(super) fn shutting_down() -> Reply {
    Reply::new(421, EnhancedCode::new(4, 3, 2), "Service shutting down")
}

/// Truncates every message header (a header line and its continuation
/// lines, RFC 5322 §2.2.3) longer than `limit` bytes to `limit` bytes, as
/// Postfix's cleanup(8) does with `header_size_limit`: "header text that
/// does not fit is discarded". Returns the content and the names of the
/// headers cut, for the log. The body is left alone.
pub(crate) fn limit_headers(content: Vec<u8>, limit: usize) -> (Vec<u8>, Vec<String>) {
    let limit = limit.max(1);
    let end = header_end(&content);
    // The usual case: every header fits; no copy.
    if headers(&content[..end]).all(|h| h.len() <= limit) {
        return (content, Vec::new());
    }
    let mut out = Vec::with_capacity(content.len());
    let mut cut = Vec::new();
    for header in headers(&content[..end]) {
        if header.len() <= limit {
            out.extend_from_slice(header);
            continue;
        }
        let name = header
            .iter()
            .position(|&b| b == b':')
            .map(|i| String::from_utf8_lossy(&header[..i]).into_owned())
            .unwrap_or_default();
        cut.push(name);
        // Whole lines while they fit; a first line longer than the limit
        // is cut inside. The header still ends in CRLF.
        let mut kept = 0;
        for line in header.split_inclusive(|&b| b == b'\n') {
            if kept + line.len() > limit {
                if kept == 0 {
                    out.extend_from_slice(&line[..limit.saturating_sub(2)]);
                    out.extend_from_slice(b"\r\n");
                }
                break;
            }
            out.extend_from_slice(line);
            kept += line.len();
        }
    }
    out.extend_from_slice(&content[end..]);
    (out, cut)
}

/// Where the header section ends: after the lines that are headers or
/// their continuations, before the empty line (or the first line that is
/// neither, which Postfix also takes as the start of the body).
fn header_end(content: &[u8]) -> usize {
    let mut at = 0;
    let mut first = true;
    for line in content.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        let field = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|i| i > 0 && line[..i].iter().all(|b| b.is_ascii_graphic()));
        if !(field || (continuation && !first)) {
            break;
        }
        first = false;
        at += line.len();
    }
    at
}

/// The headers of a header section, each with its continuation lines.
fn headers(section: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = section;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut len = 0;
        for line in rest.split_inclusive(|&b| b == b'\n') {
            if len > 0 && !matches!(line.first(), Some(b' ' | b'\t')) {
                break;
            }
            len += line.len();
        }
        let (header, tail) = rest.split_at(len);
        rest = tail;
        Some(header)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn headers_within_the_limit_are_untouched() {
        let m = b"Subject: hi\r\nTo: a@b\r\n\r\nbody\r\n".to_vec();
        let (out, cut) = limit_headers(m.clone(), 100);
        assert_eq!(out, m);
        assert!(cut.is_empty());
    }

    #[test]
    fn a_long_header_loses_its_excess_lines() {
        let mut m = b"Subject: hi\r\nX-Long: a\r\n".to_vec();
        for _ in 0..10 {
            m.extend_from_slice(b" 0123456789\r\n");
        }
        m.extend_from_slice(b"To: a@b\r\n\r\n X-Body: not a header\r\n");
        let (out, cut) = limit_headers(m, 40);
        assert_eq!(cut, ["X-Long"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: hi\r\nX-Long: a\r\n 0123456789\r\n 0123456789\r\n\
             To: a@b\r\n\r\n X-Body: not a header\r\n"
        );
    }

    #[test]
    fn a_long_first_line_is_cut_inside() {
        let mut m = b"X-Long: ".to_vec();
        m.extend(std::iter::repeat_n(b'x', 200));
        m.extend_from_slice(b"\r\n\r\nbody ");
        m.extend(std::iter::repeat_n(b'y', 300));
        let (out, cut) = limit_headers(m, 50);
        assert_eq!(cut, ["X-Long"]);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(head.len(), 48);
        assert_eq!(body.len(), 305);
    }

    #[test]
    fn no_header_section_is_fine() {
        let (out, cut) = limit_headers(b"just text\r\n".to_vec(), 4);
        assert_eq!(out, b"just text\r\n");
        assert!(cut.is_empty());
        let (out, _) = limit_headers(Vec::new(), 4);
        assert!(out.is_empty());
    }
}
