//! The queue itself: opening the directory, and the scheduler's memory of
//! which message is due when.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use postern_mail::QueueId;
use tokio::sync::Notify;

use crate::at_once::AtOnce;
use crate::attempt::Loaded;
use crate::error::QueueError;
use crate::recovery::recover;
use crate::settings::QueueSettings;
use crate::spool::Spool;

/// The durable mail queue: one directory of one file per message, and the
/// delivery loop over it ([`Queue::run`]).
///
/// The SMTP server writes into it through [`postern_mail::Enqueue`]; the
/// delivery loop hands each recipient to a [`postern_mail::Deliver`] agent
/// and records the outcome in the message's file, so a restart resumes
/// where the last run stopped. One daemon runs the loop over a queue
/// directory; other processes may enqueue into it (queue ids carry the pid).
#[derive(Debug)]
pub struct Queue {
    pub(crate) spool: Spool,
    /// Swapped whole by [`Queue::reload_settings`]; read where used.
    pub(crate) settings: ArcSwap<QueueSettings>,
    /// Wakes the delivery loop: a message was queued.
    pub(crate) wake: Notify,
    /// Set by [`Queue::flush`]: rescan and try everything now.
    pub(crate) flush_requested: AtomicBool,
    pub(crate) schedule: Mutex<Schedule>,
    /// The agent of `immediate_local_delivery`, once the loop runs.
    pub(crate) at_once: AtOnce,
}

impl Queue {
    /// Opens (creating as needed) the queue directory `dir` with Postfix's
    /// default settings. See [`Queue::open_with`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Queue, QueueError> {
        Queue::open_with(dir, QueueSettings::default())
    }

    /// Opens (creating as needed) the queue directory `dir` and recovers
    /// whatever state a crash left: files in `incoming/` were never
    /// acknowledged and are deleted; every file in `active/`, `deferred/`
    /// and `hold/` is parsed, and one that does not parse is moved to
    /// `corrupt/` (never delivered); a message whose recipients are all
    /// done is removed; a torn last status record is cut off. Each of these
    /// is logged. Blocking: call it at start-up, or on a blocking thread.
    pub fn open_with(dir: impl AsRef<Path>, settings: QueueSettings) -> Result<Queue, QueueError> {
        let spool = Spool::create(dir.as_ref())?;
        recover(&spool)?;
        Ok(Queue {
            spool,
            settings: ArcSwap::from_pointee(settings),
            wake: Notify::new(),
            flush_requested: AtomicBool::new(false),
            schedule: Mutex::new(Schedule::default()),
            at_once: AtOnce::default(),
        })
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        self.spool.root()
    }

    /// The scheduling settings in force.
    pub fn settings(&self) -> Arc<QueueSettings> {
        self.settings.load_full()
    }

    /// Puts the settings of a reloaded config in force for everything
    /// the queue reads when it uses it, as `postfix reload` does: the
    /// backoff times, `maximal_queue_lifetime`, `bounce_queue_lifetime`,
    /// `delay_warning_time`, `queue_run_delay` (from the next scan on)
    /// and `queue_minfree`. The rest of `settings` is left as it was at
    /// start: the limits the delivery loop sized itself by
    /// (`default_process_limit`, the concurrency limits, the active
    /// queue's), and `myhostname`, `content_filter` and
    /// `immediate_local_delivery`, which other parts of the server read
    /// once too; those take a restart.
    pub fn reload_settings(&self, settings: &QueueSettings) {
        self.settings.rcu(|now| QueueSettings {
            minimal_backoff_time: settings.minimal_backoff_time,
            maximal_backoff_time: settings.maximal_backoff_time,
            maximal_queue_lifetime: settings.maximal_queue_lifetime,
            bounce_queue_lifetime: settings.bounce_queue_lifetime,
            delay_warning_time: settings.delay_warning_time,
            queue_run_delay: settings.queue_run_delay,
            queue_minfree: settings.queue_minfree,
            ..QueueSettings::clone(now)
        });
    }

    pub(crate) fn schedule(&self) -> MutexGuard<'_, Schedule> {
        // The schedule is a few collections updated in single calls; a
        // panic elsewhere cannot leave it half changed.
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which messages the delivery loop is responsible for, and in what state,
/// by queue id: the scheduler's memory of what is on disk. The messages
/// it has read in are in [`crate::active::Active`].
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// New mail in `active/` (just queued, or found by a scan), not read
    /// in yet, oldest first (Postfix's incoming queue).
    incoming: VecDeque<QueueId>,
    /// Deferred mail whose time came, back in `active/`, not read in yet.
    retries: VecDeque<QueueId>,
    /// Whether the next message read in is a retry: qmgr alternates
    /// between new and deferred mail, so that neither a flood of new
    /// mail nor a flood of retries (after an outage, a flush) delays the
    /// other.
    retry_next: bool,
    /// Every message that is waiting to be read in, in memory, being
    /// delivered, or parked in `waiting`: a scan never starts a second
    /// delivery of one of them.
    known: HashSet<QueueId>,
    /// Deferred messages by next attempt time.
    waiting: BTreeSet<(SystemTime, QueueId)>,
    /// New mail in `incoming` as its session wrote it, so that reading it
    /// in costs no read and no parse of the file just written; at most
    /// [`HANDED_BUDGET`] bytes of it ([`Loaded::weight`]), the rest is read
    /// from disk as before.
    handed: HashMap<QueueId, Loaded>,
    /// The weight of `handed`.
    handed_weight: usize,
}

