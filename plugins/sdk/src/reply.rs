//! Replies in Postfix's shape: the code, the RFC 3463 enhanced code, the
//! text. An empty enhanced code lets the host fill in Postfix's default
//! for the code (5.7.1 for 5xx, 4.7.1 for 4xx).

use crate::{Reply, Verdict};

/// A reply; `enhanced` may be empty for the default.
pub fn reply(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
    Reply {
        code,
        enhanced: enhanced.to_owned(),
        text: text.into(),
    }
}

/// `reject` with this reply (5xx; 4xx for a soft reject).
pub fn reject(code: u16, enhanced: &str, text: impl Into<String>) -> Verdict {
    Verdict::Reject(reply(code, enhanced, text))
}

/// `defer` with this 4xx reply.
pub fn defer(code: u16, enhanced: &str, text: impl Into<String>) -> Verdict {
    Verdict::Defer(reply(code, enhanced, text))
}
