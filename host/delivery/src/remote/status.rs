//! Postfix's in-core destination queues: how many deliveries run to each
//! destination (`window`: slow start and feedback), and which
//! destinations are dead.
//!
//! A delivery takes a [`Slot`] of its destination (waiting while the
//! window is full) and says how it went: [`Slot::succeeded`] (the server
//! answered, whatever it said about the recipients) or [`Slot::failed`]
//! (no server could be reached, or the handshake failed). Enough failures
//! declare the destination dead: the deliveries waiting for it, and those
//! that come until `minimal_backoff_time` has passed, are deferred at once
//! as "delivery temporarily suspended: ..." rather than each waiting for
//! its own timeouts. After that time the next delivery probes it again.
//!
//! None of this is written to disk, as in Postfix, whose qmgr keeps it in
//! memory only: a restart forgets the windows and the dead marks. That is
//! the right amount of memory: a restart is rare, the first deliveries
//! after it probe the destination within their own timeouts, and a
//! destination that came back meanwhile is not held back by a stale mark.
//! The deferred messages themselves keep their next attempt time (the
//! file's mtime), so a restart does not make them all try at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postern_mail::DeliveryStatus;
use tokio::sync::Notify;

use super::window::{Concurrency, Window};

/// The destinations in flight or dead, by key (`smtp:[relay]:587`).
#[derive(Debug)]
pub(crate) struct Destinations {
    map: Mutex<HashMap<String, Destination>>,
    /// How long a dead destination stays dead (`minimal_backoff_time`);
    /// zero: never marked dead.
    dead_time: Duration,
}

#[derive(Debug)]
struct Destination {
    params: Concurrency,
    window: Window,
    /// Deliveries in flight.
    busy: u32,
    /// Deliveries waiting for a slot (Postfix's todo list): while there
    /// are any, the destination and its feedback are remembered.
    waiting: u32,
    /// Why and until when it is dead.
    dead: Option<(Instant, DeliveryStatus)>,
    /// Wakes the deliveries waiting for a slot.
    wake: Arc<Notify>,
}

impl Destination {
    fn new(params: Concurrency) -> Destination {
        Destination {
            params,
            window: Window::new(&params),
            busy: 0,
            waiting: 0,
            dead: None,
            wake: Arc::new(Notify::new()),
        }
    }
}

/// How a delivery went, for the feedback.
#[derive(Debug)]
enum Verdict {
    Unknown,
    Succeeded,
    Failed(DeliveryStatus),
}

/// The right to deliver to one destination now; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    owner: Arc<Destinations>,
    key: String,
    verdict: Verdict,
}

impl Slot {
    /// A server answered and the handshake went through: positive
    /// feedback.
    pub(crate) fn succeeded(&mut self) {
        self.verdict = Verdict::Succeeded;
    }

    /// No server could be reached or the handshake failed, for `why`:
    /// negative feedback.
    pub(crate) fn failed(&mut self, why: &DeliveryStatus) {
        self.verdict = Verdict::Failed(why.clone());
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let verdict = std::mem::replace(&mut self.verdict, Verdict::Unknown);
        self.owner.release(&self.key, verdict);
    }
}

