//! Immediate local delivery (`immediate_local_delivery = yes`, off by
//! default): a recipient whose whole delivery is one store into a local
//! mailbox gets the message in that mailbox before the SMTP server answers
//! the DATA, and only the recipients left over go into a queue file. A
//! message for local mailboxes alone then costs one file instead of two
//! (the queue file and the mailbox's): what Dovecot's LMTP does for the
//! MTA in front of it, done here for the MTA's own local mail.
//!
//! What stays as with the queue: nothing is acknowledged before it is on
//! disk. An agent answers `Sent` only once the mailbox file is synced, and
//! the leftovers' queue file is committed before the 250 as any other. A
//! crash between the two leaves the delivered copies and no 250, so the
//! client sends again and those mailboxes get a duplicate: the same
//! window as a crash between the queue commit and the 250.
//!
//! What goes to the queue as usual, untouched here: a held message, one
//! with a content filter, a recipient that asks for a success notice
//! (NOTIFY=SUCCESS: the notice is the queue's work), and everything the
//! agent does not take at once ([`Deliver::deliver_at_once`]: an alias, a
//! `.forward`, `mailbox_command`, another transport). A recipient whose
//! store fails, for now or for good, is queued too: the delivery loop
//! tries it again at once and defers or bounces it with the usual notice.
//!
//! The client waits for the stores before its reply: milliseconds for a
//! Maildir, and at most a second for the locks of an mbox another process
//! holds (then that recipient is queued, and the queue waits Postfix's
//! 20 s for them), well inside the 10 minutes RFC 5321 §4.5.3.2.6 gives a
//! client to wait after the final dot.
//!
//! The log keeps Postfix's shape and order: the `from=` line first (its
//! note says `(immediate delivery)` instead of `(queue active)`), then a
//! `to=` line per recipient delivered, then `removed`, or the count queued.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use postern_mail::{Deliver, Envelope, QueueId, Recipient};

use crate::maillog::{Delays, report};
use crate::queue::Queue;
use crate::status::RecipientStatus;

/// The agent that delivers at once: the delivery loop's, handed over when
/// the loop starts ([`Queue::run`]) with the setting on. Unset before that,
/// and then every message is queued.
#[derive(Default)]
pub(crate) struct AtOnce(OnceLock<Arc<dyn Deliver>>);

impl fmt::Debug for AtOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AtOnce")
            .field(&self.0.get().is_some())
            .finish()
    }
}

impl AtOnce {
    /// Delivers at once through `agent` from now on (the first call wins).
    pub(crate) fn set(&self, agent: Arc<dyn Deliver>) {
        let _ = self.0.set(agent);
    }
}

impl Queue {
    /// The agent to try `envelope`'s recipients with before queueing, if
    /// any: none for a held message or one bound for a content filter.
    pub(crate) fn at_once_agent(&self, envelope: &Envelope) -> Option<Arc<dyn Deliver>> {
        if envelope.hold || envelope.content_filter.is_some() {
            return None;
        }
        self.at_once.0.get().cloned()
    }

    /// Offers each recipient of `envelope` to `agent` at once, logs the
    /// ones it delivered, and returns the others, in order, for the queue.
    pub(crate) async fn deliver_at_once(
        &self,
        agent: &dyn Deliver,
        id: &QueueId,
        envelope: &Envelope,
        content: &[u8],
    ) -> Vec<Recipient> {
        let active = SystemTime::now();
        let mut left = Vec::new();
        for recipient in &envelope.recipients {
            if recipient.notify_success() {
                outcome("queued");
                left.push(recipient.clone());
                continue;
            }
            let start = SystemTime::now();
            let Some(answer) = agent.deliver_at_once(envelope, recipient, content).await else {
                outcome("queued");
                left.push(recipient.clone());
                continue;
            };
            let status = RecipientStatus::from(answer.status);
            if !matches!(status, RecipientStatus::Sent { .. }) {
                outcome("failed");
                // Logged once, by the delivery loop's attempt of it.
                tracing::debug!(
                    target: "postern/qmgr",
                    "{id}: to=<{}> not delivered at once ({}), queued",
                    recipient.address,
                    status.word()
                );
                left.push(recipient.clone());
                continue;
            }
            outcome("delivered");
            let delays = Delays {
                arrival: envelope.arrival,
                active,
                start,
                end: SystemTime::now(),
            };
            report(answer.agent, id, recipient, &answer.relay, &delays, &status);
        }
        left
    }
}

/// Counts one recipient of immediate delivery by what became of it:
/// `delivered` at once, `failed` at once (then queued), or `queued`
/// without a try.
fn outcome(what: &'static str) {
    metrics::counter!("postern_queue_immediate_total", "outcome" => what).increment(1);
}
