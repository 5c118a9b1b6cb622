//! The POP/IMAP-before-SMTP ledger: which client addresses logged in to a
//! mailbox recently. An old way to let roaming users relay without SMTP
//! AUTH (the `pop-before-smtp` daemons that fed Postfix an access map, or
//! Dovecot's `postlogin` scripts): a successful POP3 or IMAP login from an
//! address lets that address relay for `pop_before_smtp_timeout`.
//!
//! The POP3 and IMAP sessions [`record`](Ledger::record) their logins; the
//! SMTP session asks [`contains`](Ledger::contains) and hands the answer to
//! the restriction lists as the `pop-before-smtp` request attribute, which
//! the `permit_pop_before_smtp` plugin turns into a permit.
//!
//! Memory is bounded: expired entries are dropped when the ledger is full,
//! and if none has expired the oldest half goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Addresses remembered at most.
pub const MAX_ADDRESSES: usize = 10_000;

/// Recent mailbox logins by client address.
#[derive(Debug)]
pub struct Ledger {
    /// `pop_before_smtp_timeout` (10 minutes) in milliseconds: how long a
    /// login counts. A reload may change it ([`Ledger::set_timeout`]).
    timeout_ms: AtomicU64,
    logins: Mutex<HashMap<IpAddr, Instant>>,
}

impl Ledger {
    /// A ledger whose logins count for `timeout`.
    pub fn new(timeout: Duration) -> Ledger {
        Ledger {
            timeout_ms: AtomicU64::new(millis(timeout)),
            logins: Mutex::new(HashMap::new()),
        }
    }

    /// How long a login counts from now on, logins already recorded
    /// included (`pop_before_smtp_timeout`, at a reload).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms.store(millis(timeout), Ordering::Relaxed);
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    /// Records a successful login from `client` now.
    pub fn record(&self, client: IpAddr) {
        self.record_at(client.to_canonical(), Instant::now());
    }

    fn record_at(&self, client: IpAddr, now: Instant) {
        let mut map = self
            .logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&client) {
            let timeout = self.timeout();
            map.retain(|_, at| now.duration_since(*at) < timeout);
            if map.len() >= MAX_ADDRESSES {
                // All fresh: forget the older half rather than grow.
                let mut times: Vec<Instant> = map.values().copied().collect();
                times.sort_unstable();
                let cut = times[times.len() / 2];
                map.retain(|_, at| *at > cut);
            }
        }
        map.insert(client, now);
    }

    /// Whether `client` logged in within the timeout.
    pub fn contains(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        let map = self
            .logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&client)
            .is_some_and(|at| at.elapsed() < self.timeout())
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A timeout in whole milliseconds, saturating (a config value of years
/// is still "forever" for a login).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_login_counts_until_the_timeout() {
        let ledger = Ledger::new(Duration::from_millis(200));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!ledger.contains(ip));
        ledger.record(ip);
        assert!(ledger.contains(ip));
        // The same client over an IPv4-mapped IPv6 socket.
        assert!(ledger.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!ledger.contains("192.0.2.2".parse().unwrap()));
        std::thread::sleep(Duration::from_millis(250));
        assert!(!ledger.contains(ip));
    }

    /// A reload's shorter timeout ends a login recorded before it.
    #[test]
    fn a_new_timeout_applies_to_logins_already_recorded() {
        let ledger = Ledger::new(Duration::from_secs(3600));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        ledger.record(ip);
        std::thread::sleep(Duration::from_millis(20));
        assert!(ledger.contains(ip));
        ledger.set_timeout(Duration::from_millis(10));
        assert!(!ledger.contains(ip));
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded() {
        let ledger = Ledger::new(Duration::from_secs(600));
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            let at = now + Duration::from_millis(u64::from(i));
            ledger.record_at(IpAddr::from(i.to_be_bytes()), at);
        }
        assert!(ledger.len() <= MAX_ADDRESSES);
        // The newest are kept.
        let last = IpAddr::from((MAX_ADDRESSES as u32 + 49).to_be_bytes());
        assert!(ledger.logins.lock().unwrap().contains_key(&last));
    }
}
