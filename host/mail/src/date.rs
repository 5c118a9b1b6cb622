//! Dates as mail shows them, in UTC: RFC 5322 §3.3 for `Date:`,
//! `Received:` and `Arrival-Date:`, and C's `asctime` form for mbox
//! `From ` lines and mailq. One implementation for every crate; no time
//! zone database is read: Postern speaks UTC, as `(UTC)` says.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time. Times before 1970 are shown as the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year, such as 2026.
    pub year: u64,
    /// The month, 1 to 12.
    pub month: u64,
    /// The day of the month, 1 to 31.
    pub day: u64,
    /// The day of the week, 0 = Thursday (1970-01-01 was one).
    weekday: u64,
    /// Hours, 0 to 23.
    pub hour: u64,
    /// Minutes, 0 to 59.
    pub minute: u64,
    /// Seconds, 0 to 59.
    pub second: u64,
}

impl Civil {
    /// Breaks `t` down, with Howard Hinnant's `civil_from_days`
    /// (proleptic Gregorian calendar).
    pub fn from_time(t: SystemTime) -> Civil {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + u64::from(month <= 2),
            month,
            day,
            weekday: days % 7,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    fn weekday_name(&self) -> &'static str {
        DAYS[usize::try_from(self.weekday).unwrap_or_default() % 7]
    }

    fn month_name(&self) -> &'static str {
        MONTHS[usize::try_from(self.month.saturating_sub(1)).unwrap_or_default() % 12]
    }
}

/// `Thu, 01 Jan 1970 00:00:00 +0000 (UTC)` (RFC 5322 §3.3, with Postfix's
/// comment).
pub fn rfc5322(t: SystemTime) -> String {
    let c = Civil::from_time(t);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000 (UTC)",
        c.weekday_name(),
        c.day,
        c.month_name(),
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// `Thu Jan  1 00:00:00 1970`, C's `asctime` form (mbox `From ` lines;
/// its first 19 columns are mailq's arrival time).
pub fn asctime(t: SystemTime) -> String {
    let c = Civil::from_time(t);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        c.weekday_name(),
        c.month_name(),
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc5322(at(0)), "Thu, 01 Jan 1970 00:00:00 +0000 (UTC)");
        assert_eq!(
            rfc5322(at(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322(at(1_795_443_816)),
            "Mon, 23 Nov 2026 14:23:36 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322(at(4_102_444_799)),
            "Thu, 31 Dec 2099 23:59:59 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322(UNIX_EPOCH - Duration::from_secs(5)),
            "Thu, 01 Jan 1970 00:00:00 +0000 (UTC)"
        );
        assert_eq!(asctime(at(0)), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(at(1_795_443_816)), "Mon Nov 23 14:23:36 2026");
    }

    #[test]
    fn every_day_follows_the_last() {
        // 600 years day by day: the calendar never skips or repeats.
        let mut last = Civil::from_time(at(0));
        for day in 1..(600 * 366) {
            let c = Civil::from_time(at(day * 86_400));
            let next_day = c.day == last.day + 1 && c.month == last.month && c.year == last.year;
            let next_month = c.day == 1
                && (c.month == last.month + 1 && c.year == last.year
                    || c.month == 1 && last.month == 12 && c.year == last.year + 1);
            assert!(next_day || next_month, "{last:?} -> {c:?}");
            last = c;
        }
    }
}
