//! Postfix's evaluation of one restriction list, entry by entry.
//!
//! The rules (smtpd_check.c, access(5)):
//! - `permit`, `reject` and `defer` end the list.
//! - `dunno` goes on to the next entry.
//! - `defer_if_permit` is remembered: if a later entry permits, or the list
//!   ends (which permits), the answer is that defer instead.
//! - `defer_if_reject` is remembered: if a later entry rejects with a 5xx,
//!   the answer is that defer instead (the client may retry once whatever
//!   made the check uncertain is fixed).
//!   For both, the first one met is the one that counts.
//! - `hold`, `prepend`, `redirect`, `bcc` and `warn` are collected into
//!   [`Decision::actions`] and the list goes on, as Postfix's access
//!   actions do.
//! - `discard` is collected too, and ends the list as a permit would
//!   (Postfix: DISCARD is `smtpd_acl_permit` with the message marked); the
//!   SMTP session then asks no more lists for the transaction.
//! - `hangup` (Postfix's HANGUP) ends the list as a reject does, and
//!   nothing pending changes it.
//! - An entry in shadow mode (`warn_if_reject`, `mode = "shadow"`) is
//!   evaluated and logged (`reject_warning: ...`) but has no effect at all.
//!   Postfix's `warn_if_reject` neutralises only refusals and still acts
//!   on a permit; Postern's shadow mode is stricter so that rolling out an
//!   entry can never change what the list answers.
//!
//! The evaluation is a small state machine fed one verdict at a time, so
//! that the async plugin calls stay in [`crate::snapshot`] and these rules
//! can be tested without WebAssembly.

use postern_mail::{Decision, PolicyRequest, Reply, Verdict};

use crate::entry::Entry;

/// The state of one list's evaluation.
#[derive(Debug)]
pub(crate) struct Chain<'r> {
    request: &'r PolicyRequest,
    /// A `defer_if_permit` met earlier, and the entry that gave it.
    defer_if_permit: Option<(Reply, String)>,
    /// A `defer_if_reject` met earlier, and the entry that gave it.
    defer_if_reject: Option<(Reply, String)>,
    actions: Vec<Verdict>,
}

