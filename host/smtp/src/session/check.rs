//! Asking the restriction lists (DESIGN §3): the policy request with every
//! attribute the session knows, the first refusal, the non-final actions,
//! and the maillog lines they leave (`reject:`, `hangup:`, `hold:`,
//! `discard:`, `warn:`, `info:`, `redirect:`).

use std::sync::Arc;

use postern_mail::{
    Address, DomainClass, MessageContent, PolicyRequest, Reply, ReversePath, Stage, Verdict,
};

use super::log::{TARGET, whatsup};
use super::{Session, Transport};

/// A list refused the request.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The reply the policy chose.
    pub(crate) reply: Reply,
    /// The entry that refused, for `plugin=` in the log.
    pub(crate) decided_by: Option<String>,
    /// Postfix's HANGUP: logged as `hangup:`; the reply is a `421`, which
    /// closes the session.
    pub(crate) hangup: bool,
}

/// The recipient a request is about, with its domain's class.
pub(crate) type Target<'a> = Option<(&'a Address, DomainClass)>;

impl<S: Transport> Session<S> {
    /// Evaluates `stages` in order; the first refusal wins (Postfix: each
    /// list is evaluated on its own, and a reject in any ends the command).
    /// Warn actions are logged at once; the other actions are returned for
    /// the caller to apply once the command is accepted as a whole.
    pub(super) async fn restrict(
        &mut self,
        stages: &[Stage],
        recipient: Target<'_>,
        size: u64,
    ) -> Result<Vec<Verdict>, Refusal> {
        self.restrict_message(stages, recipient, size, None).await
    }

    /// [`Session::restrict`] with the message, for the end-of-data list.
    pub(super) async fn restrict_message(
        &mut self,
        stages: &[Stage],
        recipient: Target<'_>,
        size: u64,
        message: Option<&MessageContent>,
    ) -> Result<Vec<Verdict>, Refusal> {
        let policy = Arc::clone(&self.policy);
        let mut actions = Vec::new();
        // Postfix's `state->where`: the command being answered, which for
        // the lists smtpd_delay_reject moves to RCPT is RCPT (and for the
        // helo list asked at EHLO, EHLO).
        let command = match stages.last() {
            Some(Stage::Helo) if self.esmtp => "EHLO",
            Some(stage) => stage.command(),
            None => "RCPT",
        };
        // One request for every stage of the command, only its stage
        // changed: what the lists see cannot change between them (actions
        // apply once the command is accepted), and building it costs a
        // dozen strings and two directory lookups.
        let mut request: Option<PolicyRequest> = None;
        for &stage in stages {
            if self.discarding() || actions.iter().any(|a| matches!(a, Verdict::Discard(_))) {
                // Postfix: once DISCARD marked the message, no more
                // restrictions are evaluated for it; it is accepted and
                // thrown away.
                break;
            }
            let request = match &mut request {
                Some(request) => {
                    request.stage = stage;
                    request
                }
                None => {
                    let mut first = self.policy_request(stage, recipient, size);
                    first.message = message.cloned();
                    request.insert(first)
                }
            };
            let decision = policy.check_in(&mut self.policy_session, request).await;
            if self.txn.is_none() {
                // Outside a transaction nothing is kept for later.
                self.policy_session.release();
            }
            let refusal = decision.refusal().map(|reply| Refusal {
                reply: reply.clone(),
                decided_by: decision.decided_by.clone(),
                hangup: decision.hangs_up(),
            });
            // A list that ended on an action rather than permit treats it as
            // an action met on the way.
            let last = (refusal.is_none()
                && !matches!(decision.verdict, Verdict::Permit | Verdict::Dunno))
            .then_some(decision.verdict);
            for action in decision.actions.into_iter().chain(last) {
                match action {
                    // Postfix's log_whatsup: `warn:` and `info:` lines,
                    // logged when met, whatever the command's fate (a
                    // refusal later in the list included).
                    Verdict::Warn(text) => {
                        self.log_event("warn", command, &text, recipient.map(|r| r.0));
                    }
                    Verdict::Info(text) => {
                        self.log_event("info", command, &text, recipient.map(|r| r.0));
                    }
                    // Expanded by the policy; nothing to apply.
                    Verdict::Restriction(_) => {}
                    other => actions.push(other),
                }
            }
            if let Some(refusal) = refusal {
                return Err(refusal);
            }
        }
        Ok(actions)
    }

