//! The delivery loop (Postfix's qmgr): reads messages from `active/` into
//! memory as far as the memory limits allow, starts deliveries by
//! destination within the concurrency limits ([`crate::active`]), parks
//! deferred messages until their next attempt, and brings them back.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use postern_mail::{Deliver, QueueId};
use tokio::sync::watch;
use tokio::task::{self, JoinError, JoinSet};
use tokio::time::Instant;

use crate::active::{Active, Job, Limits};
use crate::attempt::{Outcome, attempt, entries, read_in};
use crate::queue::{Queue, blocking};
use crate::spool::{QueueName, Spool};

/// The most messages read in from disk in one go: the loop goes back to
/// starting deliveries (and hearing of finished ones) in between.
const READ_IN_BATCH: usize = 256;

impl Queue {
    /// Runs the delivery loop until `shutdown` turns `true` (or its sender
    /// is dropped). Delivers every message of `active/` through `agent`,
    /// at most `default_process_limit` deliveries at once and at most a
    /// destination's concurrency limit to each destination, holding at
    /// most `qmgr_message_active_limit` messages in memory, and retries
    /// deferred ones with exponential backoff. Messages in `hold/` are
    /// left alone. On shutdown no new delivery starts, and the ones in
    /// progress are finished (and recorded) before this returns.
    pub async fn run(
        self: Arc<Self>,
        agent: Arc<dyn Deliver>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if self.settings().immediate_local_delivery {
            self.at_once.set(Arc::clone(&agent));
        }
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut running: HashMap<task::Id, Job> = HashMap::new();
        let mut active = Active::new(self.limits());
        let mut next_scan = Instant::now();
        let mut was_full = false;
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            let flush = self.flush_requested.swap(false, Ordering::SeqCst);
            if flush || Instant::now() >= next_scan {
                self.scan().await;
                next_scan = Instant::now() + self.settings().queue_run_delay;
            }
            self.promote_due(flush).await;
            let more = self.fill(&agent, &mut active, &mut was_full).await;
            while let Some(mut job) = active.next_job() {
                let run = attempt(
                    Arc::clone(&self),
                    Arc::clone(&agent),
                    job.id.clone(),
                    job.recipients.clone(),
                    job.last,
                    job.loaded.take(),
                );
                running.insert(tasks.spawn(run).id(), job);
            }
            let wake_at = match self.schedule().next_due() {
                Some(due) => next_scan.min(instant_of(due)),
                None => next_scan,
            };
            if more {
                // Room in memory and messages on disk: read on after
                // starting what can start.
                task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    self.settle(&mut running, &mut active, done);
                }
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        while let Some(done) = tasks.join_next_with_id().await {
            self.settle(&mut running, &mut active, done);
        }
    }

    /// The active queue's limits from the settings.
    fn limits(&self) -> Limits {
        let s = self.settings();
        Limits {
            process: s.process_limit,
            messages: s.message_active_limit,
            recipients: s.message_recipient_limit,
            destination: s.destination_concurrency_limit,
            transports: s.transport_concurrency_limits.clone(),
        }
    }

