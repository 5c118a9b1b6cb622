//! Queue ids: unique for the life of a queue directory, across restarts
//! and concurrent sessions.
//!
//! An id is 20 uppercase hex digits: 14 of microseconds since the Unix
//! epoch, then 6 of the process id. Within a process the microseconds are
//! made strictly increasing (two ids asked for in the same microsecond, or
//! after the clock stepped back, take the next free value), so the time
//! part doubles as the counter; the pid tells apart processes sharing a
//! queue directory (the daemon and `postern sendmail`), and the time tells
//! apart restarts. Ids sort in arrival order, which `postern queue list`
//! shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postern_mail::QueueId;

/// The time part of the last id this process handed out.
static LAST: AtomicU64 = AtomicU64::new(0);

/// A fresh queue id.
pub fn next_id() -> QueueId {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let pick = |last: u64| now.max(last.saturating_add(1));
    // fetch_update returns the value it replaced; `pick` of it is ours.
    let stamp = match LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| Some(pick(l))) {
        Ok(prev) | Err(prev) => pick(prev),
    };
    // Linux pids fit in 22 bits (pid_max ≤ 2^22); 24 are kept.
    let pid = std::process::id() & 0x00ff_ffff;
    let text = format!("{stamp:014X}{pid:06X}");
    // Invariant: 14 to 16 hex digits of a u64 and 6 of the pid make 20 to
    // 22 alphanumerics, which `QueueId::parse` (6 to 32) always accepts.
    #[allow(clippy::expect_used)]
    QueueId::parse(&text).expect("a 20-22 hex digit id is valid")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn shape() {
        let id = next_id();
        assert_eq!(id.as_str().len(), 20);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        );
    }

    #[test]
    fn unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..5000).map(|_| next_id()).collect::<Vec<_>>()))
            .collect();
        let mut all = HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len(), 20_000);
    }

    #[test]
    fn increasing() {
        let a = next_id();
        let b = next_id();
        assert!(a < b);
    }
}
