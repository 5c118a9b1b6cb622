//! MAIL FROM (RFC 5321 §4.1.1.2): starts a transaction. Its queue id comes
//! with the first accepted RCPT.
//!
//! With `smtpd_delay_reject` (the default) the client, helo and sender
//! restriction lists are not asked now but at each RCPT, as Postfix does by
//! default: a client learns of a refusal where it can act on it, and the
//! logs show the recipient it was for. Without it the sender list is asked
//! here (early.rs).

use postern_mail::{DomainClass, EnhancedCode, Reply, ReversePath};

use super::log::TARGET;
use super::transaction::Transaction;
use super::{Session, Transport};
use crate::codec::MailFrom;

impl<S: Transport> Session<S> {
    /// Answers MAIL.
    pub(super) async fn mail(&mut self, mail: MailFrom) -> Reply {
        if self.settings.helo_required && self.helo.is_none() {
            return Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: send HELO/EHLO first",
            );
        }
        if let Some(txn) = &self.txn {
            let text = if txn.chunks.is_some() {
                "Error: MAIL after BDAT"
            } else {
                "Error: nested MAIL command"
            };
            return Reply::new(503, EnhancedCode::new(5, 5, 1), text);
        }
        // RFC 6531 §3.4: a UTF-8 address needs SMTPUTF8 with MAIL.
        if !mail.smtputf8 && !mail.sender.address().is_none_or(ascii) {
            return unicode_undeclared();
        }
        if let Some(reply) = self.mail_limit() {
            return reply;
        }
        if let Some(reply) = self.login_refusal(&mail) {
            super::check::count_reject("MAIL", &reply, None);
            tracing::info!(
                target: TARGET,
                "NOQUEUE: reject: MAIL from {}: {reply}; from=<{}> proto={}{}",
                self.client,
                mail.sender,
                self.protocol(),
                self.helo
                    .as_ref()
                    .map_or(String::new(), |h| format!(" helo=<{h}>")),
            );
            return reply;
        }
        // RFC 1870 §6: refuse an announced size over the limit before the
        // client sends the message.
        if mail
            .size
            .is_some_and(|n| n > self.settings.message_size_limit)
        {
            let reply = Reply::new(
                552,
                EnhancedCode::new(5, 3, 4),
                "Message size exceeds fixed limit",
            );
            super::check::count_reject("MAIL", &reply, None);
            tracing::info!(
                target: TARGET,
                "NOQUEUE: reject: MAIL from {}: {reply}; from=<{}> proto={}{}",
                self.client,
                mail.sender,
                self.protocol(),
                self.helo
                    .as_ref()
                    .map_or(String::new(), |h| format!(" helo=<{h}>")),
            );
            return reply;
        }
        // Postfix's smtpd_check_queue: a queue that cannot hold the
        // message (below queue_minfree, or the announced SIZE over half
        // of what is free) refuses it before the client sends it.
        if !self.queue.has_room(mail.size.unwrap_or(0)) {
            let reply = super::data::insufficient_storage();
            super::check::count_reject("MAIL", &reply, None);
            tracing::info!(
                target: TARGET,
                "NOQUEUE: reject: MAIL from {}: {reply}; from=<{}> proto={}{}",
                self.client,
                mail.sender,
                self.protocol(),
                self.helo
                    .as_ref()
                    .map_or(String::new(), |h| format!(" helo=<{h}>")),
            );
            return reply;
        }
        self.transactions += 1;
        let instance = format!(
            "{:x}.{:x}.{}",
            std::process::id(),
            self.number,
            self.transactions
        );
        let size = mail.size.unwrap_or(0);
        self.txn = Some(Transaction::new(instance, mail));
        self.apply_standing();
        if let Err(refusal) = self.check_sender(size).await {
            return refusal;
        }
        Reply::new(250, EnhancedCode::new(2, 1, 0), "Ok")
    }
}

/// Whether `address` is all ASCII (as its `local@domain` form would be),
/// without writing it out.
pub(super) fn ascii(address: &postern_mail::Address) -> bool {
    address.local().is_ascii() && address.domain().as_str().is_ascii()
}

/// RFC 6531 §3.5: a UTF-8 address in a transaction that did not say
/// SMTPUTF8, in Postfix's words.
pub(super) fn unicode_undeclared() -> Reply {
    Reply::new(
        553,
        EnhancedCode::new(5, 6, 7),
        "Must declare SMTPUTF8 to send unicode address",
    )
}

impl<S: Transport> Session<S> {
    /// Submission's refusals at MAIL: no AUTH yet (RFC 6409 §4.3), or a
    /// sender the login does not own (Postfix's
    /// `reject_sender_login_mismatch`). The null sender is allowed.
    fn login_refusal(&self, mail: &MailFrom) -> Option<Reply> {
        if self.settings.auth_required && self.login.is_none() {
            return Some(Reply::new(
                530,
                EnhancedCode::new(5, 7, 0),
                "Authentication required",
            ));
        }
        let login = self.login.as_ref()?;
        let ReversePath::Address(sender) = &mail.sender else {
            return None;
        };
        if !self.settings.sender_login_check {
            return None;
        }
        let owned = match login.username.rsplit_once('@') {
            Some(_) => sender.to_string().eq_ignore_ascii_case(&login.username),
            // A local-namespace user owns its name at every local domain.
            None => {
                sender.local().eq_ignore_ascii_case(&login.username)
                    && self.directory.domain_class(sender.domain()) == DomainClass::Local
            }
        };
        (!owned).then(|| {
            Reply::new(
                553,
                EnhancedCode::new(5, 7, 1),
                format!(
                    "<{sender}>: Sender address rejected: not owned by user {}",
                    login.username
                ),
            )
        })
    }
}
