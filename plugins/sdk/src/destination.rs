//! Postfix's relay test, `permit_auth_destination` in `smtpd_check.c`,
//! and the three restrictions built on it: `permit_auth_destination`,
//! `reject_unauth_destination` and `defer_unauth_destination`. The
//! question is one: is the recipient's domain one this server accepts
//! mail for, local (`mydestination`), virtual, or listed in
//! `relay_domains`? The server answers it in the request's
//! `recipient-class`; a recipient without one is treated as `other`
//! (when in doubt, do not relay). The three differ only in what they
//! answer, so each plugin crate is one call.
//!
//! None of them looks at the client: trusted clients get through because
//! `permit_mynetworks` (or an authenticated-client permit) comes earlier
//! in the list. When no recipient is known yet (a client, HELO or sender
//! list evaluated before RCPT TO) they have no opinion, as Postfix skips
//! the check then.

use crate::{DomainClass, Request, Verdict, defer, reject};

/// Postfix's `relay_domains_reject_code` default.
pub const RELAY_DOMAINS_REJECT_CODE: u16 = 554;

/// [`RELAY_DOMAINS_REJECT_CODE`] as a deferral: Postfix makes a 5xx code
/// 4xx this way for its `defer_*` forms.
pub const RELAY_DOMAINS_DEFER_CODE: u16 = 454;

/// Whether the request has a recipient, and this server accepts mail for
/// its domain; `None` before RCPT TO.
fn authorized(req: &Request) -> Option<bool> {
    if req.recipient.is_empty() {
        return None;
    }
    Some(matches!(
        req.recipient_class,
        Some(DomainClass::Local | DomainClass::Virtual | DomainClass::Relay)
    ))
}

/// The text Postfix refuses an unauthorized destination with.
fn relay_access_denied(req: &Request) -> String {
    format!("<{}>: Relay access denied", req.recipient)
}

/// `permit_auth_destination`: permit a recipient this server accepts mail
/// for; otherwise no opinion.
pub fn permit_auth_destination(req: &Request) -> Verdict {
    match authorized(req) {
        Some(true) => Verdict::Permit,
        Some(false) | None => Verdict::Dunno,
    }
}

/// `reject_unauth_destination`: reject any other recipient, `554 5.7.1
/// <RCPT>: Relay access denied`.
pub fn reject_unauth_destination(req: &Request) -> Verdict {
    match authorized(req) {
        Some(false) => reject(RELAY_DOMAINS_REJECT_CODE, "5.7.1", relay_access_denied(req)),
        Some(true) | None => Verdict::Dunno,
    }
}

/// `defer_unauth_destination`: the same test, but a refusal for now, not
/// for good (`454 4.7.1 <RCPT>: Relay access denied`), so that a relay
/// list that is wrong by mistake makes senders retry rather than bounce.
pub fn defer_unauth_destination(req: &Request) -> Verdict {
    match authorized(req) {
        Some(false) => defer(RELAY_DOMAINS_DEFER_CODE, "4.7.1", relay_access_denied(req)),
        Some(true) | None => Verdict::Dunno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Reply, Stage};

    fn rcpt(recipient: &str, class: Option<DomainClass>) -> Request {
        Request {
            recipient: recipient.to_owned(),
            recipient_class: class,
            ..Request::empty(Stage::Recipient)
        }
    }

    fn denied(code: u16, enhanced: &str) -> Reply {
        Reply {
            code,
            enhanced: enhanced.to_owned(),
            text: "<x@elsewhere.test>: Relay access denied".to_owned(),
        }
    }

    #[test]
    fn destinations_served_here_pass_and_others_are_refused() {
        for class in [DomainClass::Local, DomainClass::Virtual, DomainClass::Relay] {
            let req = rcpt("x@here.test", Some(class));
            assert_eq!(permit_auth_destination(&req), Verdict::Permit);
            assert_eq!(reject_unauth_destination(&req), Verdict::Dunno);
            assert_eq!(defer_unauth_destination(&req), Verdict::Dunno);
        }
        for class in [Some(DomainClass::Other), None] {
            let req = rcpt("x@elsewhere.test", class);
            assert_eq!(permit_auth_destination(&req), Verdict::Dunno);
            assert_eq!(
                reject_unauth_destination(&req),
                Verdict::Reject(denied(554, "5.7.1"))
            );
            assert_eq!(
                defer_unauth_destination(&req),
                Verdict::Defer(denied(454, "4.7.1"))
            );
        }
    }

    #[test]
    fn no_opinion_before_rcpt() {
        let req = Request::empty(Stage::Sender);
        assert_eq!(permit_auth_destination(&req), Verdict::Dunno);
        assert_eq!(reject_unauth_destination(&req), Verdict::Dunno);
        assert_eq!(defer_unauth_destination(&req), Verdict::Dunno);
    }
}
