//! Group commit: concurrent callers that each need the same durable step
//! (an fsync of one directory) share one run of it, leader and followers,
//! as databases commit their logs. The queue shares the fsync of
//! `active/` among SMTP sessions before their 250s; the mailbox store
//! shares the fsync of a Maildir's `new/` among concurrent deliveries.
//!
//! Why a follower may go on after a step it did not start: a caller joins
//! a batch only after it made what the step must cover (its directory
//! entry), and a batch's step starts only after every member joined
//! (joining closes when the step starts; later callers join the next
//! batch). An fsync of a directory makes every entry made in it before
//! the call durable, so it covers the whole batch. The step's error is
//! every member's error.
//!
//! This module only coordinates: the step is the caller's closure, and
//! the wait is a blocking one (call it on a blocking thread).

use std::collections::HashMap;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// One shared step: callers [`GroupCommit::run`] it; one at a time leads.
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<Batches>,
    /// Signalled when a batch's step ends: its members collect the
    /// result, and the next batch's members choose a leader.
    ended: Condvar,
}

/// A batch's result as each member gets it: an error as kind and text,
/// since an `io::Error` cannot be cloned.
type Outcome = Result<(), (io::ErrorKind, String)>;

#[derive(Debug, Default)]
struct Batches {
    /// The batch that callers join now: the next step to start covers it.
    gathering: u64,
    /// How many callers have joined `gathering`.
    joined: usize,
    /// Whether a step is in flight (of batch `gathering - 1`).
    running: bool,
    /// Ended batches whose followers have not all collected the result,
    /// and how many have yet to. At most one or two entries.
    results: HashMap<u64, (Outcome, usize)>,
}

impl GroupCommit {
    /// Returns once a run of `step` that began after this call was made
    /// has ended, with that run's result. When this caller leads, `step`
    /// is called with the number of callers its run covers (for metrics);
    /// otherwise it is not called.
    pub fn run(&self, step: impl FnOnce(usize) -> io::Result<()>) -> io::Result<()> {
        let mut state = self.lock();
        let batch = state.gathering;
        state.joined += 1;
        loop {
            if let Some((result, left)) = state.results.get_mut(&batch) {
                let result = result.clone();
                *left -= 1;
                if *left == 0 {
                    state.results.remove(&batch);
                }
                return result.map_err(|(kind, text)| io::Error::new(kind, text));
            }
            if !state.running {
                // No step in flight, so every earlier batch has ended and
                // the one gathering is ours: this caller leads it.
                state.running = true;
                let members = std::mem::take(&mut state.joined);
                state.gathering += 1;
                drop(state);
                let result = step(members);
                let mut state = self.lock();
                state.running = false;
                if members > 1 {
                    let shared = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err((e.kind(), e.to_string())),
                    };
                    state.results.insert(batch, (shared, members - 1));
                }
                drop(state);
                self.ended.notify_all();
                return result;
            }
            state = self
                .ended
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether nothing is in flight or owed: no step running, nobody
    /// waiting. A snapshot, true or false a moment later (tests, and
    /// callers that choose a cheaper order when alone).
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.results.is_empty() && !state.running && state.joined == 0
    }

    fn lock(&self) -> MutexGuard<'_, Batches> {
        // The state is updated in single steps under the lock; a panic
        // elsewhere cannot leave it half changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
