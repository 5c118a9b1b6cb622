//! The trace header every SMTP server prepends (RFC 5321 §4.4), in
//! Postfix's layout, and the RFC 5322 §3.3 date it ends with.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::SystemTime;

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
    /// The AUTH user, shown as `(Authenticated sender: user)` when
    /// `smtpd_sasl_authenticated_header` is set.
    pub(crate) sasl_username: Option<&'a str>,
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
    ///     (Authenticated sender: user)
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
        let auth = self.sasl_username.map_or(String::new(), |user| {
            format!(
                "\t(Authenticated sender: {})\r\n",
                crate::codec::printable(user)
            )
        });
        let mut h = format!(
            "Received: from {helo} ({} [{ip}])\r\n{tls}{auth}\tby {} (Postern) with {} id {}",
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
/// comment.
pub(crate) fn rfc5322_date(t: SystemTime) -> String {
    postern_mail::date::rfc5322(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
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
            sasl_username: None,
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
            sasl_username: Some("alice@example.org"),
        };
        assert_eq!(
            t.header(),
            "Received: from client.example (unknown [192.0.2.1])\r\n\
             \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\
             \t(No client certificate requested)\r\n\
             \t(Authenticated sender: alice@example.org)\r\n\
             \tby mx.example.org (Postern) with ESMTPSA id 3F2A1B9C;\r\n\
             \tTue, 14 Nov 2023 22:13:20 +0000 (UTC)\r\n"
        );
    }
}
