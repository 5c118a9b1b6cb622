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
//! push the transactions in flight out of the pool.
//!
//! Not here: which transaction an instance serves (that is
//! `crate::snapshot`'s pinning) and how a call runs (`crate::plugin`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::plugin::Live;

/// The most instances one entry keeps idle: enough for the transactions
/// of a busy 2-core server at once (each holds its instances from its
/// first check to its end), few enough that a handful of entries leave
/// most of the instance pool ([`crate::Pool`]) free for the rest.
pub(crate) const IDLE_MAX: usize = 16;

/// How many instances may wait idle in one runtime, every entry of every
/// snapshot together: half the instance pool's slots (at least
/// [`IDLE_MAX`]), the other half left to the transactions in flight.
#[derive(Debug)]
pub(crate) struct IdleBudget {
    waiting: AtomicUsize,
    max: usize,
}

impl IdleBudget {
    /// The budget of a runtime whose pool holds `pool_instances`.
    pub(crate) fn for_pool(pool_instances: u32) -> IdleBudget {
        let half = usize::try_from(pool_instances / 2).unwrap_or(usize::MAX);
        IdleBudget {
            waiting: AtomicUsize::new(0),
            max: half.max(IDLE_MAX),
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
/// make the same instance: `LoadedPlugin::instance_key`), most recently
/// used last, each holding a place of its runtime's [`IdleBudget`].
#[derive(Debug)]
pub(crate) struct Idle {
    instances: Mutex<Vec<Live>>,
    budget: Arc<IdleBudget>,
}

impl Idle {
    /// An empty list under `budget`.
    pub(crate) fn new(budget: Arc<IdleBudget>) -> Idle {
        Idle {
            instances: Mutex::default(),
            budget,
        }
    }

    /// The most recently returned instance (its memory the likeliest to
    /// be in the caches), if any.
    pub(crate) fn take(&self) -> Option<Live> {
        let live = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()?;
        self.budget.release(1);
        Some(live)
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
                idle.push(live);
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
