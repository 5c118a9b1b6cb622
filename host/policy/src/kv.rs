//! The `kv` host import: a small key-value store with expiry, namespaced
//! by plugin name, in the server's memory. What greylisting and rate
//! limits need (Postfix keeps such state in `postscreen_cache_map` or an
//! external policy daemon's database).
//!
//! Bounded: each namespace holds at most [`Kv::NAMESPACE_BYTES`] of keys
//! and values. When a write would pass that, expired entries go first,
//! then those closest to expiry: a full store forgets the state that
//! mattered least, and never refuses a plugin or grows without bound. One
//! [`Kv`] lives as long as the [`crate::Runtime`], so state survives
//! reloads.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a `kv` call fails the plugin call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KvError {
    /// A key longer than [`Kv::MAX_KEY`].
    #[error("kv: key of {0} bytes, the limit is {max}", max = Kv::MAX_KEY)]
    KeyTooLong(usize),
    /// A value longer than [`Kv::MAX_VALUE`].
    #[error("kv: value of {0} bytes, the limit is {max}", max = Kv::MAX_VALUE)]
    ValueTooLong(usize),
}

/// One stored value.
#[derive(Debug, Clone)]
struct Item {
    value: String,
    expires: Instant,
}

/// One plugin's entries, with an index by expiry for eviction.
#[derive(Debug, Default)]
struct Namespace {
    items: HashMap<String, Item>,
    by_expiry: BTreeSet<(Instant, String)>,
    bytes: usize,
}

impl Namespace {
    fn remove(&mut self, key: &str) -> Option<Item> {
        let item = self.items.remove(key)?;
        self.by_expiry.remove(&(item.expires, key.to_owned()));
        self.bytes -= key.len() + item.value.len();
        Some(item)
    }

    /// The live item at `key`, dropping it if it expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&Item> {
        if self.items.get(key).is_some_and(|i| i.expires <= now) {
            self.remove(key);
        }
        self.items.get(key)
    }

    fn insert(&mut self, key: String, item: Item, limit: usize) {
        self.remove(&key);
        let size = key.len() + item.value.len();
        // Make room: the entries that expire first go first (expired ones
        // have the smallest instants).
        while self.bytes + size > limit {
            let Some((_, oldest)) = self.by_expiry.iter().next().cloned() else {
                break;
            };
            self.remove(&oldest);
        }
        self.bytes += size;
        self.by_expiry.insert((item.expires, key.clone()));
        self.items.insert(key, item);
    }
}

/// The store: every plugin's namespace.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kv {
    namespaces: Arc<Mutex<HashMap<Arc<str>, Namespace>>>,
}

impl Kv {
    /// The longest key, in bytes: room for an IP, a sender and a
    /// recipient (a greylisting triplet) with a prefix.
    pub(crate) const MAX_KEY: usize = 512;
    /// The longest value, in bytes.
    pub(crate) const MAX_VALUE: usize = 4096;
    /// The bytes of keys and values one plugin may hold: 16 MiB, some
    /// hundred thousand greylisting triplets.
    pub(crate) const NAMESPACE_BYTES: usize = 16 << 20;
    /// The longest TTL, and what a TTL of 0 means: a week, longer than any
    /// greylisting or rate window.
    pub(crate) const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

    fn check_key(key: &str) -> Result<(), KvError> {
        if key.len() > Kv::MAX_KEY {
            return Err(KvError::KeyTooLong(key.len()));
        }
        Ok(())
    }

    fn ttl(seconds: u64) -> Duration {
        match seconds {
            0 => Kv::MAX_TTL,
            s => Duration::from_secs(s).min(Kv::MAX_TTL),
        }
    }

    fn with<T>(&self, ns: &Arc<str>, f: impl FnOnce(&mut Namespace) -> T) -> T {
        // A panic while holding the lock cannot leave a namespace half
        // updated in a way that matters more than losing the store: take
        // the data as it is.
        let mut all = self
            .namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(all.entry(ns.clone()).or_default())
    }

    /// The value at `key` in `ns`, if set and not expired.
    pub(crate) fn get(&self, ns: &Arc<str>, key: &str) -> Result<Option<String>, KvError> {
        Kv::check_key(key)?;
        let now = Instant::now();
        Ok(self.with(ns, |n| n.live(key, now).map(|i| i.value.clone())))
    }

    /// Sets `key` in `ns` for `ttl_seconds` (0: [`Kv::MAX_TTL`]).
    pub(crate) fn set(
        &self,
        ns: &Arc<str>,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<(), KvError> {
        Kv::check_key(key)?;
        if value.len() > Kv::MAX_VALUE {
            return Err(KvError::ValueTooLong(value.len()));
        }
        let item = Item {
            value: value.to_owned(),
            expires: Instant::now() + Kv::ttl(ttl_seconds),
        };
        self.with(ns, |n| n.insert(key.to_owned(), item, Kv::NAMESPACE_BYTES));
        Ok(())
    }

    /// Adds `delta` to the integer at `key` in `ns`; a missing key starts
    /// at 0 with `ttl_seconds`, an existing one keeps its expiry.
    pub(crate) fn incr(
        &self,
        ns: &Arc<str>,
        key: &str,
        delta: i64,
        ttl_seconds: u64,
    ) -> Result<i64, KvError> {
        Kv::check_key(key)?;
        let now = Instant::now();
        Ok(self.with(ns, |n| {
            let (current, expires) = match n.live(key, now) {
                Some(item) => (item.value.trim().parse::<i64>().unwrap_or(0), item.expires),
                None => (0, now + Kv::ttl(ttl_seconds)),
            };
            let value = current.saturating_add(delta);
            let item = Item {
                value: value.to_string(),
                expires,
            };
            n.insert(key.to_owned(), item, Kv::NAMESPACE_BYTES);
            value
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_ttl_and_incr() {
        let kv = Kv::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        kv.set(&a, "k", "v", 60).unwrap();
        assert_eq!(kv.get(&a, "k").unwrap().as_deref(), Some("v"));
        assert_eq!(kv.get(&b, "k").unwrap(), None);
        assert_eq!(kv.incr(&b, "n", 2, 60).unwrap(), 2);
        assert_eq!(kv.incr(&b, "n", -5, 60).unwrap(), -3);
        assert_eq!(kv.incr(&a, "k", 1, 60).unwrap(), 1, "not a number: 0");
        assert_eq!(kv.get(&a, &"x".repeat(513)), Err(KvError::KeyTooLong(513)));
        assert_eq!(
            kv.set(&a, "k", &"x".repeat(5000), 1),
            Err(KvError::ValueTooLong(5000))
        );
    }

    #[test]
    fn expired_entries_are_gone_and_a_full_namespace_evicts_the_soonest_to_expire() {
        let mut n = Namespace::default();
        let now = Instant::now();
        let item = |v: &str, secs| Item {
            value: v.to_owned(),
            expires: now + Duration::from_secs(secs),
        };
        n.insert("old".to_owned(), item("1", 0), 100);
        assert!(n.live("old", now).is_none());
        assert_eq!(n.bytes, 0);
        n.insert("a".to_owned(), item("x".repeat(40).as_str(), 10), 100);
        n.insert("b".to_owned(), item("x".repeat(40).as_str(), 100), 100);
        n.insert("c".to_owned(), item("x".repeat(40).as_str(), 50), 100);
        assert!(n.items.contains_key("b") && n.items.contains_key("c"));
        assert!(!n.items.contains_key("a"));
        assert_eq!(n.bytes, 82);
    }
}
