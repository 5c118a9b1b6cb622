//! Content filters (Postfix's FILTER_README, "after-queue" filtering): a
//! message with a content filter goes, all its recipients in one
//! delivery, to that `transport:destination` (such as
//! `smtp:[127.0.0.1]:10025`, an amavis-style filter) instead of to each
//! recipient's own destination; the filter re-injects it on a service
//! without one, and from there it goes its normal way.
//!
//! The filter is the envelope's [`Envelope::content_filter`], written in
//! the queue file (`filter` record), so that a restart keeps the route. It
//! comes from a policy FILTER action (the SMTP session sets it) or else
//! from `content_filter`: per service through [`ContentFilter`], which the
//! server wraps around the queue for each SMTP service as master.cf's `-o
//! content_filter=...` does, and for `postern sendmail` mail from
//! [`crate::QueueSettings::content_filter`], as Postfix's pickup follows
//! main.cf. Bounce notices and mail forwarded by local delivery are not
//! filtered.
//!
//! The delivery agent reads the filter from the envelope and chooses the
//! transport (`postern_delivery::Router`); the queue only keeps the
//! recipients together: they share one destination key, the filter.

use std::sync::Arc;

use postern_mail::{BoxFuture, Deliver, Enqueue, EnqueueError, Envelope, QueueId, Recipient};

/// The queue as one SMTP service hands it messages: those without a
/// FILTER verdict get the service's `content_filter`.
pub struct ContentFilter {
    queue: Arc<dyn Enqueue>,
    /// `transport:destination`, as the config checked it.
    filter: String,
}

impl ContentFilter {
    /// `queue` as a service whose `content_filter` is `filter` sees it; the
    /// queue itself when the service has none (empty), so that mail a
    /// filter re-injects goes its normal way.
    pub fn wrap(queue: Arc<dyn Enqueue>, filter: Option<&str>) -> Arc<dyn Enqueue> {
        match filter.map(str::trim).filter(|f| !f.is_empty()) {
            Some(filter) => Arc::new(ContentFilter {
                queue,
                filter: filter.to_owned(),
            }),
            None => queue,
        }
    }
}

impl std::fmt::Debug for ContentFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentFilter")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Enqueue for ContentFilter {
    fn new_id(&self) -> QueueId {
        self.queue.new_id()
    }

    fn enqueue<'a>(
        &'a self,
        id: QueueId,
        mut envelope: Envelope,
        content: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), EnqueueError>> {
        // A FILTER action overrides the service's filter, as in Postfix.
        if envelope.content_filter.is_none() {
            envelope.content_filter = Some(self.filter.clone());
        }
        self.queue.enqueue(id, envelope, content)
    }

    fn flush(&self) {
        self.queue.flush();
    }

    fn has_room(&self, size: u64) -> bool {
        self.queue.has_room(size)
    }
}

/// Which recipients of a message share one delivery: with a content
/// filter, all of them (the filter is the key, `smtp:[127.0.0.1]:10025`,
/// so its transport's concurrency limit applies); otherwise the agent's
/// [`Deliver::destination`].
pub(crate) fn destination(
    agent: &dyn Deliver,
    envelope: &Envelope,
    recipient: &Recipient,
) -> Option<String> {
    match &envelope.content_filter {
        Some(filter) => Some(filter.clone()),
        None => agent.destination(recipient),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Queue;
    use crate::testing::envelope;

    #[tokio::test]
    async fn a_service_filter_fills_in_only_what_policy_left_empty() {
        let dir = tempfile::tempdir().unwrap();
        let q = Arc::new(Queue::open(dir.path()).unwrap());
        let queue: Arc<dyn Enqueue> = q.clone();
        let filtered = ContentFilter::wrap(queue.clone(), Some("smtp:[127.0.0.1]:10025"));
        let id = filtered.new_id();
        filtered
            .enqueue(id.clone(), envelope(&["a@x.org"]), b"x".to_vec())
            .await
            .unwrap();
        let m = q.read(&id).unwrap().1;
        assert_eq!(
            m.envelope.content_filter.as_deref(),
            Some("smtp:[127.0.0.1]:10025")
        );
        let mut env = envelope(&["a@x.org"]);
        env.content_filter = Some("smtp:[127.0.0.1]:10026".to_owned());
        let id = filtered.new_id();
        filtered
            .enqueue(id.clone(), env, b"x".to_vec())
            .await
            .unwrap();
        let m = q.read(&id).unwrap().1;
        assert_eq!(
            m.envelope.content_filter.as_deref(),
            Some("smtp:[127.0.0.1]:10026")
        );
        // `content_filter = ""` (the re-injection service): no filter.
        let plain = ContentFilter::wrap(queue, Some(" "));
        let id = plain.new_id();
        plain
            .enqueue(id.clone(), envelope(&["a@x.org"]), b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(q.read(&id).unwrap().1.envelope.content_filter, None);
    }
}
