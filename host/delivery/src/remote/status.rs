//! Postfix's destination status cache: a next hop where no server could
//! be reached is marked dead, and the deliveries to it that follow are
//! deferred at once ("delivery temporarily suspended: ...") instead of
//! each waiting for its own connection timeouts. The mark lasts
//! `minimal_backoff_time`, as qmgr's throttled queue does, so the next
//! retry of the message that found the destination dead probes it again;
//! a server that answers clears the mark.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postern_mail::DeliveryStatus;

/// Dead destinations by key (`smtp:[relay]:587`), with why and until when.
#[derive(Debug)]
pub(crate) struct DeadDestinations {
    dead: Mutex<HashMap<String, (Instant, DeliveryStatus)>>,
    /// How long a mark lasts; zero: never marked.
    time: Duration,
}

impl DeadDestinations {
    pub(crate) fn new(time: Duration) -> DeadDestinations {
        DeadDestinations {
            dead: Mutex::new(HashMap::new()),
            time,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, DeliveryStatus)>> {
        // The map holds no invariant a panicking holder could break.
        self.dead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The deferral for a delivery to `key` while it is marked dead.
    pub(crate) fn suspended(&self, key: &str) -> Option<DeliveryStatus> {
        let mut dead = self.lock();
        let (until, why) = dead.get(key)?;
        if Instant::now() >= *until {
            dead.remove(key);
            return None;
        }
        Some(DeliveryStatus::Deferred {
            dsn: why.dsn(),
            detail: format!("delivery temporarily suspended: {}", why.detail()),
        })
    }

    /// Marks `key` dead because of `why` (no server of it could be
    /// reached).
    pub(crate) fn mark(&self, key: &str, why: &DeliveryStatus) {
        if self.time.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut dead = self.lock();
        // Expired marks go, so the map is as small as the set of
        // destinations dead right now.
        dead.retain(|_, (until, _)| *until > now);
        dead.insert(key.to_owned(), (now + self.time, why.clone()));
    }

    /// A server of `key` answered: it is alive.
    pub(crate) fn clear(&self, key: &str) {
        let mut dead = self.lock();
        if !dead.is_empty() {
            dead.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use postern_mail::EnhancedCode;

    use super::*;

    fn refused() -> DeliveryStatus {
        DeliveryStatus::Deferred {
            dsn: EnhancedCode::new(4, 4, 1),
            detail: "connect to relay[192.0.2.1]:25: Connection refused".to_owned(),
        }
    }

    #[test]
    fn a_dead_destination_is_suspended_until_the_mark_expires_or_clears() {
        let d = DeadDestinations::new(Duration::from_millis(100));
        assert_eq!(d.suspended("smtp:a"), None);
        d.mark("smtp:a", &refused());
        let Some(DeliveryStatus::Deferred { dsn, detail }) = d.suspended("smtp:a") else {
            panic!("not suspended");
        };
        assert_eq!(dsn, EnhancedCode::new(4, 4, 1));
        assert_eq!(
            detail,
            "delivery temporarily suspended: connect to relay[192.0.2.1]:25: Connection refused"
        );
        assert_eq!(d.suspended("smtp:b"), None);
        d.clear("smtp:a");
        assert_eq!(d.suspended("smtp:a"), None);
        d.mark("smtp:a", &refused());
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(d.suspended("smtp:a"), None);
        // Off when the time is zero.
        let off = DeadDestinations::new(Duration::ZERO);
        off.mark("smtp:a", &refused());
        assert_eq!(off.suspended("smtp:a"), None);
    }
}
