//! The dates IMAP speaks (RFC 3501 §9): `date` (`1-Feb-1994`) for SEARCH,
//! `date-time` (`"01-Feb-1994 08:30:00 +0100"`) for INTERNALDATE and
//! APPEND, and RFC 5322 `Date:` headers for SEARCH SENTBEFORE and kin.
//! Civil-date arithmetic is Howard Hinnant's `days_from_civil`, so no
//! calendar crate is needed for these few conversions.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number: (year, month 1-12, day 1-31).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn month(name: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// `1-Feb-1994` as a day number.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let d: u32 = parts.next()?.trim().parse().ok()?;
    let m = month(parts.next()?)?;
    let y: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `01-Feb-1994 08:30:00 +0100` as seconds since the epoch (UTC).
pub fn parse_date_time(text: &str) -> Option<i64> {
    let mut parts = text.trim_start().split(' ');
    let day = parse_date(parts.next()?)?;
    let secs = parse_hms(parts.next()?)?;
    let zone = parse_zone(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some(day * 86_400 + secs - zone)
}

fn parse_hms(text: &str) -> Option<i64> {
    let mut it = text.split(':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let s: i64 = it.next().map_or(Some(0), |s| s.parse().ok())?;
    // `then`, not `then_some`: the sum must not be computed for an hour
    // of 99999999999999 (an overflow, found by the fuzzer), and a sign
    // (`-5:-1:-1`) is no time of day.
    let ok = (0..24).contains(&h) && (0..60).contains(&m) && (0..=60).contains(&s);
    (ok && it.next().is_none()).then(|| h * 3600 + m * 60 + s)
}

/// `+0100` as seconds east of UTC; RFC 5322 §4.3 obsolete names too.
fn parse_zone(text: &str) -> Option<i64> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => {
            return match text.to_ascii_uppercase().as_str() {
                "UT" | "GMT" | "Z" => Some(0),
                "EDT" => Some(-4 * 3600),
                "EST" | "CDT" => Some(-5 * 3600),
                "CST" | "MDT" => Some(-6 * 3600),
                "MST" | "PDT" => Some(-7 * 3600),
                "PST" => Some(-8 * 3600),
                _ => Some(0),
            };
        }
    };
    let digits = &text[1..];
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(sign * ((n / 100) * 3600 + (n % 100) * 60))
}

/// An RFC 5322 `Date:` value (`Tue, 1 Jul 2003 10:52:37 +0200`), leniently.
pub fn parse_rfc5322(text: &str) -> Option<i64> {
    let text = text.split('(').next().unwrap_or(text);
    let text = match text.split_once(',') {
        Some((_, rest)) => rest,
        None => text,
    };
    let mut words = text.split_whitespace();
    let d: u32 = words.next()?.parse().ok()?;
    let m = month(words.next()?)?;
    let mut y: i64 = words.next()?.parse().ok()?;
    // RFC 5322 §4.3: two-digit years.
    if y < 50 {
        y += 2000;
    } else if y < 1000 {
        y += 1900;
    }
    let secs = words.next().and_then(parse_hms).unwrap_or(0);
    let zone = words.next().and_then(parse_zone).unwrap_or(0);
    Some(days_from_civil(y, m, d) * 86_400 + secs - zone)
}

/// INTERNALDATE's `date-time`, in UTC: `01-Feb-1994 07:30:00 +0000`.
pub fn format_date_time(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0).min(11)];
    format!(
        "{d:02}-{month}-{y:04} {:02}:{:02}:{:02} +0000",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Found by the fuzzer (fuzz/corpus/imap_command/crash-huge-hour).
    #[test]
    fn huge_or_signed_times_are_refused() {
        assert_eq!(
            parse_date_time("01-Feb-1994 99999999999999999:00:00 +0000"),
            None
        );
        assert_eq!(parse_date_time("01-Feb-1994 -5:-1:-1 +0000"), None);
        assert!(parse_date_time("01-Feb-1994 00:00:60 +0000").is_some());
    }

    #[test]
    fn round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(parse_date("1-Feb-1994"), Some(days_from_civil(1994, 2, 1)));
        assert_eq!(parse_date("31-Foo-1994"), None);
        let t = parse_date_time("01-Feb-1994 08:30:00 +0100").unwrap();
        assert_eq!(format_date_time(t), "01-Feb-1994 07:30:00 +0000");
        assert_eq!(parse_date_time("01-Feb-1994 25:30:00 +0100"), None);
        assert_eq!(
            parse_rfc5322("Tue, 1 Feb 1994 08:30:00 +0100 (CET)"),
            Some(t)
        );
        assert_eq!(format_date_time(-1), "31-Dec-1969 23:59:59 +0000");
    }
}
