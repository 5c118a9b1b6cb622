//! Dates as mail shows them, in UTC: RFC 5322 §3.3 for `Date:` and
//! `Arrival-Date:`, and the short form `postern queue list` prints (as
//! Postfix's mailq). No time-zone database is read: the queue speaks UTC.

use std::time::SystemTime;

/// `Mon, 23 Nov 2026 14:23:36 +0000 (UTC)` (RFC 5322 §3.3).
pub(crate) fn rfc5322(t: SystemTime) -> String {
    postern_mail::date::rfc5322(t)
}

/// `Mon Nov 23 14:23:36`, the 20-column arrival time of mailq: asctime
/// without the year.
pub(crate) fn mailq(t: SystemTime) -> String {
    let mut s = postern_mail::date::asctime(t);
    s.truncate(19);
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn known_dates() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(
            rfc5322(t(1_795_443_816)),
            "Mon, 23 Nov 2026 14:23:36 +0000 (UTC)"
        );
        assert_eq!(mailq(t(1_795_443_816)), "Mon Nov 23 14:23:36");
        assert_eq!(mailq(t(0)), "Thu Jan  1 00:00:00");
    }
}
