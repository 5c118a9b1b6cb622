//! Who hears about a failed delivery (Postfix's bounce(8)): the sender gets
//! a notice from `MAILER-DAEMON` with the null sender; a message that had
//! the null sender itself (a bounce that bounced) goes to the postmaster as
//! a double bounce from `double-bounce@myhostname`; and mail from
//! `double-bounce` is never reported again, so notices cannot loop.
//!
//! A recipient whose DSN `NOTIFY` (RFC 3461 §4.1) leaves out `FAILURE`
//! gets no bounce; one with `NOTIFY=SUCCESS` gets a success notice once
//! delivered (Postfix's "delivery status notification").
//!
//! A message still deferred `delay_warning_time` after it arrived gets one
//! delay warning (Postfix's "Delayed Mail (still being retried)", RFC 3461
//! `NOTIFY=DELAY`) for its deferred recipients that did not decline it,
//! once per message: a `W` record says it was queued.
//!
//! The notice is queued like any message, and only then is an `N` (or
//! `W`) record appended to the original's file. A crash in between sends a
//! second notice; a crash before sends it at the next attempt. Never none.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_mail::{Address, Enqueue, Envelope, Recipient, ReversePath};

use crate::attempt::append;
use crate::dsn::{Audience, Failure, compose};
use crate::format::{QueuedMessage, notice_record, warning_record};
use crate::queue::Queue;

/// Postfix's `double_bounce_sender`: mail from it is never bounced.
const DOUBLE_BOUNCE: &str = "double-bounce";

impl Queue {
    /// Queues the notices owed for `message` and records that it did: a
    /// bounce for the recipients that failed for good and were not
    /// reported yet (unless their DSN `NOTIFY` declined it), and a success
    /// notice for those delivered with `NOTIFY=SUCCESS`.
    pub(crate) async fn notify(
        &self,
        message: &mut QueuedMessage,
        file: &Arc<File>,
    ) -> io::Result<()> {
        let failures = message.unnotified_failures();
        if !failures.is_empty() {
            self.notice(message, file, &failures, false).await?;
        }
        let successes = message.unnotified_successes();
        if !successes.is_empty() {
            self.notice(message, file, &successes, true).await?;
        }
        Ok(())
    }

    /// One notice about the recipients `indexes` of `message`: failures,
    /// or deliveries when `success`.
    async fn notice(
        &self,
        message: &mut QueuedMessage,
        file: &Arc<File>,
        indexes: &[usize],
        success: bool,
    ) -> io::Result<()> {
        let id = message.id.clone();
        let host = &self.settings().myhostname;
        let double_bounce = Address::new(DOUBLE_BOUNCE, host.clone());
        let notice = match &message.envelope.sender {
            ReversePath::Address(a)
                if a.local().eq_ignore_ascii_case(DOUBLE_BOUNCE) && a.domain() == host =>
            {
                None
            }
            ReversePath::Address(a) if success => {
                Some((Audience::Success, ReversePath::Null, a.clone()))
            }
            ReversePath::Address(a) => Some((Audience::Sender, ReversePath::Null, a.clone())),
            // Nobody to tell that a bounce arrived.
            ReversePath::Null if success => None,
            ReversePath::Null => Some((
                Audience::Postmaster,
                ReversePath::Address(double_bounce),
                Address::new("postmaster", host.clone()),
            )),
        };
        let notice_id = match notice {
            Some((audience, sender, to)) => {
                let notice_id = self.new_id();
                let entries: Vec<Failure<'_>> = indexes
                    .iter()
                    .filter_map(|&i| {
                        let recipient = message.envelope.recipients.get(i)?;
                        let status = message.statuses.get(i)?;
                        let remote = message.remote.get(i).and_then(Option::as_ref);
                        if success {
                            Failure::success(recipient, status, remote)
                        } else {
                            Failure::of(recipient, status, remote)
                        }
                    })
                    .collect();
                let content = compose(
                    host,
                    &notice_id,
                    &to.to_string(),
                    audience,
                    message,
                    &entries,
                    SystemTime::now(),
                );
                let mut envelope = Envelope::new(sender);
                envelope.recipients = vec![Recipient::new(to)];
                envelope.client_name = "localhost".to_owned();
                envelope.protocol = "LOCAL".to_owned();
                // The returned message may carry UTF-8 (RFC 6533).
                envelope.smtputf8 = message.envelope.smtputf8;
                self.enqueue(notice_id.clone(), envelope, content)
                    .await
                    .map_err(io::Error::other)?;
                match audience {
                    Audience::Sender => tracing::info!(
                        target: "postern/bounce",
                        "{id}: sender non-delivery notification: {notice_id}"
                    ),
                    Audience::Postmaster => tracing::info!(
                        target: "postern/bounce",
                        "{id}: postmaster non-delivery notification: {notice_id}"
                    ),
                    Audience::Success | Audience::Delay => tracing::info!(
                        target: "postern/bounce",
                        "{id}: sender delivery status notification: {notice_id}"
                    ),
                }
                notice_id
            }
            None if success => id.clone(),
            None => {
                tracing::info!(
                    target: "postern/bounce",
                    "{id}: undeliverable mail from <{}> discarded: a double bounce is never returned",
                    message.envelope.sender
                );
                // The record names the message itself: nothing was sent.
                id.clone()
            }
        };
        append(file, notice_record(&notice_id, indexes)).await?;
        for &i in indexes {
            if let Some(flag) = message.notified.get_mut(i) {
                *flag = true;
            }
        }
        Ok(())
    }