/// The most message bytes the schedule keeps for new mail waiting to be
/// read in. Past it, waiting mail costs its queue id only, however far
/// delivery falls behind.
pub(crate) const HANDED_BUDGET: usize = 16 << 20;

impl Schedule {
    /// Takes charge of a message found in `active/`; false if already known.
    pub fn admit(&mut self, id: QueueId) -> bool {
        if self.known.insert(id.clone()) {
            self.incoming.push_back(id);
            true
        } else {
            false
        }
    }

    /// [`Schedule::admit`] of a message just written to `active/`, with
    /// the file as written, kept for its reading in while the budget
    /// allows.
    pub fn admit_handed(&mut self, id: QueueId, loaded: Loaded) {
        let weight = loaded.weight();
        let keep = self.handed_weight + weight <= HANDED_BUDGET;
        if self.admit(id.clone()) && keep {
            self.handed_weight += weight;
            self.handed.insert(id, loaded);
        }
    }

    /// The file of `id` as its session wrote it, if kept; taken once.
    pub fn take_handed(&mut self, id: &QueueId) -> Option<Loaded> {
        let loaded = self.handed.remove(id)?;
        self.handed_weight -= loaded.weight();
        Some(loaded)
    }

    /// Takes charge of a message found in `deferred/`, due at `at`.
    pub fn admit_waiting(&mut self, id: QueueId, at: SystemTime) {
        if self.known.insert(id.clone()) {
            self.waiting.insert((at, id));
        }
    }

    /// Puts a known message, back from `deferred/`, in line for delivery.
    pub fn requeue(&mut self, id: QueueId) {
        self.retries.push_back(id);
    }

    /// Parks a known message until `at`.
    pub fn park(&mut self, id: QueueId, at: SystemTime) {
        self.waiting.insert((at, id));
    }

    /// Drops a message that left the queue.
    pub fn forget(&mut self, id: &QueueId) {
        self.known.remove(id);
        self.take_handed(id);
    }

    /// The next message to read in: new and deferred mail in turn while
    /// there are both.
    pub fn pop_ready(&mut self) -> Option<QueueId> {
        let retry = if self.incoming.is_empty() {
            true
        } else if self.retries.is_empty() {
            false
        } else {
            self.retry_next
        };
        self.retry_next = !retry;
        if retry {
            self.retries.pop_front()
        } else {
            self.incoming.pop_front()
        }
    }

    /// Messages on disk not read in yet: waiting for a slot in memory or
    /// for their next attempt time.
    pub fn on_disk(&self) -> usize {
        self.incoming.len() + self.retries.len() + self.waiting.len()
    }