    /// Reads messages waiting on disk into `active` while it has room,
    /// at most [`READ_IN_BATCH`]; true if it could take more now. Logs
    /// what is in memory when this fills it (`was_full`: that was said
    /// and it has not drained to half since).
    async fn fill(
        &self,
        agent: &Arc<dyn Deliver>,
        active: &mut Active,
        was_full: &mut bool,
    ) -> bool {
        // Reported again only once it has drained to half: a full queue
        // that takes one message in as each one leaves says so once.
        if active.messages() * 2 <= self.settings().message_active_limit
            && active.recipients() * 2 <= self.settings().message_recipient_limit
        {
            *was_full = false;
        }
        let room = active.room().min(READ_IN_BATCH);
        let (ids, handed) = {
            let mut schedule = self.schedule();
            let mut ids = Vec::new();
            let mut handed = Vec::new();
            while ids.len() + handed.len() < room {
                let Some(id) = schedule.pop_ready() else {
                    break;
                };
                match schedule.take_handed(&id) {
                    Some(loaded) => handed.push((id, loaded)),
                    None => ids.push(id),
                }
            }
            (ids, handed)
        };
        if ids.is_empty() && handed.is_empty() {
            return false;
        }
        let count = ids.len() + handed.len();
        for (id, loaded) in handed {
            // Written by this daemon a moment ago: the first delivery's
            // reopen still checks that the file is there and unchanged.
            let entries = entries(agent.as_ref(), &loaded.message);
            active.admit(id, entries, Some(loaded));
        }
        let spool = self.spool.clone();
        let reader = Arc::clone(agent);
        let taken = ids.clone();
        let read = if taken.is_empty() {
            Vec::new()
        } else {
            blocking(move || {
                Ok(ids
                    .into_iter()
                    .map(|id| {
                        let entries = read_in(&spool, reader.as_ref(), &id);
                        (id, entries)
                    })
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap_or_else(|e| {
                // The reading thread failed: try these again later.
                taken
                    .into_iter()
                    .map(|id| (id, Err(io::Error::other(e.to_string()))))
                    .collect()
            })
        };
        for (id, entries) in read {
            match entries {
                Ok(Some((entries, loaded))) => active.admit(id, entries, Some(loaded)),
                Ok(None) => self.schedule().forget(&id),
                Err(e) => {
                    tracing::warn!(target: "postern/qmgr", "{id}: cannot read queue file: {e}");
                    let at = SystemTime::now() + self.settings().minimal_backoff_time;
                    self.schedule().park(id, at);
                }
            }
        }
        let full = active.room() == 0;
        let on_disk = self.schedule().on_disk();
        // Formatted only when logged: this runs for nearly every message.
        let line = || {
            format!(
                "active queue: {} messages (limit {}), {} recipients (limit {}) in memory; {on_disk} more on disk",
                active.messages(),
                self.settings().message_active_limit,
                active.recipients(),
                self.settings().message_recipient_limit,
            )
        };
        // Once each time it fills up, for the operator (and the tests):
        // messages only come into memory here, so this is the high-water
        // mark.
        if full && !*was_full {
            *was_full = true;
            tracing::info!(target: "postern/qmgr", "{}", line());
        } else {
            tracing::debug!(target: "postern/qmgr", "{}", line());
        }
        !full && count == room && on_disk > 0
    }

    /// Tries every message now, deferred ones included, and picks up
    /// messages other processes left in `active/` (Postfix's `postqueue
    /// -f`, `postern flush`). Takes effect in the running [`Queue::run`].
    pub fn flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Records how a delivery task ended.
    fn settle(
        &self,
        running: &mut HashMap<task::Id, Job>,
        active: &mut Active,
        done: Result<(task::Id, Outcome), JoinError>,
    ) {
        let (task_id, outcome) = match done {
            Ok((task_id, outcome)) => (task_id, Some(outcome)),
            Err(e) => (e.id(), None),
        };
        let Some(job) = running.remove(&task_id) else {
            return;
        };
        active.release(&job, matches!(outcome, Some(Outcome::Partial)));
        let id = job.id;
        let mut schedule = self.schedule();
        match outcome {
            Some(Outcome::Partial) => {}
            Some(Outcome::Done | Outcome::Dropped) => schedule.forget(&id),
            Some(Outcome::Deferred(at) | Outcome::Retry(at)) => schedule.park(id, at),
            None => {
                // The agent panicked. The file is still in active/; what
                // was recorded stands. Try again later, not in a loop.
                tracing::error!(target: "postern/qmgr", "{id}: delivery task failed; retrying later");
                schedule.park(id, SystemTime::now() + self.settings().minimal_backoff_time);
            }
        }
    }

    /// Takes charge of messages in `active/` and `deferred/` the loop does
    /// not know yet: everything at start-up, strays later.
    async fn scan(&self) {
        let spool = self.spool.clone();
        match blocking(move || list_ids(&spool)).await {
            Ok((active, deferred)) => {
                let mut schedule = self.schedule();
                for id in active {
                    schedule.admit(id);
                }
                for (id, due) in deferred {
                    schedule.admit_waiting(id, due);
                }
            }
            Err(e) => {
                tracing::warn!(target: "postern/qmgr", "{}: cannot scan: {e}", self.dir().display())
            }
        }
    }

    /// Moves the deferred messages whose time has come (all of them for a
    /// flush) back to `active/`.
    async fn promote_due(&self, all: bool) {
        let due = if all {
            self.schedule().take_all()
        } else {
            self.schedule().take_due(SystemTime::now())
        };
        if due.is_empty() {
            return;
        }
        let spool = self.spool.clone();
        let moved = blocking(move || {
            Ok(due
                .into_iter()
                .map(|id| {
                    let result = reactivate(&spool, &id);
                    (id, result)
                })
                .collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
        let mut schedule = self.schedule();
        for (id, result) in moved {
            match result {
                Ok(true) => schedule.requeue(id),
                Ok(false) => schedule.forget(&id),
                Err(e) => {
                    tracing::warn!(target: "postern/qmgr", "{id}: cannot move to active: {e}");
                    schedule.park(id, SystemTime::now() + self.settings().minimal_backoff_time);
                }
            }
        }
    }
}

/// Moves `deferred/ID` to `active/`. `Ok(false)` if the message is in
/// neither any more (deleted by the operator); `Ok(true)` if it is in
/// `active/` now (or already was, after a failed update).
fn reactivate(spool: &Spool, id: &QueueId) -> io::Result<bool> {
    match spool.move_to(id, QueueName::Deferred, QueueName::Active) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Ok(spool.path(QueueName::Active, id).exists())
        }
        Err(e) => Err(e),
    }
}

/// The messages of `active/` (oldest id first) and of `deferred/` with
/// their next attempt time (the file's mtime). Streams the directories
/// rather than collecting their entries first: with 100,000 messages
/// queued, a scan then needs the ids and nothing more (bench/README.md).
#[allow(clippy::type_complexity)]
fn list_ids(spool: &Spool) -> io::Result<(Vec<QueueId>, Vec<(QueueId, SystemTime)>)> {
    let mut active: Vec<QueueId> = queue_files(spool, QueueName::Active, |_| ())?
        .into_iter()
        .map(|(id, ())| id)
        .collect();
    active.sort();
    let deferred = queue_files(spool, QueueName::Deferred, |entry| {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now())
    })?;
    Ok((active, deferred))
}

/// The queue files of `q` by id, each with what `about` says of it.
fn queue_files<T>(
    spool: &Spool,
    q: QueueName,
    about: impl Fn(&std::fs::DirEntry) -> T,
) -> io::Result<Vec<(QueueId, T)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(spool.dir(q))? {
        let entry = entry?;
        let Some(id) = entry.file_name().to_str().and_then(QueueId::parse) else {
            continue;
        };
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let what = about(&entry);
            out.push((id, what));
        }
    }
    Ok(out)
}

/// The tokio instant at which wall-clock `at` is reached.
fn instant_of(at: SystemTime) -> Instant {
    Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
}
