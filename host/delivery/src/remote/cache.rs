//! Connection reuse and concurrency per destination (Postfix's scache and
//! qmgr's destination concurrency): an idle session is kept for
//! `smtp_connection_cache_time_limit` and handed to the next delivery to
//! the same destination; at most `default_destination_concurrency_limit`
//! deliveries to one destination run at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use postern_smtp::client::Session;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Idle sessions and concurrency slots by destination key
/// (`smtp:example.net`, `smtp:[relay]:587`, `lmtp:unix:/path`).
#[derive(Debug)]
pub(crate) struct Destinations {
    idle: Mutex<HashMap<String, Vec<Session>>>,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// How long an idle session is kept; zero: none is.
    time_limit: Duration,
    /// Deliveries at once per destination.
    limit: usize,
}

/// Locks a map, whatever a panicking holder left: the maps hold no
/// invariant a half-done update could break.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Destinations {
    pub(crate) fn new(time_limit: Duration, limit: usize) -> Destinations {
        Destinations {
            idle: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            time_limit,
            limit: limit.max(1),
        }
    }

    /// Waits for a delivery slot of `key`.
    pub(crate) async fn slot(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = lock(&self.slots);
            // Forget destinations nobody uses, so the map stays as small
            // as the set of destinations in flight.
            let limit = self.limit;
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < limit);
            slots
                .entry(key.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone()
        };
        semaphore.acquire_owned().await.ok()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrency_is_limited_per_destination() {
        let d = Destinations::new(Duration::from_secs(2), 2);
        let a1 = d.slot("smtp:a").await.unwrap();
        let _a2 = d.slot("smtp:a").await.unwrap();
        // A third delivery to `a` waits; another destination does not.
        let third = tokio::time::timeout(Duration::from_millis(50), d.slot("smtp:a")).await;
        assert!(third.is_err());
        let _b = tokio::time::timeout(Duration::from_millis(50), d.slot("smtp:b"))
            .await
            .unwrap()
            .unwrap();
        drop(a1);
        let again = tokio::time::timeout(Duration::from_millis(50), d.slot("smtp:a")).await;
        assert!(again.unwrap().is_some());
        assert!(d.take("smtp:a").is_none());
    }
}
