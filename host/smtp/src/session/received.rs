//! The trace header every SMTP server prepends (RFC 5321 §4.4), in
//! Postfix's layout, and the RFC 5322 §3.3 date it ends with.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use postern_mail::{Address, QueueId};

/// What goes into one Received header.
#[derive(Debug)]
pub(crate) struct Trace<'a> {
    /// HELO/EHLO argument; the client name stands in when there was none.
    pub(crate) helo: Option<&'a str>,
    pub(crate) client_name: &'a str,
    pub(crate) client_ip: IpAddr,
    /// `myhostname`.
    pub(crate) hostname: &'a str,
    /// `SMTP`, `ESMTP`, or with TLS and AUTH `ESMTPS`, `ESMTPA`,
    /// `ESMTPSA` (RFC 5321 §4.4 "with" protocol, RFC 3848).
    pub(crate) protocol: &'a str,
    /// `TLSv1.3 with cipher ... (256/256 bits)` when the session is
    /// encrypted, shown in Postfix's `(using ...)` comment.
    pub(crate) tls: Option<String>,
    pub(crate) id: &'a QueueId,
    /// Named in `for <...>` only when it is the one recipient, as Postfix
    /// does, so that a copy to many does not list them all.
    pub(crate) recipient: Option<&'a Address>,
    pub(crate) now: SystemTime,
}

impl Trace<'_> {
    /// The header with its folding (each continuation line starts with a
    /// tab) and final CRLF:
    ///
    /// ```text
    /// Received: from helo (name [ip])
    ///     (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
    ///     (No client certificate requested)
    ///     by hostname (Postern) with ESMTPS id ID
    ///     for <rcpt>; Sun, 23 Nov 2025 13:13:00 +0000 (UTC)
    /// ```
    ///
    /// With several recipients the last line is `...id ID;` and the date
    /// goes on a line of its own.
    pub(crate) fn header(&self) -> String {
        let ip = match self.client_ip {
            // RFC 5321 §4.1.3 address literal.
            IpAddr::V6(v6) => format!("IPv6:{v6}"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let helo = self.helo.unwrap_or(self.client_name);
        let tls = self.tls.as_ref().map_or(String::new(), |t| {
            format!("\t(using {t})\r\n\t(No client certificate requested)\r\n")
        });
        let mut h = format!(
            "Received: from {helo} ({} [{ip}])\r\n{tls}\tby {} (Postern) with {} id {}",
            self.client_name, self.hostname, self.protocol, self.id
        );
        let date = rfc5322_date(self.now);
        // Writing to a String cannot fail.
        let _ = match self.recipient {
            Some(r) => write!(h, "\r\n\tfor <{r}>; {date}\r\n"),
            None => write!(h, ";\r\n\t{date}\r\n"),
        };
        h
    }
}

/// `t` as an RFC 5322 §3.3 date-time in UTC, with Postfix's `(UTC)`
/// comment: `Thu, 01 Jan 1970 00:00:00 +0000 (UTC)`. Times before 1970
/// are shown as the epoch.
pub(crate) fn rfc5322_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000 (UTC)",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01, in
/// the proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(at(0)), "Thu, 01 Jan 1970 00:00:00 +0000 (UTC)");
        assert_eq!(
            rfc5322_date(at(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322_date(at(1_700_000_000)),
            "Tue, 14 Nov 2023 22:13:20 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322_date(at(4_102_444_799)),
            "Thu, 31 Dec 2099 23:59:59 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322_date(UNIX_EPOCH - Duration::from_secs(5)),
            "Thu, 01 Jan 1970 00:00:00 +0000 (UTC)"
        );
    }

    #[test]
    fn every_day_round_trips() {
        // Walk 600 years day by day and check the calendar never skips.
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..219_000 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                (d, m) = (1, m + 1);
                if m > 12 {
                    (m, y) = (1, y + 1);
                }
            }
        }
    }

    #[test]
    fn received_header() {
        let id = QueueId::parse("3F2A1B9C").unwrap();
        let rcpt = Address::parse("u@example.org").unwrap();
        let mut t = Trace {
            helo: Some("client.example"),
            client_name: "unknown",
            client_ip: "192.0.2.1".parse().unwrap(),
            hostname: "mx.example.org",
            protocol: "ESMTP",
            id: &id,
            recipient: Some(&rcpt),
            now: at(1_700_000_000),
            tls: None,
        };
        assert_eq!(
            t.header(),
            "Received: from client.example (unknown [192.0.2.1])\r\n\
             \tby mx.example.org (Postern) with ESMTP id 3F2A1B9C\r\n\
             \tfor <u@example.org>; Tue, 14 Nov 2023 22:13:20 +0000 (UTC)\r\n"
        );
        t.recipient = None;
        t.helo = None;
        t.client_ip = "2001:db8::1".parse().unwrap();
        t.protocol = "SMTP";
        assert_eq!(
            t.header(),
            "Received: from unknown (unknown [IPv6:2001:db8::1])\r\n\
             \tby mx.example.org (Postern) with SMTP id 3F2A1B9C;\r\n\
             \tTue, 14 Nov 2023 22:13:20 +0000 (UTC)\r\n"
        );
    }

    #[test]
    fn received_header_with_tls() {
        let id = QueueId::parse("3F2A1B9C").unwrap();
        let t = Trace {
            helo: Some("client.example"),
            client_name: "unknown",
            client_ip: "192.0.2.1".parse().unwrap(),
            hostname: "mx.example.org",
            protocol: "ESMTPSA",
            id: &id,
            recipient: None,
            now: at(1_700_000_000),
            tls: Some("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)".to_owned()),
        };
        assert_eq!(
            t.header(),
            "Received: from client.example (unknown [192.0.2.1])\r\n\
             \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\
             \t(No client certificate requested)\r\n\
             \tby mx.example.org (Postern) with ESMTPSA id 3F2A1B9C;\r\n\
             \tTue, 14 Nov 2023 22:13:20 +0000 (UTC)\r\n"
        );
    }
}
