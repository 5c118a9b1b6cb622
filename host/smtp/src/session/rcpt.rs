//! RCPT TO (RFC 5321 §4.1.1.3): where the restriction lists are asked and
//! where relaying is decided.

use postern_mail::{Address, Domain, DomainClass, EnhancedCode, Reply};

use super::{Session, Transport};
use crate::codec::{ForwardPath, ParseError, RcptTo};

impl<S: Transport> Session<S> {
    /// Answers RCPT.
    pub(super) async fn rcpt(&mut self, rcpt: RcptTo) -> Reply {
        let Some(txn) = &self.txn else {
            return Reply::new(503, EnhancedCode::new(5, 5, 1), "Error: need MAIL command");
        };
        if txn.chunks.is_some() {
            return Reply::new(503, EnhancedCode::new(5, 5, 1), "Error: RCPT after BDAT");
        }
        let smtputf8 = txn.smtputf8;
        if txn.recipients.len() >= self.settings.recipient_limit {
            return Reply::new(
                452,
                EnhancedCode::new(4, 5, 3),
                "Error: too many recipients",
            );
        }
        let size = txn.size.unwrap_or(0);
        let address = match rcpt.recipient {
            ForwardPath::Address(a) => a,
            ForwardPath::Postmaster => match self.postmaster() {
                Some(a) => a,
                None => return ParseError::BadRecipient.reply(),
            },
        };
        if !smtputf8 && !super::mail::ascii(&address) {
            return super::mail::unicode_undeclared();
        }
        let class = self.directory.domain_class(address.domain());
        let actions = match self
            .restrict(self.rcpt_stages(), Some((&address, class)), size)
            .await
        {
            Ok(actions) => actions,
            Err(refusal) => {
                self.log_refusal("RCPT", &refusal, Some(&address));
                return refusal.reply;
            }
        };
        // smtpd_reject_unlisted_recipient: after the lists, so that they
        // may still reject (or defer) first.
        if let Some(reply) = self.unknown_user(&address, class) {
            self.log_reject("RCPT", &reply, Some(&address), None);
            return reply;
        }
        // The recipient is accepted: the transaction gets its queue id now
        // if it has none, so the actions below log under it.
        let login = self.login_suffix();
        if let Some(txn) = &mut self.txn
            && txn.id.is_none()
        {
            let id = self.queue.new_id();
            tracing::info!(
                target: super::log::TARGET,
                "{id}: client={}{}",
                self.client,
                login
            );
            txn.id = Some(id);
        }
        self.apply_actions("RCPT", &actions, Some(&address));
        if let Some(txn) = &mut self.txn {
            txn.add_recipient(address, rcpt.notify, rcpt.orcpt);
        }
        Reply::new(250, EnhancedCode::new(2, 1, 5), "Ok")
    }

    /// `<postmaster>` without a domain (RFC 5321 §4.5.1) is
    /// `postmaster@myhostname`; `None` if the host name is not a domain.
    fn postmaster(&self) -> Option<Address> {
        Domain::parse(&self.settings.hostname)
            .ok()
            .map(|d| Address::new("postmaster", d))
    }

    /// The refusal for an address at one of our domains that has no
    /// mailbox, as Postfix words it.
    pub(super) fn unknown_user(&self, address: &Address, class: DomainClass) -> Option<Reply> {
        let table = match class {
            DomainClass::Local => "local recipient table",
            DomainClass::Virtual => "virtual mailbox table",
            _ => return None,
        };
        (!self.directory.recipient_exists(address)).then(|| {
            Reply::new(
                550,
                EnhancedCode::new(5, 1, 1),
                format!("<{address}>: Recipient address rejected: User unknown in {table}"),
            )
        })
    }
}