    /// Queues the delay warning `message` owes, if it owes one: it is
    /// still deferred, `delay_warning_time` is on and has passed since it
    /// arrived, and no warning was queued before. Recipients whose
    /// `NOTIFY` leaves out `DELAY` are not in it; a warning about none,
    /// or for the null sender (nobody waits for a bounce) or
    /// `double-bounce`, is not sent, but still recorded, so the question
    /// is not asked again.
    pub(crate) async fn warn(
        &self,
        message: &mut QueuedMessage,
        file: &Arc<File>,
        now: SystemTime,
    ) -> io::Result<()> {
        let after = self.settings().delay_warning_time;
        let age = now
            .duration_since(message.envelope.arrival)
            .unwrap_or_default();
        if message.warned || after == Duration::ZERO || age < after || message.is_done() {
            return Ok(());
        }
        let id = message.id.clone();
        let host = &self.settings().myhostname;
        let delayed = message.delayed();
        let to = match &message.envelope.sender {
            ReversePath::Address(a)
                if !(a.local().eq_ignore_ascii_case(DOUBLE_BOUNCE) && a.domain() == host) =>
            {
                Some(a.clone())
            }
            _ => None,
        };
        let mut notice_id = id.clone();
        if let Some(to) = to.filter(|_| !delayed.is_empty()) {
            notice_id = self.new_id();
            let until = message.envelope.arrival
                + self
                    .settings()
                    .lifetime(message.envelope.sender == ReversePath::Null);
            let entries: Vec<Failure<'_>> = delayed
                .iter()
                .filter_map(|&i| {
                    Failure::delayed(
                        message.envelope.recipients.get(i)?,
                        message.statuses.get(i)?,
                        message.remote.get(i).and_then(Option::as_ref),
                        until,
                    )
                })
                .collect();
            let content = compose(
                host,
                &notice_id,
                &to.to_string(),
                Audience::Delay,
                message,
                &entries,
                now,
            );
            let mut envelope = Envelope::new(ReversePath::Null);
            envelope.recipients = vec![Recipient::new(to)];
            envelope.client_name = "localhost".to_owned();
            envelope.protocol = "LOCAL".to_owned();
            envelope.smtputf8 = message.envelope.smtputf8;
            self.enqueue(notice_id.clone(), envelope, content)
                .await
                .map_err(io::Error::other)?;
            tracing::info!(
                target: "postern/bounce",
                "{id}: sender delay notification: {notice_id}"
            );
        }
        append(file, warning_record(&notice_id)).await?;
        message.warned = true;
        Ok(())
    }
}
