//! Instances that serve more than one transaction, as Postfix's policy
//! servers do.
//!
//! A transaction's instances are kept in [`Instances`] (a session's, or a
//! single check's) and dropped with it. A plugin whose `init` called
//! `host.reuse-instances` (wit/policy.wit) keeps nothing from one
//! transaction to the next, so an instance of it that ended its
//! transaction in good health goes back to its entry's [`Idle`] list
//! instead, and the next transaction to need that entry takes it from
//! there: a `check` call instead of an instantiation, an `init` and the
//! release of a pool slot (bench/README.md, "Instances that serve more
//! than one transaction", has the figures).
//!
//! The bounds are Postfix's for its daemons (master(5) `max_use`): an
//! instance serves at most [`crate::Limits::max_use`] transactions, then
//! is dropped and the next one starts afresh, so that whatever a plugin
//! leaks, in memory or in state it should not have kept, is bounded. An
//! instance that failed in any way, or whose guest still holds a message
//! handle, never goes back. Idle instances belong to the snapshot's
//! entries, so a reload starts every plugin afresh. At most [`IDLE_MAX`]
//! wait per entry, and at most half the instance pool's slots in the
//! whole runtime ([`IdleBudget`]): the ones beyond are dropped, giving
//! their pool slots back, so that idle instances of many entries never
//! push the transactions in flight out of the pool. An instance idle for
//! longer than [`crate::Limits::max_idle`] (Postfix's `max_idle`, 100 s)
//! is dropped by the runtime's sweeper thread, so that the instances of a
//! burst (a Python plugin's hold its interpreter, tens of MiB) do not
//! stay for good once it is over.
//!
//! Not here: which transaction an instance serves (that is
//! `crate::snapshot`'s pinning) and how a call runs (`crate::plugin`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::plugin::Live;

/// The most instances one entry keeps idle: enough for the transactions
/// of a busy 2-core server at once (each holds its instances from its
/// first check to its end), few enough that a handful of entries leave
/// most of the instance pool ([`crate::Pool`]) free for the rest.
pub(crate) const IDLE_MAX: usize = 16;

/// How often the sweeper looks for instances idle past their `max_idle`:
/// an instance goes within a second of its time.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How many instances may wait idle in one runtime, every entry of every
/// snapshot together: half the instance pool's slots (at least
/// [`IDLE_MAX`]), the other half left to the transactions in flight. It
/// also knows every idle list, for the sweeper.
#[derive(Debug)]
pub(crate) struct IdleBudget {
    waiting: AtomicUsize,
    max: usize,
    /// Every entry's idle list while its snapshot lives.
    lists: Mutex<Vec<Weak<Idle>>>,
}

impl IdleBudget {
    /// The budget of a runtime whose pool holds `pool_instances`, and its
    /// sweeper thread, which holds it weakly and ends within a second of
    /// the runtime.
    pub(crate) fn start(pool_instances: u32) -> std::io::Result<Arc<IdleBudget>> {
        let half = usize::try_from(pool_instances / 2).unwrap_or(usize::MAX);
        let budget = Arc::new(IdleBudget {
            waiting: AtomicUsize::new(0),
            max: half.max(IDLE_MAX),
            lists: Mutex::default(),
        });
        let weak = Arc::downgrade(&budget);
        thread::Builder::new()
            .name("postern-policy-idle".to_owned())
            .spawn(move || {
                loop {
                    thread::sleep(SWEEP_EVERY);
                    let Some(budget) = weak.upgrade() else {
                        break;
                    };
                    budget.sweep(Instant::now());
                }
            })?;
        Ok(budget)
    }

