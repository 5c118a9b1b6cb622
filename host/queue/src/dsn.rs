//! The notice itself: an RFC 3464 delivery status notification,
//! `multipart/report; report-type=delivery-status` (RFC 6522), with the
//! three parts Postfix's bounce(8) writes: a human-readable explanation,
//! the `message/delivery-status` report, and the returned message: its
//! headers (`text/rfc822-headers`), or all of it (`message/rfc822`) when
//! the sender asked `RET=FULL` (RFC 3461 §4.3). The sender's `ENVID` comes
//! back as `Original-Envelope-Id` and each `ORCPT` as
//! `Original-Recipient` (RFC 3461 §6.3). A failure notice (a bounce) and a
//! success notice (`NOTIFY=SUCCESS`, RFC 3461 §5.2.2) and a delay
//! warning (`delay_warning_time`, `NOTIFY=DELAY`; Postfix's "Delayed Mail
//! (still being retried)") differ in wording and in each recipient's
//! `Action`; a warning returns only the headers, whatever `RET` says, as
//! Postfix's does. When a remote server answered, the report names it
//! (`Remote-MTA: dns; mx.example.net`) and quotes its reply
//! (`Diagnostic-Code: smtp; 550 5.1.1 ...`), as Postfix's smtp agent
//! reports; other failures are `Diagnostic-Code: X-Postern; ...`.

use std::time::SystemTime;

use postern_mail::{EnhancedCode, Recipient, RemoteReply};

use crate::status::RecipientStatus;

mod compose;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub(crate) use compose::compose;

/// Who the notice is for, and so how it is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// The original sender (a bounce).
    Sender,
    /// The postmaster, about a bounce that could not be returned (a double
    /// bounce).
    Postmaster,
    /// The original sender, about recipients delivered with
    /// `NOTIFY=SUCCESS`.
    Success,
    /// The original sender, about recipients still deferred after
    /// `delay_warning_time`.
    Delay,
}

/// One recipient as the report lists it.
#[derive(Debug, Clone)]
pub(crate) struct Failure<'a> {
    pub recipient: &'a Recipient,
    /// RFC 3464 §2.3.3: `failed`, `delayed`, `delivered` or `relayed`.
    pub action: &'static str,
    /// `5.x.x` with `failed` (RFC 3464 §2.3.4), `4.x.x` with `delayed`,
    /// `2.x.x` otherwise.
    pub status: EnhancedCode,
    pub diagnostic: String,
    /// The server that answered and its reply, when one did.
    pub remote: Option<&'a RemoteReply>,
    /// RFC 3464 §2.3.9 `Will-Retry-Until`, for a delayed recipient.
    pub retry_until: Option<SystemTime>,
}

impl<'a> Failure<'a> {
    /// The report line of a bounced or expired recipient; `None` for any
    /// other state.
    pub fn of(
        recipient: &'a Recipient,
        status: &RecipientStatus,
        remote: Option<&'a RemoteReply>,
    ) -> Option<Failure<'a>> {
        match status {
            RecipientStatus::Bounced { dsn, detail } => Some(Failure {
                recipient,
                action: "failed",
                status: *dsn,
                diagnostic: detail.clone(),
                remote,
                retry_until: None,
            }),
            // RFC 3463 §3.5: X.4.7 "delivery time expired".
            RecipientStatus::Expired { detail, .. } => Some(Failure {
                recipient,
                action: "failed",
                status: EnhancedCode::new(5, 4, 7),
                diagnostic: if detail.is_empty() {
                    "delivery time expired".to_owned()
                } else {
                    format!("delivery time expired; last attempt: {detail}")
                },
                remote,
                retry_until: None,
            }),
            _ => None,
        }
    }

    /// The report line of a recipient still deferred, to be retried until
    /// `until`; `None` for any other state.
    pub fn delayed(
        recipient: &'a Recipient,
        status: &RecipientStatus,
        remote: Option<&'a RemoteReply>,
        until: SystemTime,
    ) -> Option<Failure<'a>> {
        let RecipientStatus::Deferred { dsn, detail } = status else {
            return None;
        };
        Some(Failure {
            recipient,
            action: "delayed",
            // RFC 3464 §2.3.4: a delayed recipient's status is 4.x.x.
            status: if dsn.class == 4 {
                *dsn
            } else {
                EnhancedCode::new(4, 0, 0)
            },
            diagnostic: detail.clone(),
            remote,
            retry_until: Some(until),
        })
    }

    /// The report line of a delivered recipient; `None` for any other
    /// state. RFC 3461 §6.2: `delivered` into a mailbox here, `relayed`
    /// when handed to another MTA (which is all we know of a remote
    /// delivery). A local agent's text says `delivered ...`.
    pub fn success(
        recipient: &'a Recipient,
        status: &RecipientStatus,
        remote: Option<&'a RemoteReply>,
    ) -> Option<Failure<'a>> {
        let RecipientStatus::Sent { dsn, detail } = status else {
            return None;
        };
        let action = if detail.starts_with("delivered") {
            "delivered"
        } else {
            "relayed"
        };
        Some(Failure {
            recipient,
            action,
            status: *dsn,
            diagnostic: detail.clone(),
            remote,
            retry_until: None,
        })
    }
}