impl Destinations {
    pub(crate) fn new(dead_time: Duration) -> Destinations {
        Destinations {
            map: Mutex::new(HashMap::new()),
            dead_time,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Destination>> {
        // Each update is a few field writes under the lock; a panicking
        // holder cannot leave a destination half changed in a way that
        // matters more than a miscounted window.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a delivery slot of `key`, a destination of a transport
    /// with `params`; the deferral to answer instead while it is dead.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        key: &str,
        params: &Concurrency,
    ) -> Result<Slot, DeliveryStatus> {
        let mut waited = false;
        loop {
            let wake = {
                let mut map = self.lock();
                if !map.contains_key(key) {
                    forget_expired(&mut map);
                }
                let d = map
                    .entry(key.to_owned())
                    .or_insert_with(|| Destination::new(*params));
                if waited {
                    d.waiting = d.waiting.saturating_sub(1);
                }
                if let Some((until, why)) = &d.dead {
                    if Instant::now() < *until {
                        return Err(suspended(why));
                    }
                    d.dead = None;
                    d.window.revive(&d.params, d.busy);
                    tracing::debug!(target: "postern/qmgr", "{key}: dead mark expired, window {}", d.window.width());
                }
                if d.busy < d.window.width() {
                    d.busy += 1;
                    return Ok(Slot {
                        owner: Arc::clone(self),
                        key: key.to_owned(),
                        verdict: Verdict::Unknown,
                    });
                }
                d.waiting += 1;
                waited = true;
                Arc::clone(&d.wake)
            };
            // Registered before the lock is taken again, so a release in
            // between still wakes this one.
            let notified = wake.notified_owned();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut wait = Waiting {
                owner: self,
                key,
                armed: true,
            };
            if !self.has_room(key) {
                notified.await;
            }
            // Counted off at the top of the loop, under the lock.
            wait.armed = false;
        }
    }

    /// Whether `key` would give a slot (or an answer) right now.
    fn has_room(&self, key: &str) -> bool {
        self.lock()
            .get(key)
            .is_none_or(|d| d.dead.is_some() || d.busy < d.window.width())
    }

    /// A delivery to `key` ended with `verdict`.
    fn release(&self, key: &str, verdict: Verdict) {
        let mut map = self.lock();
        let Some(d) = map.get_mut(key) else {
            return;
        };
        d.busy = d.busy.saturating_sub(1);
        let before = d.window.width();
        match verdict {
            Verdict::Unknown => {}
            Verdict::Succeeded => {
                if d.dead.take().is_some() {
                    tracing::debug!(target: "postern/qmgr", "{key}: alive again");
                }
                d.window.succeeded(&d.params, d.busy);
            }
            Verdict::Failed(why) => {
                if d.window.failed(&d.params) {
                    if self.dead_time.is_zero() {
                        d.window.revive(&d.params, d.busy);
                    } else {
                        tracing::debug!(target: "postern/qmgr", "{key}: dead for {:?}: {}", self.dead_time, why.detail());
                        d.dead = Some((Instant::now() + self.dead_time, why));
                    }
                }
            }
        }
        if d.window.width() != before {
            tracing::debug!(
                target: "postern/qmgr",
                "{key}: concurrency window {before} -> {} ({} in flight)",
                d.window.width(),
                d.busy
            );
        }
        // Waiters re-check: there may be room now, or an answer (dead).
        d.wake.notify_waiters();
        // An idle destination in good health is forgotten, as qmgr
        // discards an empty in-core queue: the map stays as small as the
        // set of destinations in flight or dead.
        if d.busy == 0 && d.waiting == 0 && d.dead.is_none() {
            map.remove(key);
        }
    }

    /// The window of `key` now (for tests).
    #[cfg(test)]
    fn width(&self, key: &str) -> Option<u32> {
        self.lock().get(key).map(|d| d.window.width())
    }
}

/// A delivery waiting for a slot; if its future is dropped while it
/// waits (the delivery was cancelled), it stops counting as waiting.
struct Waiting<'a> {
    owner: &'a Destinations,
    key: &'a str,
    armed: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut map = self.owner.lock();
            if let Some(d) = map.get_mut(self.key) {
                d.waiting = d.waiting.saturating_sub(1);
                if d.busy == 0 && d.waiting == 0 && d.dead.is_none() {
                    map.remove(self.key);
                }
            }
        }
    }
}

/// Drops the dead marks that expired with nobody asking since: the map
/// stays as small as the set of destinations in flight or dead now.
fn forget_expired(map: &mut HashMap<String, Destination>) {
    let now = Instant::now();
    map.retain(|_, d| {
        d.busy > 0 || d.waiting > 0 || d.dead.as_ref().is_some_and(|(until, _)| now < *until)
    });
}

