//! AUTH (RFC 4954): SASL PLAIN and LOGIN, with an initial response
//! (SASL-IR) or without, checked against the users file by the `auth`
//! crate. Replies and log lines are Postfix's.
//!
//! A failed login is answered only after a delay that grows with each
//! failure from the same address, and past the limit the client gets
//! `421` and is disconnected: password guessing costs time, then stops.

use std::sync::Arc;

use postern_auth::{Check, Credentials, Exchange, Mechanism, SaslError, Step};
use postern_mail::{EnhancedCode, Reply};

use super::io::{Input, Stop};
use super::log::TARGET;
use super::{Session, Transport};

/// Password checks running at once, across all sessions. An Argon2id
/// check takes 19 MiB and tens of milliseconds of CPU: a flood of AUTH
/// commands must queue here, not become a flood of threads and memory.
static CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// A successful AUTH: the policy's `sasl_method` and `sasl_username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login {
    pub(crate) method: Mechanism,
    /// The user as the users file writes it.
    pub(crate) username: String,
}

impl<S: Transport> Session<S> {
    /// Whether AUTH is offered now: enabled on this service, and over TLS
    /// unless `smtpd_tls_auth_only = no` or the client is on loopback.
    /// Where TLS is required (`encrypt`) AUTH waits for it whoever the
    /// client is, since AUTH would be answered `530` anyway.
    pub(super) fn auth_offered(&self) -> bool {
        self.settings.auth.is_some()
            && (self.secure()
                || (!self.settings.tls_required
                    && (!self.settings.tls_auth_only || self.conn.client_ip().is_loopback())))
    }

    /// Answers AUTH, running the whole exchange.
    pub(super) async fn auth(&mut self, args: &str) -> Result<Reply, Stop> {
        let Some(authenticator) = self.settings.auth.clone() else {
            return Ok(error(503, "Error: authentication not enabled"));
        };
        if !self.auth_offered() {
            return Ok(Reply::new(
                530,
                EnhancedCode::new(5, 7, 0),
                "Must issue a STARTTLS command first",
            ));
        }
        if !self.esmtp {
            return Ok(error(503, "Error: send EHLO first"));
        }
        if self.login.is_some() {
            return Ok(error(503, "Error: already authenticated"));
        }
        if self.txn.is_some() {
            return Ok(error(503, "Error: MAIL transaction in progress"));
        }
        let mut words = args.split_ascii_whitespace();
        let (Some(name), initial, None) = (words.next(), words.next(), words.next()) else {
            return Ok(Reply::new(
                501,
                EnhancedCode::new(5, 5, 4),
                "Syntax: AUTH mechanism",
            ));
        };
        let Some(mechanism) = Mechanism::from_name(name) else {
            return Ok(Reply::new(
                504,
                EnhancedCode::new(5, 5, 4),
                "Error: unsupported authentication mechanism",
            ));
        };
        let credentials = match self.exchange(mechanism, initial).await? {
            Ok(c) => c,
            Err(SaslError::Cancelled) => {
                return Ok(Reply::new(
                    501,
                    EnhancedCode::new(5, 7, 0),
                    "Authentication aborted",
                ));
            }
            Err(SaslError::BadBase64) => {
                return Ok(Reply::new(
                    501,
                    EnhancedCode::new(5, 5, 2),
                    "Cannot decode response",
                ));
            }
            Err(_) => {
                let login = Credentials {
                    authzid: None,
                    username: String::new(),
                    password: String::new(),
                };
                return self.failed(mechanism, &login, &authenticator).await;
            }
        };
        let check = {
            let (a, c) = (Arc::clone(&authenticator), credentials.clone());
            // The semaphore is never closed, so acquire cannot fail; if it
            // did, the check would simply run unbounded.
            let _permit = CHECKS.acquire().await.ok();
            // Password hashes are slow on purpose: off the async workers.
            tokio::task::spawn_blocking(move || a.check(&c))
                .await
                .unwrap_or(Check::Failure)
        };
        match check {
            Check::Success(username) => {
                authenticator.succeeded(self.conn.client_ip());
                self.login = Some(Login {
                    method: mechanism,
                    username,
                });
                Ok(Reply::new(
                    235,
                    EnhancedCode::new(2, 7, 0),
                    "Authentication successful",
                ))
            }
            Check::Broken { user, line, error } => {
                tracing::warn!(
                    target: TARGET,
                    "users file line {line}: user {user}: {error}; login refused"
                );
                self.failed(mechanism, &credentials, &authenticator).await
            }
            _ => self.failed(mechanism, &credentials, &authenticator).await,
        }
    }

    /// Runs the challenges until the client's credentials are complete.
    /// The outer `Err` is a dead socket; the inner one a SASL refusal.
    async fn exchange(
        &mut self,
        mechanism: Mechanism,
        initial: Option<&str>,
    ) -> Result<Result<Credentials, SaslError>, Stop> {
        let (mut exchange, mut step) = match Exchange::start(mechanism, initial) {
            Ok(started) => started,
            Err(e) => return Ok(Err(e)),
        };
        loop {
            let challenge = match step {
                Step::Done(credentials) => return Ok(Ok(credentials)),
                Step::Challenge(c) => c,
            };
            self.io.reply(&Reply::plain(334, challenge));
            let input = self
                .io
                .next_line(&mut self.lines, self.settings.command_timeout)
                .await?;
            let Input::Line { text, .. } = input else {
                return Ok(Err(SaslError::BadBase64));
            };
            let Ok(text) = String::from_utf8(text) else {
                return Ok(Err(SaslError::BadBase64));
            };
            step = match exchange.step(&text) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
        }
    }

    /// A failed login: logged, delayed, counted; `535`, or the end of the
    /// session past the limit.
    async fn failed(
        &mut self,
        mechanism: Mechanism,
        credentials: &Credentials,
        authenticator: &postern_auth::Authenticator,
    ) -> Result<Reply, Stop> {
        // Postfix's line; the password never appears, the name only as the
        // client gave it.
        let user: String = credentials
            .username
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        tracing::warn!(
            target: TARGET,
            "{}: SASL {mechanism} authentication failed: authentication failure, sasl_username={user}",
            self.client
        );
        let penalty = authenticator.failed(self.conn.client_ip());
        tokio::time::sleep(penalty.delay).await;
        let reply = Reply::new(
            535,
            EnhancedCode::new(5, 7, 8),
            "Error: authentication failed: authentication failure",
        );
        if penalty.disconnect {
            self.io.reply(&reply);
            self.counters.record(Some(crate::codec::Verb::Auth), false);
            return Err(Stop::TooManyAuthFailures);
        }
        Ok(reply)
    }

    /// `, sasl_method=PLAIN, sasl_username=alice@example.org` for the
    /// `client=` line, empty before AUTH.
    pub(super) fn login_suffix(&self) -> String {
        self.login.as_ref().map_or(String::new(), |l| {
            format!(", sasl_method={}, sasl_username={}", l.method, l.username)
        })
    }
}

fn error(code: u16, text: &str) -> Reply {
    Reply::new(code, EnhancedCode::new(5, 5, 1), text)
}