impl<'r> Chain<'r> {
    /// Starts evaluating a list for `request` (used in shadow-mode logs).
    pub(crate) fn new(request: &'r PolicyRequest) -> Chain<'r> {
        Chain {
            request,
            defer_if_permit: None,
            defer_if_reject: None,
            actions: Vec::new(),
        }
    }

    /// Feeds the verdict of `entry`. Returns the decision when the list
    /// ends here.
    #[cfg(test)]
    pub(crate) fn step(&mut self, entry: &Entry, verdict: Verdict) -> Option<Decision> {
        self.step_as(entry, verdict, entry.mode() == crate::entry::Mode::Shadow)
    }

    /// [`Chain::step`] with the shadow mode given: an entry of a
    /// restriction class named after `warn_if_reject` is in shadow mode
    /// whatever its own.
    pub(crate) fn step_as(
        &mut self,
        entry: &Entry,
        verdict: Verdict,
        shadow: bool,
    ) -> Option<Decision> {
        if shadow {
            self.log_shadow(entry, &verdict);
            return None;
        }
        let name = entry.name();
        match verdict {
            // A restriction verdict is expanded before it gets here
            // (`crate::snapshot`); met anyway, it has no opinion.
            Verdict::Dunno | Verdict::Restriction(_) => None,
            // Postfix's HANGUP ends the session at once: no
            // defer_if_reject or defer_if_permit changes it.
            Verdict::Hangup(reply) => Some(self.decide(Verdict::Hangup(reply), name.to_owned())),
            Verdict::Permit => Some(self.permit(name)),
            // Postfix's DISCARD is a permit that also marks the message:
            // `smtpd_acl_permit` after setting the discard flag.
            Verdict::Discard(text) => {
                self.actions.push(Verdict::Discard(text));
                Some(self.permit(name))
            }
            Verdict::Reject(reply) => Some(match self.defer_if_reject.take() {
                Some((deferral, by)) if reply.is_permanent() => {
                    self.decide(Verdict::Defer(deferral), by)
                }
                _ => self.decide(Verdict::Reject(reply), name.to_owned()),
            }),
            Verdict::Defer(reply) => Some(self.decide(Verdict::Defer(reply), name.to_owned())),
            Verdict::DeferIfPermit(reply) => {
                self.defer_if_permit
                    .get_or_insert_with(|| (reply, name.to_owned()));
                None
            }
            Verdict::DeferIfReject(reply) => {
                self.defer_if_reject
                    .get_or_insert_with(|| (reply, name.to_owned()));
                None
            }
            // Hold, Prepend, Redirect, Bcc, Warn, and whatever
            // non-final action a later version of the mail crate adds.
            action => {
                self.actions.push(action);
                None
            }
        }
    }

    /// A permit by `name`, unless a `defer_if_permit` is pending.
    fn permit(&mut self, name: &str) -> Decision {
        match self.defer_if_permit.take() {
            Some((reply, by)) => self.decide(Verdict::Defer(reply), by),
            None => self.decide(Verdict::Permit, name.to_owned()),
        }
    }

    /// The decision when the list ran out: permit, unless a
    /// `defer_if_permit` is pending.
    pub(crate) fn finish(mut self) -> Decision {
        match self.defer_if_permit.take() {
            Some((reply, by)) => self.decide(Verdict::Defer(reply), by),
            None => Decision {
                verdict: Verdict::Permit,
                decided_by: None,
                actions: std::mem::take(&mut self.actions),
            },
        }
    }

    fn decide(&mut self, verdict: Verdict, by: String) -> Decision {
        Decision {
            verdict,
            decided_by: Some(by),
            actions: std::mem::take(&mut self.actions),
        }
    }

    /// Logs what a shadow entry would have done, in the shape of Postfix's
    /// `NOQUEUE: reject_warning: RCPT from host[addr]: 554 5.7.1 ...;
    /// from=<...> to=<...> proto=ESMTP helo=<...>`.
    fn log_shadow(&self, entry: &Entry, verdict: &Verdict) {
        let r = self.request;
        let id = if r.queue_id.is_empty() {
            "NOQUEUE"
        } else {
            &r.queue_id
        };
        let client = match r.client_address {
            Some(addr) => format!("{}[{addr}]", r.client_name),
            None => format!("{}[unknown]", r.client_name),
        };
        let context = format!(
            "from=<{}> to=<{}> proto={} helo=<{}>",
            r.sender, r.recipient, r.protocol_name, r.helo_name
        );
        let plugin = entry.name();
        let command = r.stage.command();
        match verdict {
            Verdict::Dunno | Verdict::Restriction(_) => {}
            Verdict::Reject(reply)
            | Verdict::Hangup(reply)
            | Verdict::Defer(reply)
            | Verdict::DeferIfPermit(reply)
            | Verdict::DeferIfReject(reply) => tracing::warn!(
                target: "postern/policy",
                plugin,
                "{id}: reject_warning: {command} from {client}: {reply}; {context}"
            ),
            other => tracing::info!(
                target: "postern/policy",
                plugin,
                "{id}: shadow: {command} from {client}: {plugin} would answer {other:?}; {context}"
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_mail::{EnhancedCode, Stage};

    fn entry(line: &str) -> Entry {
        Entry::from_line(line).unwrap()
    }

    fn reply(code: u16) -> Reply {
        Reply::new(
            code,
            EnhancedCode::new((code / 100) as u8, 7, 1),
            format!("r{code}"),
        )
    }

    /// Runs a list of (entry, verdict) through the chain.
    fn run(steps: &[(&str, Verdict)]) -> Decision {
        let req = PolicyRequest::new(Stage::Recipient);
        let mut chain = Chain::new(&req);
        for (line, v) in steps {
            if let Some(d) = chain.step(&entry(line), v.clone()) {
                return d;
            }
        }
        chain.finish()
    }

    #[test]
    fn empty_list_permits() {
        assert_eq!(run(&[]), Decision::permit());
    }

    #[test]
    fn first_final_verdict_wins() {
        let d = run(&[
            ("a", Verdict::Dunno),
            ("b", Verdict::Reject(reply(554))),
            ("c", Verdict::Permit),
        ]);
        assert_eq!(d.verdict, Verdict::Reject(reply(554)));
        assert_eq!(d.decided_by.as_deref(), Some("b"));
    }

    #[test]
    fn actions_are_collected_and_evaluation_goes_on() {
        let d = run(&[
            ("a", Verdict::Prepend("X-A: 1".to_owned())),
            ("b", Verdict::Hold("look".to_owned())),
            ("c", Verdict::Permit),
        ]);
        assert_eq!(d.verdict, Verdict::Permit);
        assert_eq!(d.decided_by.as_deref(), Some("c"));
        assert_eq!(
            d.actions,
            [
                Verdict::Prepend("X-A: 1".to_owned()),
                Verdict::Hold("look".to_owned())
            ]
        );
        let d = run(&[("a", Verdict::Warn("w".to_owned()))]);
        assert_eq!(d.verdict, Verdict::Permit);
        assert_eq!(d.decided_by, None);
        assert_eq!(d.actions, [Verdict::Warn("w".to_owned())]);
    }

    #[test]
    fn discard_ends_the_list_as_a_permit() {
        let d = run(&[
            ("a", Verdict::Hold("look".to_owned())),
            ("b", Verdict::Discard("gone".to_owned())),
            ("c", Verdict::Reject(reply(554))),
        ]);
        assert_eq!(d.verdict, Verdict::Permit);
        assert_eq!(d.decided_by.as_deref(), Some("b"));
        assert_eq!(
            d.actions,
            [
                Verdict::Hold("look".to_owned()),
                Verdict::Discard("gone".to_owned())
            ]
        );
        // A pending defer_if_permit still defers.
        let d = run(&[
            ("a", Verdict::DeferIfPermit(reply(450))),
            ("b", Verdict::Discard(String::new())),
        ]);
        assert_eq!(d.verdict, Verdict::Defer(reply(450)));
    }

    #[test]
    fn defer_if_permit_turns_a_later_permit_or_the_end_into_a_defer() {
        let d = run(&[
            ("a", Verdict::DeferIfPermit(reply(450))),
            ("b", Verdict::DeferIfPermit(reply(451))),
            ("c", Verdict::Permit),
        ]);
        assert_eq!(d.verdict, Verdict::Defer(reply(450)));
        assert_eq!(d.decided_by.as_deref(), Some("a"));
        let d = run(&[("a", Verdict::DeferIfPermit(reply(450)))]);
        assert_eq!(d.verdict, Verdict::Defer(reply(450)));
        assert_eq!(d.decided_by.as_deref(), Some("a"));
        // A reject is still a reject.
        let d = run(&[
            ("a", Verdict::DeferIfPermit(reply(450))),
            ("b", Verdict::Reject(reply(554))),
        ]);
        assert_eq!(d.verdict, Verdict::Reject(reply(554)));
    }

    #[test]
    fn defer_if_reject_turns_a_later_5xx_reject_into_a_defer() {
        let d = run(&[
            ("a", Verdict::DeferIfReject(reply(450))),
            ("b", Verdict::Reject(reply(554))),
        ]);
        assert_eq!(d.verdict, Verdict::Defer(reply(450)));
        assert_eq!(d.decided_by.as_deref(), Some("a"));
        // A permit, the end of the list or a 4xx reject are unchanged.
        let d = run(&[
            ("a", Verdict::DeferIfReject(reply(450))),
            ("b", Verdict::Permit),
        ]);
        assert_eq!(d.verdict, Verdict::Permit);
        assert_eq!(d.decided_by.as_deref(), Some("b"));
        assert_eq!(
            run(&[("a", Verdict::DeferIfReject(reply(450)))]),
            Decision::permit()
        );
        let d = run(&[
            ("a", Verdict::DeferIfReject(reply(450))),
            ("b", Verdict::Reject(reply(421))),
        ]);
        assert_eq!(d.verdict, Verdict::Reject(reply(421)));
    }

    #[test]
    fn hangup_ends_the_list_and_no_defer_changes_it() {
        let hangup = Reply::new(421, EnhancedCode::new(4, 7, 0), "bye");
        let d = run(&[
            ("a", Verdict::DeferIfReject(reply(450))),
            ("b", Verdict::Hangup(hangup.clone())),
            ("c", Verdict::Permit),
        ]);
        assert_eq!(d.verdict, Verdict::Hangup(hangup.clone()));
        assert_eq!(d.decided_by.as_deref(), Some("b"));
        assert!(d.hangs_up());
        assert_eq!(d.refusal(), Some(&hangup));
    }

    #[test]
    fn shadow_entries_change_nothing() {
        for v in [
            Verdict::Reject(reply(554)),
            Verdict::Permit,
            Verdict::Defer(reply(450)),
            Verdict::DeferIfPermit(reply(450)),
            Verdict::Prepend("X: y".to_owned()),
            Verdict::Hangup(reply(421)),
        ] {
            let d = run(&[("warn_if_reject a", v), ("b", Verdict::Reject(reply(550)))]);
            assert_eq!(d.verdict, Verdict::Reject(reply(550)));
            assert_eq!(d.decided_by.as_deref(), Some("b"));
            assert!(d.actions.is_empty());
        }
    }
}