    /// A new idle list under this budget, whose instances go after
    /// `max_idle` unused.
    pub(crate) fn list(self: &Arc<Self>, max_idle: Duration) -> Arc<Idle> {
        let idle = Arc::new(Idle {
            instances: Mutex::default(),
            budget: Arc::clone(self),
            max_idle,
        });
        self.lists
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&idle));
        idle
    }

    /// Drops the instances idle past their list's `max_idle`, and forgets
    /// the lists of snapshots gone.
    fn sweep(&self, now: Instant) {
        let lists: Vec<Arc<Idle>> = {
            let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
            lists.retain(|list| list.strong_count() > 0);
            lists.iter().filter_map(Weak::upgrade).collect()
        };
        for list in lists {
            list.expire(now);
        }
    }

    /// Takes a place for one more idle instance, if one is left.
    fn acquire(&self) -> bool {
        self.waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives `n` places back.
    fn release(&self, n: usize) {
        self.waiting.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The idle instances of one snapshot entry (of every entry that would
/// make the same instance: `LoadedPlugin::instance_key`), each with when
/// it came back, most recently returned last, each holding a place of its
/// runtime's [`IdleBudget`]. Made by [`IdleBudget::list`].
#[derive(Debug)]
pub(crate) struct Idle {
    instances: Mutex<Vec<(Instant, Live)>>,
    budget: Arc<IdleBudget>,
    /// How long an instance may wait unused (`max_idle`).
    max_idle: Duration,
}

impl Idle {
    /// The most recently returned instance (its memory the likeliest to
    /// be in the caches), if any.
    pub(crate) fn take(&self) -> Option<Live> {
        let (_, live) = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()?;
        self.budget.release(1);
        Some(live)
    }

    /// Drops the instances that came back more than `max_idle` before
    /// `now` (the oldest, at the front).
    fn expire(&self, now: Instant) {
        let expired: Vec<(Instant, Live)> = {
            let mut idle = self
                .instances
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let fresh = idle
                .iter()
                .position(|(since, _)| now.duration_since(*since) < self.max_idle)
                .unwrap_or(idle.len());
            idle.drain(..fresh).collect()
        };
        self.budget.release(expired.len());
        // Dropped outside the lock: releasing a store resets its slot.
        drop(expired);
    }

    /// Keeps `live` for a later transaction, unless the list or the
    /// runtime's budget is full.
    fn put(&self, live: Live) {
        let surplus = {
            let mut idle = self
                .instances
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_MAX && self.budget.acquire() {
                idle.push((Instant::now(), live));
                None
            } else {
                Some(live)
            }
        };
        // Dropped outside the lock: releasing a store resets its slot.
        drop(surplus);
    }
}

impl Drop for Idle {
    /// The snapshot is gone: its idle instances go, and their places.
    fn drop(&mut self) {
        let idle = self
            .instances
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        self.budget.release(idle.len());
    }
}

/// Where an instance goes when its transaction ends: its entry's idle
/// list, while the snapshot lives, if it may serve again
/// ([`Live::reusable`]).
#[derive(Debug, Clone)]
pub(crate) struct Home {
    /// Weak: idle instances hold their home, and must not keep an old
    /// snapshot's list alive.
    idle: Weak<Idle>,
    /// Transactions an instance may serve in all.
    max_use: u32,
}

impl Home {
    /// The home of an entry's instances.
    pub(crate) fn new(idle: &Arc<Idle>, max_use: u32) -> Home {
        Home {
            idle: Arc::downgrade(idle),
            max_use,
        }
    }

    /// Takes `live` back at the end of its transaction, or lets it go.
    pub(crate) fn give_back(&self, live: Live) {
        if let Some(idle) = self.idle.upgrade()
            && live.reusable(self.max_use)
        {
            idle.put(live);
        }
    }
}

/// The instances of one transaction, by `LoadedPlugin::instance_key`;
/// each goes home when the transaction ends (this is dropped).
#[derive(Debug, Default)]
pub(crate) struct Instances(HashMap<usize, Live>);

impl Instances {
    pub(crate) fn remove(&mut self, key: usize) -> Option<Live> {
        self.0.remove(&key)
    }

    pub(crate) fn insert(&mut self, key: usize, live: Live) {
        self.0.insert(key, live);
    }

    /// Ends the transaction: every instance goes home.
    pub(crate) fn clear(&mut self) {
        for (_, live) in self.0.drain() {
            live.go_home();
        }
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        self.clear();
    }
}
