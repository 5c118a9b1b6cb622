//! What became of each recipient, as the queue file remembers it, and the
//! escaping that keeps attacker-chosen text inside one record.

use std::fmt;

use postern_mail::{DeliveryStatus, EnhancedCode};

/// The state of one recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecipientStatus {
    /// Not tried yet.
    Pending,
    /// Tried and failed for now; tried again after the backoff.
    Deferred {
        /// The 4.x.x code.
        dsn: EnhancedCode,
        /// Why, as the agent said it.
        detail: String,
    },
    /// Delivered. Final.
    Sent {
        /// The code, normally 2.0.0.
        dsn: EnhancedCode,
        /// What the agent did: `delivered to maildir`.
        detail: String,
    },
    /// Failed for good. Final.
    Bounced {
        /// The 5.x.x code.
        dsn: EnhancedCode,
        /// Why.
        detail: String,
    },
    /// Still deferred when the message outlived `maximal_queue_lifetime`.
    /// Final.
    Expired {
        /// The code of the last deferral.
        dsn: EnhancedCode,
        /// The reason of the last deferral.
        detail: String,
    },
}

impl RecipientStatus {
    /// Whether nothing more will be tried for this recipient.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RecipientStatus::Sent { .. }
                | RecipientStatus::Bounced { .. }
                | RecipientStatus::Expired { .. }
        )
    }

    /// The word Postfix logs after `status=`, and the queue file records.
    pub fn word(&self) -> &'static str {
        match self {
            RecipientStatus::Pending => "pending",
            RecipientStatus::Deferred { .. } => "deferred",
            RecipientStatus::Sent { .. } => "sent",
            RecipientStatus::Bounced { .. } => "bounced",
            RecipientStatus::Expired { .. } => "expired",
        }
    }

    /// The code and reason, for every state but `Pending`.
    pub fn dsn_detail(&self) -> Option<(EnhancedCode, &str)> {
        match self {
            RecipientStatus::Pending => None,
            RecipientStatus::Deferred { dsn, detail }
            | RecipientStatus::Sent { dsn, detail }
            | RecipientStatus::Bounced { dsn, detail }
            | RecipientStatus::Expired { dsn, detail } => Some((*dsn, detail)),
        }
    }

    /// Builds a state from its record word; `None` for an unknown word
    /// (or `pending`, which is never recorded).
    pub(crate) fn from_word(word: &str, dsn: EnhancedCode, detail: String) -> Option<Self> {
        Some(match word {
            "deferred" => RecipientStatus::Deferred { dsn, detail },
            "sent" => RecipientStatus::Sent { dsn, detail },
            "bounced" => RecipientStatus::Bounced { dsn, detail },
            "expired" => RecipientStatus::Expired { dsn, detail },
            _ => return None,
        })
    }
}

impl From<DeliveryStatus> for RecipientStatus {
    fn from(status: DeliveryStatus) -> RecipientStatus {
        let dsn = status.dsn();
        let detail = status.detail().to_owned();
        match status {
            DeliveryStatus::Sent { .. } => RecipientStatus::Sent { dsn, detail },
            DeliveryStatus::Bounced { .. } => RecipientStatus::Bounced { dsn, detail },
            // Deferred, and whatever a later version of the trait adds:
            // trying again is the safe reading.
            _ => RecipientStatus::Deferred { dsn, detail },
        }
    }
}

impl fmt::Display for RecipientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dsn_detail() {
            None => f.write_str(self.word()),
            Some((dsn, detail)) => write!(f, "{} {dsn} ({detail})", self.word()),
        }
    }
}

/// Escapes `s` into one token of printable ASCII without spaces: every
/// byte outside `!`..`~`, and `%` itself, becomes `%XX`. CR, LF, spaces
/// and UTF-8 in addresses or reasons can then never split a record.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Reverses [`escape`]; `None` for a malformed escape or invalid UTF-8.
pub(crate) fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if (0x21..=0x7e).contains(&b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trip() {
        for s in [
            "",
            "plain",
            "a b",
            "x\r\ny",
            "100%",
            "\u{e9}l\u{e8}ve@\u{e9}cole.fr",
            "\0\x7f",
        ] {
            let e = escape(s);
            assert!(e.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{e}");
            assert_eq!(unescape(&e).as_deref(), Some(s));
        }
        assert_eq!(escape("a b\n"), "a%20b%0A");
    }

    #[test]
    fn unescape_rejects_garbage() {
        for s in ["%", "%4", "%G0", "a b", "%FF", "\u{e9}"] {
            assert_eq!(unescape(s), None, "{s:?}");
        }
    }

    #[test]
    fn finality() {
        let dsn = EnhancedCode::new(4, 3, 0);
        assert!(!RecipientStatus::Pending.is_final());
        assert!(
            !RecipientStatus::Deferred {
                dsn,
                detail: String::new()
            }
            .is_final()
        );
        assert!(
            RecipientStatus::Expired {
                dsn,
                detail: String::new()
            }
            .is_final()
        );
    }
}
