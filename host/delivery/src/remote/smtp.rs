//! One batch of recipients to one destination: find the servers, try them
//! in turn, one transaction, a status per recipient.
//!
//! Finding the servers is in `targets`, the status each recipient gets
//! in `delivered`; this file connects, logs in and sends.

use postern_mail::{Delivered, DeliveryStatus, EnhancedCode, Envelope, Recipient, Reply};
use postern_smtp::client::{ClientError, ClientSettings, Session, TlsLevel};

use super::RemoteDelivery;
use super::nexthop::{LmtpTarget, NextHop};
use super::status::Slot;

mod delivered;
mod targets;

use delivered::{all, failed, session_failure, statuses, unresolved};
use targets::Target;

/// The most server addresses tried for one batch (Postfix's
/// `smtp_mx_address_limit` is 5; more only makes a dead destination
/// slower to defer).
const ADDRESS_LIMIT: usize = 10;

impl RemoteDelivery {
    /// Delivers to `recipients` through SMTP to `hop`, at most
    /// `default_destination_recipient_limit` per transaction (RFC 5321
    /// §4.5.3.1.8 only promises 100 at a time; the next transaction
    /// reuses the connection).
    pub async fn deliver_smtp(
        &self,
        hop: &NextHop,
        envelope: &Envelope,
        recipients: &[Recipient],
        content: &[u8],
    ) -> Vec<Delivered> {
        let mut out = Vec::with_capacity(recipients.len());
        for chunk in recipients.chunks(self.settings.destination_recipient_limit.max(1)) {
            out.extend(self.deliver_smtp_once(hop, envelope, chunk, content).await);
        }
        out
    }

    /// One transaction of [`RemoteDelivery::deliver_smtp`].
    async fn deliver_smtp_once(
        &self,
        hop: &NextHop,
        envelope: &Envelope,
        recipients: &[Recipient],
        content: &[u8],
    ) -> Vec<Delivered> {
        let key = format!("smtp:{hop}");
        let mut slot = match self
            .destinations
            .acquire(&key, &self.settings.smtp_concurrency)
            .await
        {
            Ok(slot) => slot,
            Err(suspended) => return all("smtp", "none", recipients, suspended, None),
        };
        if let Some(done) = self
            .reuse(&key, "smtp", envelope, recipients, content)
            .await
        {
            slot.succeeded();
            return done;
        }
        let port = hop.port.unwrap_or(self.settings.smtp_tcp_port);
        let targets = match self.targets(hop, port).await {
            Ok(t) => t,
            Err(status) => return unresolved(&mut slot, "smtp", recipients, status),
        };
        let settings = self.client_settings(false);
        self.try_targets(
            "smtp",
            &key,
            &mut slot,
            Some(hop),
            targets,
            &settings,
            envelope,
            recipients,
            content,
        )
        .await
    }

    /// Delivers to `recipients` through LMTP to `target`.
    pub async fn deliver_lmtp(
        &self,
        target: &LmtpTarget,
        envelope: &Envelope,
        recipients: &[Recipient],
        content: &[u8],
    ) -> Vec<Delivered> {
        let key = format!("lmtp:{target}");
        let settings = self.client_settings(true);
        let mut slot = match self
            .destinations
            .acquire(&key, &self.settings.lmtp_concurrency)
            .await
        {
            Ok(slot) => slot,
            Err(suspended) => return all("lmtp", "none", recipients, suspended, None),
        };
        if let Some(done) = self
            .reuse(&key, "lmtp", envelope, recipients, content)
            .await
        {
            slot.succeeded();
            return done;
        }
        match target {
            LmtpTarget::Unix(path) => match Session::connect_unix(path, &settings).await {
                Ok(session) => {
                    slot.succeeded();
                    self.transact("lmtp", &key, session, envelope, recipients, content)
                        .await
                }
                Err(e) => {
                    slot.failed(&session_failure(&e));
                    failed("lmtp", "none", recipients, &e)
                }
            },
            LmtpTarget::Inet(hop) => {
                let port = hop.port.unwrap_or(24);
                let targets = match self.targets(hop, port).await {
                    Ok(t) => t,
                    Err(status) => return unresolved(&mut slot, "lmtp", recipients, status),
                };
                self.try_targets(
                    "lmtp", &key, &mut slot, None, targets, &settings, envelope, recipients,
                    content,
                )
                .await
            }
        }
    }

    fn client_settings(&self, lmtp: bool) -> ClientSettings {
        let s = &self.settings;
        ClientSettings {
            helo_name: s.helo_name.clone(),
            lmtp,
            // No STARTTLS to an LMTP store: it is local or on a trusted
            // network (Postfix's lmtp_tls_security_level is empty).
            tls_level: if lmtp { TlsLevel::None } else { s.tls_level },
            tls: s.tls.clone(),
            timeouts: s.timeouts,
        }
    }

