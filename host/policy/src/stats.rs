//! Counters per plugin: calls, instances made, failures, verdicts by kind
//! and a latency histogram, kept with relaxed atomics on the request path (a few adds
//! per call, no lock) and read as [`PluginStats`] through
//! [`crate::Snapshot::stats`]. They live as long as the snapshot: a
//! reload starts them again, as it starts the failure counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postern_mail::Verdict;

/// The verdict kinds counted, in the order of the WIT `verdict` variant;
/// `other` for a kind a later mail crate adds.
pub const VERDICT_KINDS: [&str; 13] = [
    "dunno",
    "permit",
    "reject",
    "defer",
    "defer_if_permit",
    "defer_if_reject",
    "hold",
    "discard",
    "prepend",
    "redirect",
    "bcc",
    "warn",
    "other",
];

/// Latency buckets: bucket `i` counts calls that took less than `2^i` µs
/// and at least half that; the last one everything slower (2^23 µs is
/// 8.4 s, far past any deadline). A factor of two is coarse but enough to
/// tell 20 µs from 2 ms, for 24 atomic words per plugin.
const BUCKETS: usize = 24;

/// The live counters of one plugin, shared by every entry naming it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    /// Instances made (instantiation and `init`); the other calls went to
    /// an instance already made ([`crate::reuse`]).
    instances: AtomicU64,
    /// Requests answered with a kept verdict, without a call
    /// ([`crate::verdicts`]).
    cached: AtomicU64,
    failures: AtomicU64,
    verdicts: [AtomicU64; VERDICT_KINDS.len()],
    latency: [AtomicU64; BUCKETS],
    /// Every call's time added up, in µs (a histogram's `_sum`).
    total_micros: AtomicU64,
}

impl Counters {
    /// Counts one call that took `took` and gave `verdict` (`None`: it
    /// failed, and the entry's `on_error` answered).
    pub(crate) fn record(&self, took: Duration, verdict: Option<&Verdict>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match verdict {
            Some(v) => self.verdicts[kind(v)].fetch_add(1, Ordering::Relaxed),
            None => self.failures.fetch_add(1, Ordering::Relaxed),
        };
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.total_micros.fetch_add(micros, Ordering::Relaxed);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.latency[bucket.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request answered with a kept verdict: no call, but a
    /// verdict like any other.
    pub(crate) fn cached(&self, verdict: &Verdict) {
        self.cached.fetch_add(1, Ordering::Relaxed);
        self.verdicts[kind(verdict)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one instance made.
    pub(crate) fn instantiated(&self) {
        self.instances.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counters now.
    pub(crate) fn read(&self, name: &str) -> PluginStats {
        let latency: Vec<u64> = self
            .latency
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        PluginStats {
            name: name.to_owned(),
            calls: self.calls.load(Ordering::Relaxed),
            instances: self.instances.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            verdicts: VERDICT_KINDS
                .iter()
                .zip(&self.verdicts)
                .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            p50: quantile(&latency, 50),
            p99: quantile(&latency, 99),
            latency,
            total: Duration::from_micros(self.total_micros.load(Ordering::Relaxed)),
        }
    }
}

/// What one plugin has done in the current snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginStats {
    /// The plugin's name.
    pub name: String,
    /// Calls made (each a `check`, with an instantiation and `init`
    /// first when no instance was at hand).
    pub calls: u64,
    /// Instances made, each with an instantiation and `init`: as many as
    /// the calls' transactions for a plugin that does not ask for reuse,
    /// far fewer for one that does (`host.reuse-instances`).
    pub instances: u64,
    /// Requests answered with a verdict kept from an earlier call, with
    /// no call (`host.cache-verdicts`); not counted in `calls`.
    pub cached: u64,
    /// Calls that failed (trap, deadline, limit, bad answer): the entry's
    /// `on_error` answered.
    pub failures: u64,
    /// Verdicts by kind ([`VERDICT_KINDS`]), those that occurred, kept
    /// ones included.
    pub verdicts: Vec<(&'static str, u64)>,
    /// The median call time, as the upper bound of its histogram bucket
    /// (within a factor of two); `None` before the first call.
    pub p50: Option<Duration>,
    /// The 99th percentile, likewise.
    pub p99: Option<Duration>,
    /// The latency histogram: `latency[i]` calls took less than 2^i µs
    /// (and at least half that; the last bucket also holds all slower
    /// ones), for the Prometheus endpoint.
    pub latency: Vec<u64>,
    /// Every call's time added up.
    pub total: Duration,
}

fn kind(v: &Verdict) -> usize {
    match v {
        Verdict::Dunno => 0,
        Verdict::Permit => 1,
        Verdict::Reject(_) => 2,
        Verdict::Defer(_) => 3,
        Verdict::DeferIfPermit(_) => 4,
        Verdict::DeferIfReject(_) => 5,
        Verdict::Hold(_) => 6,
        Verdict::Discard(_) => 7,
        Verdict::Prepend(_) => 8,
        Verdict::Redirect(_) => 9,
        Verdict::Bcc(_) => 10,
        Verdict::Warn(_) => 11,
        _ => 12,
    }
}

/// The upper bound of the bucket holding the `pct`th percentile call.
fn quantile(buckets: &[u64], pct: u64) -> Option<Duration> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the call, 1-based, rounded up.
    let rank = (total * pct).div_ceil(100).max(1);
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(Duration::from_micros(1 << i));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_verdicts_failures_and_quantiles() {
        let c = Counters::default();
        assert_eq!(c.read("p").p50, None);
        for _ in 0..98 {
            c.record(Duration::from_micros(20), Some(&Verdict::Dunno));
        }
        c.record(Duration::from_millis(3), Some(&Verdict::Permit));
        c.record(Duration::from_millis(250), None);
        let s = c.read("p");
        assert_eq!((s.calls, s.failures), (100, 1));
        assert_eq!(s.verdicts, [("dunno", 98), ("permit", 1)]);
        // 20 µs is in [16, 32): bucket 5.
        assert_eq!(s.p50, Some(Duration::from_micros(32)));
        assert_eq!(s.p99, Some(Duration::from_micros(4096)));
    }
}
