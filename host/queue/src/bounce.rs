//! Who hears about a failed delivery (Postfix's bounce(8)): the sender gets
//! a notice from `MAILER-DAEMON` with the null sender; a message that had
//! the null sender itself (a bounce that bounced) goes to the postmaster as
//! a double bounce from `double-bounce@myhostname`; and mail from
//! `double-bounce` is never reported again, so notices cannot loop.
//!
//! The notice is queued like any message, and only then is an `N` record
//! appended to the original's file. A crash in between sends a second
//! notice; a crash before sends it at the next attempt. Never none.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use postern_mail::{Address, Enqueue, Envelope, Recipient, ReversePath};

use crate::attempt::append;
use crate::dsn::{Audience, Failure, compose};
use crate::format::{QueuedMessage, notice_record};
use crate::queue::Queue;

/// Postfix's `double_bounce_sender`: mail from it is never bounced.
const DOUBLE_BOUNCE: &str = "double-bounce";

impl Queue {
    /// Queues the notice owed for the recipients of `message` that failed
    /// for good and were not reported yet, and records that it did.
    pub(crate) async fn notify(
        &self,
        message: &mut QueuedMessage,
        file: &Arc<File>,
    ) -> io::Result<()> {
        let indexes = message.unnotified_failures();
        if indexes.is_empty() {
            return Ok(());
        }
        let id = message.id.clone();
        let host = &self.settings.myhostname;
        let double_bounce = Address::new(DOUBLE_BOUNCE, host.clone());
        let notice = match &message.envelope.sender {
            ReversePath::Address(a)
                if a.local().eq_ignore_ascii_case(DOUBLE_BOUNCE) && a.domain() == host =>
            {
                None
            }
            ReversePath::Address(a) => Some((Audience::Sender, ReversePath::Null, a.clone())),
            ReversePath::Null => Some((
                Audience::Postmaster,
                ReversePath::Address(double_bounce),
                Address::new("postmaster", host.clone()),
            )),
        };
        let notice_id = match notice {
            Some((audience, sender, to)) => {
                let notice_id = self.new_id();
                let failures: Vec<Failure<'_>> = indexes
                    .iter()
                    .filter_map(|&i| {
                        let recipient = message.envelope.recipients.get(i)?;
                        Failure::of(recipient, message.statuses.get(i)?)
                    })
                    .collect();
                let content = compose(
                    host,
                    &notice_id,
                    &to.to_string(),
                    audience,
                    message,
                    &failures,
                    SystemTime::now(),
                );
                let mut envelope = Envelope::new(sender);
                envelope.recipients = vec![Recipient::new(to)];
                envelope.client_name = "localhost".to_owned();
                envelope.protocol = "LOCAL".to_owned();
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
                }
                notice_id
            }
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
        append(file, notice_record(&notice_id, &indexes)).await?;
        for i in indexes {
            if let Some(flag) = message.notified.get_mut(i) {
                *flag = true;
            }
        }
        Ok(())
    }
}
