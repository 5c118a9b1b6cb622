//! Connection reuse per destination (Postfix's scache and its smtp(8)
//! side): after a transaction, the session is kept idle for
//! `smtp_connection_cache_time_limit` and handed to the next delivery to
//! the same destination, which sends its MAIL FROM on it at once (no new
//! connection, greeting, EHLO or STARTTLS). A session is not reused once
//! it is older than `smtp_connection_reuse_time_limit` (counted from the
//! connect, as Postfix counts it) or has been reused
//! `smtp_connection_reuse_count_limit` times. A cached session the
//! server closed meanwhile is found out by the next transaction before
//! any content goes out, and that delivery falls back to a new connection
//! (`smtp`). How many deliveries run at once is `status`'s business.
//!
//! Bounded: at most [`IDLE_LIMIT`] sessions are kept in all; one reaper
//! task closes the sessions that outstay the time limit, and exits when
//! none is left (no task or timer per message).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use postern_smtp::client::Session;

/// The most idle sessions kept, all destinations together: each is a
/// socket (and a connection slot at the server). Deliveries in flight
/// are bounded by the process limit, so in steady use this is never
/// reached; past it a finished session is closed rather than kept.
pub(crate) const IDLE_LIMIT: usize = 512;

/// Postfix's limits on keeping and reusing a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseLimits {
    /// `smtp_connection_cache_time_limit` (2s): how long a session may
    /// sit idle in the cache; zero: nothing is cached.
    pub idle: Duration,
    /// `smtp_connection_reuse_time_limit` (300s): how long after its
    /// connect a session may still be used for another transaction.
    pub age: Duration,
    /// `smtp_connection_reuse_count_limit` (0: no limit): how many times
    /// a session may be reused, after its first transaction.
    pub count: u32,
}

impl Default for ReuseLimits {
    fn default() -> ReuseLimits {
        ReuseLimits {
            idle: Duration::from_secs(2),
            age: Duration::from_secs(300),
            count: 0,
        }
    }
}

/// Idle sessions by destination key (`smtp:example.net`,
/// `smtp:[relay]:587`, `lmtp:unix:/path`).
#[derive(Debug)]
pub(crate) struct Idle {
    state: Mutex<State>,
    limits: ReuseLimits,
}

#[derive(Debug, Default)]
struct State {
    /// The sessions, most recently used last.
    by_key: HashMap<String, Vec<Session>>,
    /// Sessions in `by_key`, all keys together.
    count: usize,
    /// Whether the reaper task runs: it runs while `count > 0`.
    reaping: bool,
}

/// Locks a map, whatever a panicking holder left: the maps hold no
/// invariant a half-done update could break.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Idle {
    pub(crate) fn new(limits: ReuseLimits) -> Idle {
        Idle {
            state: Mutex::new(State::default()),
            limits,
        }
    }

    /// Whether `session` may carry another transaction now.
    fn reusable(&self, session: &Session) -> bool {
        session.idle_for() < self.limits.idle
            && session.age() < self.limits.age
            // Postfix counts reuses: a first transaction and `count` more.
            && (self.limits.count == 0 || session.transactions() <= self.limits.count)
    }

    /// The most recently used session to `key` that may still be used,
    /// if any. Those past a limit are closed on the way.
    pub(crate) fn take(&self, key: &str) -> Option<Session> {
        let mut stale = Vec::new();
        let found = {
            let mut state = lock(&self.state);
            let sessions = state.by_key.get_mut(key)?;
            let mut found = None;
            while let Some(session) = sessions.pop() {
                if self.reusable(&session) {
                    found = Some(session);
                    break;
                }
                stale.push(session);
            }
            if sessions.is_empty() {
                state.by_key.remove(key);
            }
            let taken = stale.len() + usize::from(found.is_some());
            state.count = state.count.saturating_sub(taken);
            found
        };
        close(stale);
        found
    }

    /// Keeps `session` for the next delivery to `key`, or closes it when
    /// it may not be reused or the cache is full.
    pub(crate) fn put(self: &Arc<Self>, key: &str, session: Session) {
        let start_reaper = {
            let mut state = lock(&self.state);
            if !self.reusable(&session) || state.count >= IDLE_LIMIT {
                drop(state);
                close(vec![session]);
                return;
            }
            match state.by_key.get_mut(key) {
                Some(sessions) => sessions.push(session),
                None => {
                    state.by_key.insert(key.to_owned(), vec![session]);
                }
            }
            state.count += 1;
            !std::mem::replace(&mut state.reaping, true)
        };
        if start_reaper {
            tokio::spawn(Arc::clone(self).reap());
        }
    }

    /// Closes the sessions that sat idle for the time limit, as they
    /// reach it, until none is left.
    async fn reap(self: Arc<Self>) {
        let limit = self.limits.idle;
        let mut wait = limit;
        loop {
            tokio::time::sleep(wait).await;
            let mut stale = Vec::new();
            let next = {
                let mut state = lock(&self.state);
                let mut next = limit;
                state.by_key.retain(|_, sessions| {
                    let (old, fresh): (Vec<Session>, Vec<Session>) = std::mem::take(sessions)
                        .into_iter()
                        .partition(|s| s.idle_for() >= limit);
                    stale.extend(old);
                    for s in &fresh {
                        next = next.min(limit.saturating_sub(s.idle_for()));
                    }
                    *sessions = fresh;
                    !sessions.is_empty()
                });
                state.count = state.by_key.values().map(Vec::len).sum();
                if state.count == 0 {
                    // Under the lock: a `put` after this starts a new
                    // reaper.
                    state.reaping = false;
                    None
                } else {
                    // Not sooner than a few ms: sessions due together go
                    // together.
                    Some(next.max(Duration::from_millis(10)))
                }
            };
            close(stale);
            match next {
                Some(next) => wait = next,
                None => return,
            }
        }
    }
}

/// QUITs `sessions` in the background: nothing waits for a goodbye.
fn close(sessions: Vec<Session>) {
    if sessions.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for session in sessions {
            session.quit().await;
        }
    });
}
