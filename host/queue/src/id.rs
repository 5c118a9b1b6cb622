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
    // `{stamp:014X}{pid:06X}`, written by hand: one id per message.
    let mut text = [0u8; 22];
    let stamp_len = hex(stamp, 14, &mut text);
    let len = stamp_len + hex(u64::from(pid), 6, &mut text[stamp_len..]);
    // Invariant: 14 to 16 hex digits of a u64 and 6 of the pid make 20 to
    // 22 ASCII alphanumerics, which `QueueId::parse` (6 to 32) always
    // accepts.
    #[allow(clippy::expect_used)]
    let text = std::str::from_utf8(&text[..len]).expect("hex digits are ASCII");
    #[allow(clippy::expect_used)]
    QueueId::parse(text).expect("a 20-22 hex digit id is valid")
}

/// Writes `n` in uppercase hex, zero-padded to at least `width` digits,
/// at the start of `out` (which must have room: 16 digits at most);
/// returns the number of digits.
fn hex(n: u64, width: usize, out: &mut [u8]) -> usize {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let significant = (64 - n.leading_zeros() as usize).div_ceil(4);
    let len = significant.max(width);
    for (i, slot) in out[..len].iter_mut().enumerate() {
        let shift = 4 * (len - 1 - i);
        // A nibble indexes DIGITS; a shift of 64 or more would overflow,
        // and only leading zero padding reaches it.
        *slot = match n.checked_shr(u32::try_from(shift).unwrap_or(u32::MAX)) {
            Some(v) => DIGITS[(v & 0xf) as usize],
            None => b'0',
        };
    }
    len
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
    fn hex_matches_format() {
        for (n, width) in [
            (0u64, 14),
            (0x1234, 6),
            (u64::MAX, 14),
            (0xff_ffff, 6),
            (1 << 56, 14),
        ] {
            let mut out = [0u8; 22];
            let len = hex(n, width, &mut out);
            assert_eq!(&out[..len], format!("{n:0width$X}").as_bytes());
        }
    }

    #[test]
    fn increasing() {
        let a = next_id();
        let b = next_id();
        assert!(a < b);
    }
}