    /// Whether a DISCARD already marked the transaction's message.
    fn discarding(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.discard)
    }

    /// Ends the transaction in progress, if any (RSET, HELO/EHLO, STARTTLS,
    /// the final dot or last chunk), and whatever the policy kept for it:
    /// the plugin instances, the snapshot it was evaluated against.
    pub(super) fn end_transaction(&mut self) {
        self.txn = None;
        self.policy_session.release();
    }

    /// Applies accepted actions to the transaction, logging those Postfix
    /// logs.
    pub(super) fn apply_actions(
        &mut self,
        command: &str,
        actions: &[Verdict],
        recipient: Option<&Address>,
    ) {
        for action in actions {
            match action {
                Verdict::Hold(text) => {
                    let text = or_default(text, "triggers HOLD action");
                    self.log_event("hold", command, text, recipient);
                }
                Verdict::Discard(text) => {
                    let text = or_default(text, "triggers DISCARD action");
                    self.log_event("discard", command, text, recipient);
                }
                Verdict::Redirect(to) => {
                    self.log_event("redirect", command, &to.to_string(), recipient);
                }
                Verdict::Filter(next_hop) => {
                    let text = format!("triggers FILTER {next_hop}");
                    self.log_event("filter", command, &text, recipient);
                }
                _ => {}
            }
            if let Some(txn) = &mut self.txn {
                txn.apply(action);
            }
        }
    }

    /// The request for `stage`, with every attribute known so far. At DATA
    /// and END-OF-MESSAGE the recipient is filled in only when there is
    /// exactly one, as in Postfix's policy delegation.
    pub(super) fn policy_request(
        &self,
        stage: Stage,
        recipient: Target<'_>,
        size: u64,
    ) -> PolicyRequest {
        let mut r = PolicyRequest::new(stage);
        r.protocol_name = self.protocol().to_owned();
        r.client_address = Some(self.conn.client_ip());
        r.client_port = self.conn.peer.port();
        r.client_name.clone_from(&self.conn.client_name);
        r.reverse_client_name.clone_from(&self.conn.client_name);
        r.helo_name = self.helo.clone().unwrap_or_default();
        r.trusted = self.conn.trusted;
        r.illegal_pipelining = self.illegal_pipelining;
        r.pop_before_smtp = self
            .settings
            .pop_before_smtp
            .as_ref()
            .is_some_and(|l| l.contains(self.conn.client_ip()));
        r.server_address = Some(self.conn.local.ip().to_canonical());
        r.server_port = self.conn.local.port();
        r.size = size;
        if let Some(login) = &self.login {
            r.sasl_method = login.method.name().to_owned();
            r.sasl_username.clone_from(&login.username);
        }
        if let Some(tls) = &self.tls {
            r.encryption_protocol.clone_from(&tls.protocol);
            r.encryption_cipher.clone_from(&tls.cipher);
            r.tls_sni = tls.sni.clone().unwrap_or_default();
        }
        let mut recipient = recipient.map(|(a, c)| (a.clone(), c));
        if let Some(txn) = &self.txn {
            r.instance.clone_from(&txn.instance);
            r.queue_id = txn
                .id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default();
            r.sender = txn.sender.to_string();
            if let ReversePath::Address(sender) = &txn.sender {
                r.sender_class = Some(self.directory.domain_class(sender.domain()));
                r.sender_known = self.directory.recipient_exists(sender);
            }
            r.recipient_count = u32::try_from(txn.recipients.len()).unwrap_or(u32::MAX);
            if recipient.is_none() {
                recipient = txn
                    .single_recipient()
                    .map(|a| (a.clone(), self.directory.domain_class(a.domain())));
            }
        }
        if let Some((address, class)) = recipient {
            r.recipient = address.to_string();
            r.recipient_class = Some(class);
            r.recipient_known = self.directory.recipient_exists(&address);
        }
        r
    }

    /// `ID: reject: RCPT from host[ip]: 554 5.7.1 ...; from=<..> to=<..>
    /// proto=ESMTP helo=<..> plugin=...` (NOQUEUE before a queue id).
    pub(super) fn log_reject(
        &self,
        command: &str,
        reply: &Reply,
        recipient: Option<&Address>,
        decided_by: Option<&str>,
    ) {
        count_reject(command, reply, decided_by);
        self.log_line("reject", command, &reply.to_string(), recipient, decided_by);
    }

    /// A policy refusal's line: `reject:`, or `hangup:` with the text
    /// alone for Postfix's HANGUP (`NOQUEUE: hangup: RCPT from
    /// host[addr]: TEXT; from=<..> to=<..> proto=ESMTP helo=<..>`).
    pub(super) fn log_refusal(
        &self,
        command: &str,
        refusal: &Refusal,
        recipient: Option<&Address>,
    ) {
        let by = refusal.decided_by.as_deref();
        if refusal.hangup {
            count_reject(command, &refusal.reply, by);
            self.log_line("hangup", command, &refusal.reply.text, recipient, by);
        } else {
            self.log_reject(command, &refusal.reply, recipient, by);
        }
    }

    /// A hold, discard, redirect, warn or info line.
    fn log_event(&self, what: &str, command: &str, text: &str, recipient: Option<&Address>) {
        self.log_line(what, command, text, recipient, None);
    }

    /// `ID: what: COMMAND from host[ip]: text; from=<..> to=<..> proto=..
    /// helo=<..>`, Postfix's shape, with Postern's `plugin=` naming the
    /// deciding entry.
    fn log_line(
        &self,
        what: &str,
        command: &str,
        text: &str,
        recipient: Option<&Address>,
        plugin: Option<&str>,
    ) {
        let id = self
            .txn
            .as_ref()
            .and_then(|t| t.id.as_ref())
            .map_or("NOQUEUE".to_owned(), ToString::to_string);
        let sender = self.txn.as_ref().map(|t| t.sender.to_string());
        let recipient = recipient
            .or_else(|| self.txn.as_ref().and_then(|t| t.single_recipient()))
            .map(ToString::to_string);
        let tail = whatsup(
            sender.as_deref(),
            recipient.as_deref(),
            self.protocol(),
            self.helo.as_deref(),
        );
        let plugin = plugin.map_or(String::new(), |p| format!(" plugin={p}"));
        tracing::info!(
            target: TARGET,
            "{id}: {what}: {command} from {}: {text}; {tail}{plugin}",
            self.client
        );
    }
}

/// A policy's text, or Postfix's wording when it gave none.
fn or_default<'a>(text: &'a str, default: &'a str) -> &'a str {
    if text.trim().is_empty() {
        default
    } else {
        text
    }
}

/// `postern_smtpd_rejects_total{stage, plugin, class}` for the Prometheus
/// endpoint: one per `reject:` log line, so the two always agree.
pub(super) fn count_reject(stage: &str, reply: &Reply, plugin: Option<&str>) {
    let class = if reply.code >= 500 { "reject" } else { "defer" };
    metrics::counter!(
        "postern_smtpd_rejects_total",
        "stage" => stage.to_owned(),
        "plugin" => plugin.unwrap_or("none").to_owned(),
        "class" => class,
    )
    .increment(1);
}
