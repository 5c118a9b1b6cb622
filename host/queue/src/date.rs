//! Dates as mail shows them, in UTC: RFC 5322 §3.3 for `Date:` and
//! `Arrival-Date:`, and the short form `postern queue list` prints (as
//! Postfix's mailq). No time-zone database is read: the queue speaks UTC.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time.
struct Civil {
    year: i64,
    month: usize,
    day: i64,
    weekday: usize,
    hour: u64,
    minute: u64,
    second: u64,
}

fn civil(t: SystemTime) -> Civil {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let days = i64::try_from(secs / 86_400).unwrap_or_default();
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month: usize::try_from(month - 1).unwrap_or_default(),
        day,
        weekday: usize::try_from(days.rem_euclid(7)).unwrap_or_default(),
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
    }
}

/// `Mon, 23 Nov 2026 14:23:36 +0000` (RFC 5322 §3.3).
pub(crate) fn rfc5322(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[c.weekday], c.day, MONTHS[c.month], c.year, c.hour, c.minute, c.second
    )
}

/// `Mon Nov 23 14:23:36`, the 20-column arrival time of mailq.
pub(crate) fn mailq(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02}",
        DAYS[c.weekday], MONTHS[c.month], c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn known_dates() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc5322(t(0)), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322(t(1_795_443_816)), "Mon, 23 Nov 2026 14:23:36 +0000");
        assert_eq!(rfc5322(t(951_782_400)), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(mailq(t(1_795_443_816)), "Mon Nov 23 14:23:36");
        assert_eq!(mailq(t(0)), "Thu Jan  1 00:00:00");
    }
}