    /// The parked messages due by `now`, removed from `waiting`.
    pub fn take_due(&mut self, now: SystemTime) -> Vec<QueueId> {
        let mut due = Vec::new();
        while let Some(first) = self.waiting.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, id)) = self.waiting.pop_first() {
                due.push(id);
            }
        }
        due
    }

    /// Every parked message, due or not (a flush).
    pub fn take_all(&mut self) -> Vec<QueueId> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    }

    /// When the earliest parked message is due.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.waiting.first().map(|(at, _)| *at)
    }
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("queue file task failed: {e}"))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use postern_mail::Enqueue;

    use super::*;

    /// A reload changes what the queue reads when it uses it, and leaves
    /// what the delivery loop sized itself by at start.
    #[test]
    fn a_reload_replaces_the_timers_and_keeps_the_limits() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let start = QueueSettings {
            process_limit: 7,
            ..QueueSettings::default()
        };
        let queue = Queue::open_with(dir.path(), start.clone()).unwrap();
        let reloaded = QueueSettings {
            maximal_queue_lifetime: Duration::ZERO,
            bounce_queue_lifetime: Duration::from_secs(60),
            minimal_backoff_time: Duration::from_secs(1),
            maximal_backoff_time: Duration::from_secs(2),
            delay_warning_time: Duration::from_secs(3),
            queue_run_delay: Duration::from_secs(4),
            queue_minfree: 5,
            process_limit: 99,
            message_active_limit: 3,
            immediate_local_delivery: !start.immediate_local_delivery,
            ..QueueSettings::default()
        };
        queue.reload_settings(&reloaded);
        let now = queue.settings();
        assert_eq!(
            *now,
            QueueSettings {
                process_limit: 7,
                message_active_limit: start.message_active_limit,
                immediate_local_delivery: start.immediate_local_delivery,
                ..reloaded
            }
        );
    }

    #[test]
    fn ids_unique_across_instances() {
        let dir = tempfile::tempdir().unwrap();
        let a = Queue::open(dir.path()).unwrap();
        let b = Queue::open(dir.path()).unwrap();
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            assert!(seen.insert(a.new_id()));
            assert!(seen.insert(b.new_id()));
        }
        assert_eq!(seen.len(), 10_000);
    }

    #[test]
    fn open_creates_private_queues() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        Queue::open(&root).unwrap();
        for q in ["incoming", "active", "deferred", "hold", "corrupt"] {
            let mode = std::fs::metadata(root.join(q))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{q}");
        }
    }

    #[test]
    fn schedule_never_admits_twice() {
        let mut s = Schedule::default();
        let id = QueueId::parse("ABCDEF123456").unwrap();
        assert!(s.admit(id.clone()));
        assert!(!s.admit(id.clone()));
        s.admit_waiting(id.clone(), SystemTime::UNIX_EPOCH);
        assert_eq!(s.take_due(SystemTime::now()), Vec::<QueueId>::new());
        assert_eq!(s.pop_ready(), Some(id.clone()));
        s.park(id.clone(), SystemTime::UNIX_EPOCH);
        assert_eq!(s.next_due(), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(s.take_due(SystemTime::now()), vec![id.clone()]);
        s.forget(&id);
        assert!(s.admit(id));
    }

    #[test]
    fn handed_mail_is_kept_within_its_budget_and_taken_once() {
        use crate::format::QueuedMessage;
        use crate::testing::envelope;
        let mut s = Schedule::default();
        let loaded = |id: &QueueId, size: usize| Loaded {
            message: QueuedMessage::fresh(id.clone(), envelope(&["a@b.example"]), vec![b'x'; size]),
            len: size as u64,
        };
        let big = HANDED_BUDGET / 2;
        let ids: Vec<QueueId> = (0..3)
            .map(|n| QueueId::parse(&format!("ABCDEF{n:06}")).unwrap())
            .collect();
        for id in &ids {
            s.admit_handed(id.clone(), loaded(id, big));
        }
        // All three are in line; only what fits the budget is kept.
        assert_eq!(s.on_disk(), 3);
        assert!(s.take_handed(&ids[0]).is_some());
        assert!(s.take_handed(&ids[0]).is_none(), "taken once");
        assert!(s.take_handed(&ids[2]).is_none(), "over the budget");
        // A message that leaves gives its room back.
        s.forget(&ids[1]);
        assert_eq!(s.handed_weight, 0);
        // Known already (a scan was first): nothing kept.
        s.admit_handed(ids[2].clone(), loaded(&ids[2], 1));
        assert!(s.take_handed(&ids[2]).is_none());
    }

    #[test]
    fn new_and_deferred_mail_take_turns() {
        let mut s = Schedule::default();
        let ids: Vec<QueueId> = (0..6)
            .map(|n| QueueId::parse(&format!("ABCDEF{n:06}")).unwrap())
            .collect();
        // A flood of retries (a flush after an outage), then new mail.
        for id in &ids[..4] {
            s.admit_waiting(id.clone(), SystemTime::UNIX_EPOCH);
        }
        for id in s.take_due(SystemTime::now()) {
            s.requeue(id);
        }
        for id in &ids[4..] {
            assert!(s.admit(id.clone()));
        }
        assert_eq!(s.on_disk(), 6);
        let order: Vec<QueueId> = std::iter::from_fn(|| s.pop_ready()).collect();
        // The new messages are not held back behind the four retries.
        assert_eq!(
            order,
            [&ids[4], &ids[0], &ids[5], &ids[1], &ids[2], &ids[3]].map(Clone::clone)
        );
    }
}
