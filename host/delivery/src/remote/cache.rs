//! Connection reuse per destination (Postfix's scache): an idle session
//! is kept for `smtp_connection_cache_time_limit` and handed to the next
//! delivery to the same destination. How many deliveries run at once is
//! `status`'s business.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use postern_smtp::client::Session;

/// Idle sessions by destination key (`smtp:example.net`,
/// `smtp:[relay]:587`, `lmtp:unix:/path`).
#[derive(Debug)]
pub(crate) struct Idle {
    idle: Mutex<HashMap<String, Vec<Session>>>,
    /// How long an idle session is kept; zero: none is.
    time_limit: Duration,
}

/// Locks a map, whatever a panicking holder left: the maps hold no
/// invariant a half-done update could break.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Idle {
    pub(crate) fn new(time_limit: Duration) -> Idle {
        Idle {
            idle: Mutex::new(HashMap::new()),
            time_limit,
        }
    }

    /// An idle session to `key` that is still fresh, if any.
    pub(crate) fn take(&self, key: &str) -> Option<Session> {
        let mut idle = lock(&self.idle);
        let sessions = idle.get_mut(key)?;
        let limit = self.time_limit;
        sessions.retain(|s| s.idle_for() < limit);
        let session = sessions.pop();
        if sessions.is_empty() {
            idle.remove(key);
        }
        session
    }

    /// Keeps `session` for the next delivery to `key`, and closes it once
    /// it has been idle for the time limit.
    pub(crate) fn put(self: &Arc<Self>, key: &str, session: Session) {
        if self.time_limit.is_zero() {
            tokio::spawn(session.quit());
            return;
        }
        lock(&self.idle)
            .entry(key.to_owned())
            .or_default()
            .push(session);
        let me = Arc::clone(self);
        let key = key.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(me.time_limit).await;
            let stale: Vec<Session> = {
                let mut idle = lock(&me.idle);
                let Some(sessions) = idle.get_mut(&key) else {
                    return;
                };
                let limit = me.time_limit;
                let (stale, fresh) = std::mem::take(sessions)
                    .into_iter()
                    .partition(|s| s.idle_for() >= limit);
                *sessions = fresh;
                if sessions.is_empty() {
                    idle.remove(&key);
                }
                stale
            };
            for session in stale {
                session.quit().await;
            }
        });
    }
}
