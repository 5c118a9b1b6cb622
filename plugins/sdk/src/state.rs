//! State that outlives a call, behind a trait: [`State`] is what the
//! `kv` and `host.now` imports offer, so that a plugin's logic (greylisting,
//! rate limits) is written once against it and unit tested on the host
//! with [`Memory`], a store with a clock the test moves.
//!
//! The rules of the real store (`wit/policy.wit`, interface `kv`): each
//! plugin has its own namespace, values expire after their TTL (0: a week,
//! the longest the host keeps anything), `incr` keeps the expiry of an
//! existing key, so a counter counts within a fixed window; the store
//! lives in the server's memory, survives reloads but not restarts.
//! [`Memory`] keeps the same rules.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::{host, kv};

/// The longest TTL the host keeps a value, in seconds: a week
/// (`Kv::MAX_TTL` in host/policy). Longer TTLs are cut to it.
pub const MAX_TTL: u64 = 7 * 24 * 3600;

/// The longest key the host accepts, in bytes; a longer one fails the
/// call. [`key`] makes any key fit.
pub const MAX_KEY: usize = 512;

/// A key-value store with expiry and a clock.
pub trait State {
    /// The value at `key`, if set and not expired.
    fn get(&self, key: &str) -> Option<String>;
    /// Sets `key` to `value` for `ttl` seconds (0: [`MAX_TTL`]).
    fn set(&self, key: &str, value: &str, ttl: u64);
    /// Adds `delta` to the integer at `key`; a missing key starts at 0
    /// with `ttl` seconds, an existing one keeps its expiry.
    fn incr(&self, key: &str, delta: i64, ttl: u64) -> i64;
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The host's store and clock: the `kv` and `host.now` imports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kv;

impl State for Kv {
    fn get(&self, key: &str) -> Option<String> {
        kv::get(key)
    }

    fn set(&self, key: &str, value: &str, ttl: u64) {
        kv::set(key, value, ttl);
    }

    fn incr(&self, key: &str, delta: i64, ttl: u64) -> i64 {
        kv::incr(key, delta, ttl)
    }

    fn now(&self) -> u64 {
        host::now()
    }
}

/// `prefix` and `parts` joined by `/` as a store key, lower-cased; when
/// that would pass [`MAX_KEY`] (addresses may be 256 bytes each), the
/// parts are replaced by a 128-bit hash of them, so that a long address
/// costs a (practically) unique key rather than a failed call.
pub fn key(prefix: &str, parts: &[&str]) -> String {
    let joined = parts.join("/").to_lowercase();
    if prefix.len() + 1 + joined.len() <= MAX_KEY {
        return format!("{prefix}:{joined}");
    }
    // FNV-1a, twice with different offsets: stable across builds and
    // targets, unlike std's hasher, and plenty for telling keys apart.
    let fnv = |basis: u64| {
        joined.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{prefix}:#{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

/// An in-memory [`State`] with a clock that only moves when told: the
/// test double of [`Kv`], with its expiry rules.
#[derive(Debug, Default)]
pub struct Memory {
    items: RefCell<HashMap<String, (String, u64)>>,
    now: RefCell<u64>,
}

impl Memory {
    /// An empty store whose clock reads `now`.
    pub fn at(now: u64) -> Memory {
        Memory {
            items: RefCell::default(),
            now: RefCell::new(now),
        }
    }

    /// Moves the clock `seconds` forward.
    pub fn advance(&self, seconds: u64) {
        *self.now.borrow_mut() += seconds;
    }

    fn expiry(&self, ttl: u64) -> u64 {
        let ttl = if ttl == 0 { MAX_TTL } else { ttl.min(MAX_TTL) };
        *self.now.borrow() + ttl
    }
}

impl State for Memory {
    fn get(&self, key: &str) -> Option<String> {
        let now = *self.now.borrow();
        let items = self.items.borrow();
        let (value, expires) = items.get(key)?;
        (*expires > now).then(|| value.clone())
    }

    fn set(&self, key: &str, value: &str, ttl: u64) {
        let expires = self.expiry(ttl);
        self.items
            .borrow_mut()
            .insert(key.to_owned(), (value.to_owned(), expires));
    }

    fn incr(&self, key: &str, delta: i64, ttl: u64) -> i64 {
        let now = *self.now.borrow();
        let fresh = self.expiry(ttl);
        let mut items = self.items.borrow_mut();
        let (current, expires) = match items.get(key) {
            Some((v, e)) if *e > now => (v.trim().parse::<i64>().unwrap_or(0), *e),
            _ => (0, fresh),
        };
        let value = current.saturating_add(delta);
        items.insert(key.to_owned(), (value.to_string(), expires));
        value
    }

    fn now(&self) -> u64 {
        *self.now.borrow()
    }
}

/// Reads a time span as plugin arguments write it, in seconds: `300`,
/// `300s`, `5m`, `2h`, `2d`, `1w`; zero is refused (a window or delay of
/// nothing is a mistake, not a setting).
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(at);
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 24 * 3600,
        "w" => 7 * 24 * 3600,
        other => return Err(format!("unknown time unit {other:?} (use s, m, h, d or w)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a time such as 300s, 5m, 2h or 2d".to_owned())?;
    match n.checked_mul(scale) {
        Some(0) => Err("a time of zero".to_owned()),
        Some(s) => Ok(s),
        None => Err("too long".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn memory_keeps_the_hosts_expiry_rules() {
        let m = Memory::at(1000);
        m.set("a", "x", 10);
        assert_eq!(m.get("a").as_deref(), Some("x"));
        assert_eq!(m.incr("n", 1, 10), 1);
        m.advance(5);
        assert_eq!(m.incr("n", 1, 100), 2, "an existing key keeps its expiry");
        m.advance(5);
        assert_eq!(m.get("a"), None);
        assert_eq!(m.incr("n", 1, 10), 1, "expired: starts again");
        m.set("w", "x", 0);
        m.advance(MAX_TTL - 1);
        assert!(m.get("w").is_some());
        m.advance(1);
        assert!(m.get("w").is_none());
    }

    #[test]
    fn keys_fit_the_host_limit() {
        assert_eq!(key("t", &["1.2.3", "A@B"]), "t:1.2.3/a@b");
        let long = "x".repeat(600);
        let k = key("t", &[&long, "y"]);
        assert!(k.len() <= MAX_KEY && k.starts_with("t:#"), "{k}");
        assert_ne!(k, key("t", &[&long, "z"]));
        assert_eq!(k, key("t", &[&long, "Y"]), "case-insensitive");
    }

    #[test]
    fn times() {
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("5m"), Ok(300));
        assert_eq!(parse_seconds("2d"), Ok(172_800));
        assert_eq!(parse_seconds(" 1h "), Ok(3600));
        assert!(parse_seconds("0s").is_err());
        assert!(
            parse_seconds("5y")
                .unwrap_err()
                .contains("unknown time unit")
        );
        assert!(parse_seconds("m").is_err());
        assert!(parse_seconds("99999999999999999999").is_err());
    }
}
