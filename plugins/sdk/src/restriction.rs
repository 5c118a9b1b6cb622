//! Restriction names on the right-hand side of an access map
//! (`example.com permit_mynetworks, reject`), evaluated in the plugin
//! itself: Postfix runs the named restrictions recursively
//! (smtpd_check.c `generic_checks`), a plugin cannot call another plugin,
//! so the common ones that need nothing but the request are here, with
//! the same replies as their plugins and as Postfix.
//!
//! Supported: `permit`, `reject`, `defer`, `dunno`, `permit_mynetworks`,
//! `permit_sasl_authenticated`, `permit_pop_before_smtp`,
//! `permit_auth_destination`, `reject_unauth_destination`,
//! `defer_unauth_destination`, `reject_non_fqdn_sender`,
//! `reject_non_fqdn_recipient`, `reject_non_fqdn_helo_hostname` (and its
//! old name `reject_non_fqdn_hostname`), and the three that read the
//! host's facts from the request: `reject_unauth_pipelining`,
//! `reject_unlisted_recipient`, `reject_unlisted_sender` (without
//! arguments: the server's own view of its users). At the first other
//! name the rest of the list goes to the server as a `restriction`
//! verdict: there it names restriction classes (Postfix's
//! `smtpd_restriction_classes`), evaluated in place, or `permit`,
//! `reject`, `defer`, `dunno`; a name the server does not know either is
//! logged as an unknown restriction and answered `451 4.3.5`, as Postfix
//! does. What cannot be a name at all (`check_sender_access hash:/x`,
//! `250`) gets that answer here.

use crate::access_action::{Context, Outcome, server_error};
use crate::address::is_fqdn;
use crate::{Attribute, DomainClass, Reply, Request, Verdict};

/// The names [`evaluate`] knows.
pub const SUPPORTED: &[&str] = &[
    "permit",
    "reject",
    "defer",
    "dunno",
    "permit_mynetworks",
    "permit_sasl_authenticated",
    "permit_pop_before_smtp",
    "permit_auth_destination",
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject_non_fqdn_sender",
    "reject_non_fqdn_recipient",
    "reject_non_fqdn_helo_hostname",
    "reject_non_fqdn_hostname",
    "reject_unauth_pipelining",
    "reject_unlisted_recipient",
    "reject_unlisted_sender",
];

/// Evaluates a right-hand side that lists restriction names, separated by
/// commas or white space: the first that is not dunno decides.
pub fn evaluate_list(value: &str, cx: &Context<'_>) -> Outcome {
    let names: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    for (i, name) in names.iter().enumerate() {
        match evaluate(&name.to_ascii_lowercase(), cx.request, cx) {
            Some(Verdict::Dunno) => {}
            Some(verdict) => return verdict.into(),
            // A restriction class, perhaps: the server knows its classes.
            None if names[i..].iter().all(|n| is_class_name(n)) => {
                return Verdict::Restriction(names[i..].join(", ")).into();
            }
            None => {
                return server_error(format!(
                    "access table {} entry \"{}\": unknown smtpd restriction: \"{name}\" (supported here: {})",
                    cx.table,
                    cx.key,
                    SUPPORTED.join(", ")
                ));
            }
        }
    }
    Verdict::Dunno.into()
}

/// Whether `name` could name a restriction class: a main.cf parameter
/// name, a letter then letters, digits, `_` or `-`.
fn is_class_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn reply(code: u16, enhanced: &str, text: String) -> Reply {
    Reply {
        code,
        enhanced: enhanced.to_owned(),
        text,
    }
}

/// The attributes of a request that restriction `name` reads, beyond
/// what names the subject in its reply; `None` if it is not one of
/// [`SUPPORTED`] (a restriction class, which the server evaluates).
pub fn attributes(name: &str) -> Option<&'static [Attribute]> {
    Some(match name {
        "permit" | "dunno" | "reject" | "defer" => &[],
        "permit_mynetworks" => &[Attribute::Trusted],
        "permit_sasl_authenticated" => &[Attribute::SaslUsername],
        "permit_pop_before_smtp" => &[Attribute::PopBeforeSmtp],
        "permit_auth_destination" | "reject_unauth_destination" | "defer_unauth_destination" => {
            &[Attribute::Recipient, Attribute::RecipientClass]
        }
        "reject_non_fqdn_sender" => &[Attribute::Sender],
        "reject_non_fqdn_recipient" => &[Attribute::Recipient],
        "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => &[Attribute::HeloName],
        "reject_unauth_pipelining" => &[Attribute::IllegalPipelining],
        "reject_unlisted_recipient" => &[
            Attribute::Recipient,
            Attribute::RecipientClass,
            Attribute::RecipientKnown,
        ],
        "reject_unlisted_sender" => &[
            Attribute::Sender,
            Attribute::SenderClass,
            Attribute::SenderKnown,
        ],
        _ => return None,
    })
}

