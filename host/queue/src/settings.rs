//! The queue manager's knobs, named after Postfix's `main.cf` parameters.

use std::time::Duration;

use postern_mail::Domain;

/// How the queue schedules deliveries. `Default` gives Postfix's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// `minimal_backoff_time` (300s): the wait after a first deferral.
    /// Each further deferral doubles it.
    pub minimal_backoff_time: Duration,
    /// `maximal_backoff_time` (4000s): the longest wait between attempts.
    pub maximal_backoff_time: Duration,
    /// `maximal_queue_lifetime` (5 days): a recipient still deferred when
    /// its message is this old is given up on (`status=expired`).
    pub maximal_queue_lifetime: Duration,
    /// `bounce_queue_lifetime` (5 days): the same for a message with the
    /// null sender (a bounce), which nobody is waiting for.
    pub bounce_queue_lifetime: Duration,
    /// `delay_warning_time` (0: off, Postfix's default): a message still
    /// deferred this long after arrival gets one "Delayed Mail (still
    /// being retried)" notice to its sender, for the recipients whose DSN
    /// `NOTIFY` asks for `DELAY` or says nothing.
    pub delay_warning_time: Duration,
    /// `myhostname`: the bounce notices' `Reporting-MTA`, their
    /// `From: MAILER-DAEMON@myhostname`, and the domain of `postmaster`
    /// and `double-bounce` (Postfix's `2bounce_notice_recipient` and
    /// `double_bounce_sender`).
    pub myhostname: Domain,
    /// `queue_run_delay` (300s): how often the whole queue directory is
    /// rescanned, catching files that appeared without the scheduler
    /// hearing of them. Deferred messages are retried at their own time
    /// whatever this is.
    pub queue_run_delay: Duration,
    /// `default_process_limit` (100): deliveries in flight at once, all
    /// destinations together (Postfix's transport process limit).
    pub process_limit: usize,
    /// `default_destination_concurrency_limit` (20): deliveries in flight
    /// at once to one destination; 0: no limit but the process limit.
    /// What is left of the process limit goes to the other destinations,
    /// so a slow one cannot starve them.
    pub destination_concurrency_limit: usize,
    /// `<transport>_destination_concurrency_limit`
    /// (`smtp_destination_concurrency_limit`, ...): the limit of the
    /// destinations whose delivery key starts with `<transport>:`.
    pub transport_concurrency_limits: Vec<(String, usize)>,
    /// `qmgr_message_active_limit` (20000): messages the scheduler holds
    /// in memory; the rest of the queue stays on disk until there is room.
    pub message_active_limit: usize,
    /// `qmgr_message_recipient_limit` (20000): recipients of the messages
    /// in memory; no more messages are read in while there are this many
    /// (so it may be passed by one message's recipients).
    pub message_recipient_limit: usize,
    /// `queue_minfree` (0): bytes of the queue's file system that new
    /// mail must leave free ([`postern_mail::Enqueue::has_room`]).
    pub queue_minfree: u64,
    /// main.cf's `content_filter` (empty: none): the content filter of
    /// mail that `postern sendmail` hands over, as Postfix's pickup
    /// follows main.cf ([`crate::filter`]). SMTP services take theirs
    /// through [`crate::ContentFilter`].
    pub content_filter: Option<String>,
    /// `immediate_local_delivery` (no): store a message in the local
    /// mailboxes it is for before the SMTP server answers its DATA, and
    /// queue only what is left (`at_once`).
    pub immediate_local_delivery: bool,
}

impl Default for QueueSettings {
    fn default() -> QueueSettings {
        QueueSettings {
            minimal_backoff_time: Duration::from_secs(300),
            maximal_backoff_time: Duration::from_secs(4000),
            maximal_queue_lifetime: Duration::from_secs(5 * 24 * 3600),
            bounce_queue_lifetime: Duration::from_secs(5 * 24 * 3600),
            delay_warning_time: Duration::ZERO,
            myhostname: localhost(),
            queue_run_delay: Duration::from_secs(300),
            process_limit: 100,
            destination_concurrency_limit: 20,
            transport_concurrency_limits: Vec::new(),
            message_active_limit: 20_000,
            message_recipient_limit: 20_000,
            queue_minfree: 0,
            immediate_local_delivery: false,
            content_filter: None,
        }
    }
}

/// `localhost`, the host name when none is configured.
fn localhost() -> Domain {
    // Invariant: "localhost" is a valid domain.
    #[allow(clippy::expect_used)]
    Domain::parse("localhost").expect("localhost is a domain")
}

impl QueueSettings {
    /// The wait before the next attempt after the `deferrals`-th deferral
    /// (1 for the first): `minimal_backoff_time` doubled each time, never
    /// more than `maximal_backoff_time` (nor less than the minimum, should
    /// the two be configured the wrong way round).
    pub fn backoff(&self, deferrals: u32) -> Duration {
        let doublings = deferrals.saturating_sub(1).min(31);
        let delay = self.minimal_backoff_time.saturating_mul(1u32 << doublings);
        delay
            .min(self.maximal_backoff_time)
            .max(self.minimal_backoff_time)
    }
}

impl QueueSettings {
    /// How long a message from `null_sender` (or not) may stay queued.
    pub fn lifetime(&self, null_sender: bool) -> Duration {
        if null_sender {
            self.bounce_queue_lifetime
        } else {
            self.maximal_queue_lifetime
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_is_capped() {
        let s = QueueSettings::default();
        let secs: Vec<u64> = (1..=6).map(|n| s.backoff(n).as_secs()).collect();
        assert_eq!(secs, [300, 600, 1200, 2400, 4000, 4000]);
        assert_eq!(s.backoff(0).as_secs(), 300);
        assert_eq!(s.backoff(u32::MAX).as_secs(), 4000);
    }
}