/// The deferral of a delivery to a dead destination.
fn suspended(why: &DeliveryStatus) -> DeliveryStatus {
    DeliveryStatus::Deferred {
        dsn: why.dsn(),
        detail: format!("delivery temporarily suspended: {}", why.detail()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::EnhancedCode;

    use super::*;

    fn refused() -> DeliveryStatus {
        DeliveryStatus::Deferred {
            dsn: EnhancedCode::new(4, 4, 1),
            detail: "connect to relay[192.0.2.1]:25: Connection refused".to_owned(),
        }
    }

    fn params(initial: u32, limit: u32) -> Concurrency {
        Concurrency {
            initial,
            limit,
            ..Concurrency::default()
        }
    }

    async fn try_acquire(d: &Arc<Destinations>, key: &str, p: &Concurrency) -> Option<Slot> {
        tokio::time::timeout(Duration::from_millis(50), d.acquire(key, p))
            .await
            .ok()
            .map(|r| r.unwrap())
    }

    #[tokio::test]
    async fn the_window_limits_deliveries_and_grows_with_success() {
        let d = Arc::new(Destinations::new(Duration::from_secs(60)));
        let p = params(2, 3);
        let mut a1 = d.acquire("smtp:a", &p).await.unwrap();
        let _a2 = d.acquire("smtp:a", &p).await.unwrap();
        // A third delivery to `a` waits; another destination does not.
        assert!(try_acquire(&d, "smtp:a", &p).await.is_none());
        assert!(try_acquire(&d, "smtp:b", &p).await.is_some());
        // A waiter is woken when a success widens the window.
        let waiter = {
            let (d, p) = (Arc::clone(&d), p);
            tokio::spawn(async move { d.acquire("smtp:a", &p).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        a1.succeeded();
        drop(a1);
        assert!(waiter.await.unwrap());
        assert_eq!(d.width("smtp:a"), Some(3));
    }

    #[tokio::test]
    async fn enough_failures_suspend_the_destination_and_its_waiters() {
        let d = Arc::new(Destinations::new(Duration::from_millis(200)));
        let p = params(1, 20);
        let mut a = d.acquire("smtp:a", &p).await.unwrap();
        let waiter = {
            let (d, p) = (Arc::clone(&d), p);
            tokio::spawn(async move { d.acquire("smtp:a", &p).await.err() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.failed(&refused());
        drop(a);
        let Some(DeliveryStatus::Deferred { dsn, detail }) = waiter.await.unwrap() else {
            panic!("the waiter was not suspended");
        };
        assert_eq!(dsn, EnhancedCode::new(4, 4, 1));
        assert_eq!(
            detail,
            "delivery temporarily suspended: connect to relay[192.0.2.1]:25: Connection refused"
        );
        assert!(d.acquire("smtp:a", &p).await.is_err());
        assert!(d.acquire("smtp:b", &p).await.is_ok());
        // The mark ages out after the dead time: probed again.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut probe = d.acquire("smtp:a", &p).await.unwrap();
        probe.succeeded();
        drop(probe);
        assert!(d.acquire("smtp:a", &p).await.is_ok());
    }

    #[tokio::test]
    async fn a_zero_dead_time_never_suspends() {
        let d = Arc::new(Destinations::new(Duration::ZERO));
        let p = params(1, 20);
        for _ in 0..5 {
            let mut a = d.acquire("smtp:a", &p).await.unwrap();
            a.failed(&refused());
        }
        assert!(d.acquire("smtp:a", &p).await.is_ok());
    }

    #[tokio::test]
    async fn expired_dead_marks_are_forgotten() {
        let d = Arc::new(Destinations::new(Duration::from_millis(50)));
        let p = params(1, 20);
        for i in 0..100 {
            let mut s = d.acquire(&format!("smtp:d{i}"), &p).await.unwrap();
            s.failed(&refused());
        }
        assert_eq!(d.lock().len(), 100);
        tokio::time::sleep(Duration::from_millis(60)).await;
        drop(d.acquire("smtp:other", &p).await.unwrap());
        assert!(d.lock().is_empty());
    }

    #[tokio::test]
    async fn idle_destinations_are_forgotten() {
        let d = Arc::new(Destinations::new(Duration::from_secs(60)));
        let p = params(5, 20);
        for i in 0..100 {
            let mut s = d.acquire(&format!("smtp:d{i}"), &p).await.unwrap();
            s.succeeded();
        }
        assert!(d.lock().is_empty());
    }
}