    /// Sends the transaction on an idle session of `key` when there is
    /// one that may still be used (`cache`). `None` when there is none, or
    /// when it turned out closed (or closing) before the content went out:
    /// the server cannot have taken the message, and the caller connects
    /// anew. Any other failure stands: the message may have reached the
    /// server, and a second connection could deliver it twice.
    async fn reuse(
        &self,
        key: &str,
        agent: &'static str,
        envelope: &Envelope,
        recipients: &[Recipient],
        content: &[u8],
    ) -> Option<Vec<Delivered>> {
        let mut session = self.idle.take(key)?;
        match session.send(envelope, recipients, content).await {
            Ok(replies) => Some(self.sent(agent, key, session, recipients, replies)),
            Err(e) if e.retry_fresh() => {
                // A cached connection the server closed meanwhile is
                // normal (its idle timeout, a restart).
                tracing::debug!(target: "postern/smtp", "cached connection: {e}; connecting anew");
                None
            }
            Err(e) => Some(failed(agent, &session.relay.clone(), recipients, &e)),
        }
    }

    /// Connects to each target in turn until one takes the transaction.
    #[allow(clippy::too_many_arguments)]
    async fn try_targets(
        &self,
        agent: &'static str,
        key: &str,
        slot: &mut Slot,
        hop: Option<&NextHop>,
        targets: Vec<Target>,
        settings: &ClientSettings,
        envelope: &Envelope,
        recipients: &[Recipient],
        content: &[u8],
    ) -> Vec<Delivered> {
        let mut last = None;
        for (host, addr) in targets.into_iter().take(ADDRESS_LIMIT) {
            let connected = match Session::connect(addr, &host, settings).await {
                // Opportunistic TLS that fails is no worse than none: try
                // the same server again in plain text, as Postfix does.
                Err(e @ ClientError::Tls { .. }) if settings.tls_level == TlsLevel::May => {
                    tracing::info!(target: "postern/smtp", "{e}; trying again without TLS");
                    let plain = ClientSettings {
                        tls_level: TlsLevel::None,
                        ..settings.clone()
                    };
                    Session::connect(addr, &host, &plain).await
                }
                other => other,
            };
            let mut session = match connected {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(target: "postern/smtp", "{e}");
                    last = Some(e);
                    continue;
                }
            };
            slot.succeeded();
            if let Some(hop) = hop
                && let Err(e) = self.login(&mut session, hop, &host).await
            {
                let relay = session.relay.clone();
                tokio::spawn(session.quit());
                return all(agent, &relay, recipients, e, None);
            }
            return self
                .transact(agent, key, session, envelope, recipients, content)
                .await;
        }
        // No server took the connection and the handshake: negative
        // feedback, and enough of it suspends the destination, so the
        // next deliveries here need not wait for the same timeouts.
        match last {
            Some(e) => {
                slot.failed(&session_failure(&e));
                failed(agent, "none", recipients, &e)
            }
            None => {
                let status = DeliveryStatus::Deferred {
                    dsn: EnhancedCode::new(4, 4, 1),
                    detail: "no server address to try".to_owned(),
                };
                slot.failed(&status);
                all(agent, "none", recipients, status, None)
            }
        }
    }

    /// One transaction on a fresh session; the session is cached after.
    async fn transact(
        &self,
        agent: &'static str,
        key: &str,
        mut session: Session,
        envelope: &Envelope,
        recipients: &[Recipient],
        content: &[u8],
    ) -> Vec<Delivered> {
        match session.send(envelope, recipients, content).await {
            Ok(replies) => self.sent(agent, key, session, recipients, replies),
            Err(e) => failed(agent, &session.relay.clone(), recipients, &e),
        }
    }

    /// Each recipient's status from the server's replies; the session is
    /// cached for the next delivery to `key`.
    fn sent(
        &self,
        agent: &'static str,
        key: &str,
        session: Session,
        recipients: &[Recipient],
        replies: Vec<Reply>,
    ) -> Vec<Delivered> {
        let dsn = session.extensions.dsn;
        let done = statuses(agent, &session.relay, recipients, replies, dsn);
        self.idle.put(key, session);
        done
    }

    /// AUTH with the `smtp_sasl_password_maps` entry for this next hop,
    /// when `smtp_sasl_auth_enable` is on and the server offers AUTH.
    async fn login(
        &self,
        session: &mut Session,
        hop: &NextHop,
        host: &str,
    ) -> Result<(), DeliveryStatus> {
        if !self.settings.sasl_auth_enable || session.extensions.auth.is_empty() {
            return Ok(());
        }
        let Some(credentials) = self.password(hop, host) else {
            return Ok(());
        };
        let Some((user, password)) = credentials.split_once(':') else {
            return Err(DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 7, 0),
                detail: format!("smtp_sasl_password_maps entry for {hop} is not user:password"),
            });
        };
        session.authenticate(user, password).await.map_err(|e| {
            let detail = match e.reply() {
                Some(reply) => format!(
                    "SASL authentication failed; server {} said: {reply}",
                    session.relay
                ),
                None => e.to_string(),
            };
            DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 7, 0),
                detail,
            }
        })
    }

    /// The credentials for `hop`: looked up as `[host]:port`, `[host]`,
    /// `host` (the next hop as written first), then the server's name.
    fn password(&self, hop: &NextHop, host: &str) -> Option<String> {
        let mut keys = vec![hop.to_string()];
        if hop.port.is_some() {
            let bare = NextHop {
                port: None,
                ..hop.clone()
            };
            keys.push(bare.to_string());
        }
        keys.push(hop.host.clone());
        keys.push(host.to_owned());
        keys.iter().find_map(|k| {
            self.settings
                .sasl_password_maps
                .iter()
                .find_map(|t| t.lookup(k))
        })
    }
}
