//! The per-recipient log line, in the maillog shape pflogsumm parses:
//! `ID: to=<u@d>, relay=local, delay=0.05, delays=0.01/0/0/0.04,
//! dsn=2.0.0, status=sent (delivered to maildir)`.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use postern_mail::{QueueId, Recipient};

use crate::status::RecipientStatus;

/// The four times behind `delay=` and `delays=a/b/c/d`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delays {
    /// When the message arrived.
    pub arrival: SystemTime,
    /// When this delivery run took it from the active queue.
    pub active: SystemTime,
    /// When the agent was handed this recipient.
    pub start: SystemTime,
    /// When the agent answered.
    pub end: SystemTime,
}

impl Delays {
    /// `delay=` and `delays=` as Postfix writes them: a = arrival to the
    /// active queue (includes waiting while deferred), b = in the queue
    /// manager, c = connection setup (not measured yet: 0), d = the agent's
    /// own time. Appended to `out`.
    fn render(&self, out: &mut String) {
        let since = |later: SystemTime, earlier: SystemTime| {
            later.duration_since(earlier).unwrap_or_default()
        };
        out.push_str("delay=");
        push_seconds(out, since(self.end, self.arrival));
        out.push_str(", delays=");
        push_seconds(out, since(self.active, self.arrival));
        out.push('/');
        push_seconds(out, since(self.start, self.active));
        out.push_str("/0/");
        push_seconds(out, since(self.end, self.start));
    }
}

/// A duration as Postfix logs one: two decimals under a second, one under
/// ten, none above, trailing zeros dropped (`0`, `0.05`, `1.3`, `42`).
#[cfg(test)]
pub(crate) fn seconds(d: Duration) -> String {
    let mut out = String::new();
    push_seconds(&mut out, d);
    out
}

/// [`seconds`], appended to `out` (one line per delivery: no string of
/// its own per number).
fn push_seconds(out: &mut String, d: Duration) {
    let start = out.len();
    let s = d.as_secs_f64();
    // Writing to a String cannot fail.
    let _ = if s >= 10.0 {
        write!(out, "{s:.0}")
    } else if s >= 1.0 {
        write!(out, "{s:.1}")
    } else {
        write!(out, "{s:.2}")
    };
    if out[start..].contains('.') {
        let kept = out[start..]
            .trim_end_matches('0')
            .trim_end_matches('.')
            .len();
        out.truncate(start + kept);
    }
}

/// The line for one recipient, without the `postern/agent:` prefix.
pub(crate) fn recipient_line(
    id: &QueueId,
    recipient: &Recipient,
    relay: &str,
    delays: &Delays,
    status: &RecipientStatus,
) -> String {
    let mut line = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = write!(line, "{id}: to=<{}>, ", recipient.address);
    if recipient.original != recipient.address {
        let _ = write!(line, "orig_to=<{}>, ", recipient.original);
    }
    line.push_str("relay=");
    line.push_str(relay);
    line.push_str(", ");
    delays.render(&mut line);
    if let Some((dsn, detail)) = status.dsn_detail() {
        let _ = write!(line, ", dsn={dsn}, status={} (", status.word());
        push_one_line(&mut line, detail);
        line.push(')');
    }
    line
}

/// Agent text may hold a remote server's multi-line reply: one log line
/// per event, so control characters become spaces.
fn push_one_line(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }));
}

/// One recipient's outcome as the queue reports it, from the delivery
/// loop or at once: counted in `postern_deliveries_total` by agent and
/// status, and logged under the agent ([`recipient_line`]).
pub(crate) fn report(
    agent: &'static str,
    id: &QueueId,
    recipient: &Recipient,
    relay: &str,
    delays: &Delays,
    status: &RecipientStatus,
) {
    metrics::counter!(
        "postern_deliveries_total",
        "transport" => agent,
        "status" => status.word(),
    )
    .increment(1);
    log_delivery(agent, &recipient_line(id, recipient, relay, delays, status));
}

/// Logs `line` under `postern/<agent>`. `tracing` targets are static, so
/// the agent names Postfix logs under are spelled out; another agent logs
/// as `postern/delivery`.
fn log_delivery(agent: &str, line: &str) {
    match agent {
        "local" => tracing::info!(target: "postern/local", "{line}"),
        "virtual" => tracing::info!(target: "postern/virtual", "{line}"),
        "smtp" => tracing::info!(target: "postern/smtp", "{line}"),
        "lmtp" => tracing::info!(target: "postern/lmtp", "{line}"),
        "pipe" => tracing::info!(target: "postern/pipe", "{line}"),
        _ => tracing::info!(target: "postern/delivery", "{line}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::{Address, EnhancedCode};

    use super::*;

    #[test]
    fn seconds_like_postfix() {
        let ms = Duration::from_millis;
        assert_eq!(seconds(ms(0)), "0");
        assert_eq!(seconds(ms(2)), "0");
        assert_eq!(seconds(ms(50)), "0.05");
        assert_eq!(seconds(ms(100)), "0.1");
        assert_eq!(seconds(ms(1300)), "1.3");
        assert_eq!(seconds(ms(2000)), "2");
        assert_eq!(seconds(ms(42_400)), "42");
    }

    #[test]
    fn line_shape() {
        let id = QueueId::parse("3F2A1B3F2A1B").unwrap();
        let t0 = SystemTime::UNIX_EPOCH;
        let delays = Delays {
            arrival: t0,
            active: t0 + Duration::from_millis(10),
            start: t0 + Duration::from_millis(10),
            end: t0 + Duration::from_millis(50),
        };
        let mut rcpt = Recipient::new(Address::parse("u@d.org").unwrap());
        let status = RecipientStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: "delivered to maildir".to_owned(),
        };
        assert_eq!(
            recipient_line(&id, &rcpt, "local", &delays, &status),
            "3F2A1B3F2A1B: to=<u@d.org>, relay=local, delay=0.05, delays=0.01/0/0/0.04, \
             dsn=2.0.0, status=sent (delivered to maildir)"
        );
        rcpt.original = Address::parse("alias@d.org").unwrap();
        let bounced = RecipientStatus::Bounced {
            dsn: EnhancedCode::new(5, 1, 1),
            detail: "unknown user: \"u\"\r\nx".to_owned(),
        };
        assert_eq!(
            recipient_line(&id, &rcpt, "local", &delays, &bounced),
            "3F2A1B3F2A1B: to=<u@d.org>, orig_to=<alias@d.org>, relay=local, delay=0.05, \
             delays=0.01/0/0/0.04, dsn=5.1.1, status=bounced (unknown user: \"u\"  x)"
        );
    }
}
