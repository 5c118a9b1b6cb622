//! `smtpd_delay_reject = no`: each restriction list asked at its own
//! command, as Postfix does then: the client list at connect, the helo
//! list at HELO/EHLO, the sender list at MAIL, and only the relay and
//! recipient lists at RCPT. With the default (`yes`) all five are asked at
//! each RCPT (rcpt.rs) and nothing here runs.
//!
//! A client the client list refuses at connect gets the refusal in place
//! of the `220` greeting (RFC 5321 §3.1 allows a `554` there) and `503
//! 5.7.0 Error: access denied for NAME[ADDR]` for every command but QUIT,
//! Postfix's words; a `421` closes the session at once. The actions the
//! client and helo lists choose (HOLD, DISCARD, REDIRECT, FILTER) stand
//! for every transaction of the session, as the same answer at each RCPT
//! would, until a new HELO/EHLO (or STARTTLS) replaces the name the helo
//! list judged; the sender list's apply to its transaction.

use postern_mail::{EnhancedCode, Reply, Stage, Verdict};

use super::{Session, Transport};
use crate::codec::Verb;

/// The lists asked at RCPT, in Postfix's order. With `smtpd_delay_reject`
/// client, helo and sender come first; relay always comes before
/// recipient, so that a permissive recipient rule can never open the
/// relay.
const RCPT_STAGES: [Stage; 5] = [
    Stage::Client,
    Stage::Helo,
    Stage::Sender,
    Stage::Relay,
    Stage::Recipient,
];

impl<S: Transport> Session<S> {
    /// The lists asked at RCPT.
    pub(super) fn rcpt_stages(&self) -> &'static [Stage] {
        if self.settings.delay_reject {
            &RCPT_STAGES
        } else {
            &RCPT_STAGES[3..]
        }
    }

    /// Without `smtpd_delay_reject`, asks the client list before the
    /// greeting; its refusal, which replaces the greeting, if it refused.
    pub(super) async fn check_connect(&mut self) -> Option<Reply> {
        if self.settings.delay_reject {
            return None;
        }
        match self.restrict(&[Stage::Client], None, 0).await {
            Ok(actions) => {
                self.stand(Stage::Client, "CONNECT", actions);
                None
            }
            Err(refusal) => {
                self.log_refusal("CONNECT", &refusal, None);
                self.access_denied = true;
                Some(refusal.reply)
            }
        }
    }

    /// After a refusal at connect, the reply to anything but QUIT.
    pub(super) fn denied(&self, verb: Verb) -> Option<Reply> {
        (self.access_denied && verb != Verb::Quit).then(|| {
            Reply::new(
                503,
                EnhancedCode::new(5, 7, 0),
                format!("Error: access denied for {}", self.client),
            )
        })
    }

    /// Without `smtpd_delay_reject`, asks the helo list about `name`
    /// (HELO, or EHLO when `extended`); the refusal if it refused, the
    /// session's name and protocol then left as they were.
    pub(super) async fn check_helo(&mut self, name: &str, extended: bool) -> Result<(), Reply> {
        if self.settings.delay_reject {
            return Ok(());
        }
        let was = (self.helo.replace(name.to_owned()), self.esmtp);
        self.esmtp = extended;
        let command = if extended { "EHLO" } else { "HELO" };
        match self.restrict(&[Stage::Helo], None, 0).await {
            Ok(actions) => {
                // The new name is judged alone: what the list chose for
                // the one it replaces no longer stands.
                self.forget_helo_actions();
                self.stand(Stage::Helo, command, actions);
                Ok(())
            }
            Err(refusal) => {
                self.log_refusal(command, &refusal, None);
                (self.helo, self.esmtp) = was;
                Err(refusal.reply)
            }
        }
    }

    /// Without `smtpd_delay_reject`, asks the sender list about the
    /// transaction MAIL just started; the refusal if it refused, the
    /// transaction then gone.
    pub(super) async fn check_sender(&mut self, size: u64) -> Result<(), Reply> {
        if self.settings.delay_reject {
            return Ok(());
        }
        match self.restrict(&[Stage::Sender], None, size).await {
            Ok(actions) => {
                self.apply_actions("MAIL", &actions, None);
                Ok(())
            }
            Err(refusal) => {
                self.log_refusal("MAIL", &refusal, None);
                self.end_transaction();
                Err(refusal.reply)
            }
        }
    }

    /// Gives a new transaction the actions that stand for the session.
    pub(super) fn apply_standing(&mut self) {
        if let Some(txn) = &mut self.txn {
            for (_, action) in &self.standing {
                txn.apply(action);
            }
        }
    }

    /// Drops the actions the helo list chose, once the name it judged is
    /// gone (a new HELO/EHLO, or STARTTLS, after which the client must
    /// name itself again).
    pub(super) fn forget_helo_actions(&mut self) {
        self.standing.retain(|(stage, _)| *stage != Stage::Helo);
    }

    /// Logs the actions `stage`'s list chose at `command` and keeps them
    /// for every transaction to come.
    fn stand(&mut self, stage: Stage, command: &str, actions: Vec<Verdict>) {
        self.apply_actions(command, &actions, None);
        self.standing
            .extend(actions.into_iter().map(|action| (stage, action)));
    }
}