/// One restriction; `None` if it is not one of [`SUPPORTED`].
pub fn evaluate(name: &str, req: &Request, cx: &Context<'_>) -> Option<Verdict> {
    let rejected = |what: &str| format!("<{}>: {} rejected: {what}", cx.reply_name, cx.class);
    let authorized = matches!(
        req.recipient_class,
        Some(DomainClass::Local | DomainClass::Virtual | DomainClass::Relay)
    );
    let non_fqdn = |subject: &str, fqdn: bool, class: &str, what: &str| {
        if subject.is_empty() || fqdn {
            Verdict::Dunno
        } else {
            // Postfix's non_fqdn_reject_code (504), 5.5.2.
            Verdict::Reject(reply(
                504,
                "5.5.2",
                format!("<{subject}>: {class} rejected: need fully-qualified {what}"),
            ))
        }
    };
    Some(match name {
        "permit" => Verdict::Permit,
        "dunno" => Verdict::Dunno,
        // Postfix's reject_code (554) and defer_code (450).
        "reject" => Verdict::Reject(reply(554, "5.7.1", rejected("Access denied"))),
        "defer" => Verdict::Defer(reply(450, "4.7.1", rejected("Try again later"))),
        "permit_mynetworks" => permit_if(req.trusted),
        "permit_sasl_authenticated" => permit_if(!req.sasl_username.is_empty()),
        "permit_pop_before_smtp" => permit_if(req.pop_before_smtp),
        "permit_auth_destination" => permit_if(!req.recipient.is_empty() && authorized),
        "reject_unauth_destination" | "defer_unauth_destination" => {
            if req.recipient.is_empty() || authorized {
                Verdict::Dunno
            } else if name == "reject_unauth_destination" {
                // relay_domains_reject_code (554).
                Verdict::Reject(reply(
                    554,
                    "5.7.1",
                    format!("<{}>: Relay access denied", req.recipient),
                ))
            } else {
                // relay_domains_reject_code (554) made a deferral, as
                // Postfix's smtpd answers it.
                Verdict::Defer(reply(
                    454,
                    "4.7.1",
                    format!("<{}>: Relay access denied", req.recipient),
                ))
            }
        }
        "reject_non_fqdn_sender" => non_fqdn(
            &req.sender,
            is_fqdn_address(&req.sender),
            "Sender address",
            "address",
        ),
        "reject_non_fqdn_recipient" => non_fqdn(
            &req.recipient,
            is_fqdn_address(&req.recipient),
            "Recipient address",
            "address",
        ),
        "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => non_fqdn(
            &req.helo_name,
            is_fqdn(&req.helo_name),
            "Helo command",
            "hostname",
        ),
        // The host's facts, as the plugins of the same names read them.
        "reject_unauth_pipelining" => {
            if req.illegal_pipelining {
                Verdict::Reject(reply(
                    503,
                    "5.5.0",
                    rejected("Improper use of SMTP command pipelining"),
                ))
            } else {
                Verdict::Dunno
            }
        }
        "reject_unlisted_recipient" => unlisted(
            &req.recipient,
            req.recipient_class,
            req.recipient_known,
            "Recipient address",
            "5.1.1",
        ),
        "reject_unlisted_sender" => unlisted(
            &req.sender,
            req.sender_class,
            req.sender_known,
            "Sender address",
            "5.1.0",
        ),
        _ => return None,
    })
}

/// `reject_unlisted_*` on the host's answer: an address at a domain
/// delivered here without a mailbox gets Postfix's
/// `unknown_local_recipient_reject_code` (550).
fn unlisted(
    address: &str,
    class: Option<DomainClass>,
    known: bool,
    what: &str,
    enhanced: &str,
) -> Verdict {
    let table = match class {
        Some(DomainClass::Local) => "local recipient table",
        Some(DomainClass::Virtual) => "virtual mailbox table",
        _ => return Verdict::Dunno,
    };
    if known || address.is_empty() {
        return Verdict::Dunno;
    }
    Verdict::Reject(reply(
        550,
        enhanced,
        format!("<{address}>: {what} rejected: User unknown in {table}"),
    ))
}

fn permit_if(yes: bool) -> Verdict {
    if yes { Verdict::Permit } else { Verdict::Dunno }
}

/// For the address checks: the domain part must be a fully-qualified
/// name; `user@localhost` is not. (An address without `@` is not either.)
fn is_fqdn_address(address: &str) -> bool {
    crate::address::domain(address).is_some_and(|d| is_fqdn(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_checks_tables_against_the_same_names() {
        assert_eq!(SUPPORTED, postern_tables::access::RESTRICTIONS);
    }

    #[test]
    fn every_supported_name_says_what_it_reads() {
        for name in SUPPORTED {
            assert!(attributes(name).is_some(), "{name}");
        }
        assert_eq!(
            attributes("permit_mynetworks"),
            Some(&[Attribute::Trusted][..])
        );
        assert_eq!(attributes("my_class"), None, "a class: the server's");
    }

    #[test]
    fn address_fqdn() {
        assert!(is_fqdn_address("a@example.org"));
        assert!(!is_fqdn_address("a@localhost"));
        assert!(!is_fqdn_address("a"));
    }
}
