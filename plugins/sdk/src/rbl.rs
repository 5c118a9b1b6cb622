//! DNS lists, as Postfix's `reject_rbl_client`, `permit_dnswl_client` and
//! `reject_rhsbl_*` use them (`smtpd_check.c`): the list argument
//! `domain[=pattern]` with its reply filter (`ip_match`: four octet fields,
//! each a number or a bracketed list of numbers and `lo..hi` ranges
//! separated by `;`: `127.0.0.[2..11]`, `127.0.0.[1;5]`), the query name
//! (the reversed address, or the domain of a name or address), the A
//! lookup that decides and the TXT lookup that gives the reason, and the
//! reply (Postfix's `default_rbl_reply`, or the entry's own template).
//!
//! As in Postfix, a list that cannot be asked (SERVFAIL, timeout) gives
//! the client the benefit of the doubt: a block list is then skipped (with
//! a warning in the log), an allow list defers a later reject
//! (`defer_if_reject`, 450 4.7.1).
//!
//! This file holds what an entry checks and answers (the [`Target`]s and
//! the [`Check`] with its reply); apart, re-exported here: `list`, the
//! list argument and its reply filter ([`DnsList`], [`Filter`]), and
//! `query`, the query names and what the list answers ([`lookup()`],
//! [`Listing`]).

mod list;
mod query;

use std::net::IpAddr;

use crate::lookup::{NameStatus, reverse_name, verified_name};
use crate::resolver::Resolver;
use crate::template::{Template, reply_verdict};
use crate::{
    Args, Attribute, CACHE_DNS_SECONDS, DomainClass, Entry, Request, Verdict, host, tables,
};

pub use list::{DnsList, Filter};
pub use query::{Listing, address_query, domain_query, lookup};

/// Postfix's `default_rbl_reply`.
pub const DEFAULT_RBL_REPLY: &str = "$rbl_code Service unavailable; $rbl_class [$rbl_what] \
                                     blocked using $rbl_domain${rbl_reason?; $rbl_reason}";

/// Postfix's `maps_rbl_reject_code` default.
pub const MAPS_RBL_REJECT_CODE: u16 = 554;

/// What a list check looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The client address (`reject_rbl_client`, `permit_dnswl_client`).
    ClientAddress,
    /// The verified client name (`reject_rhsbl_client`).
    ClientName,
    /// The unverified reverse name (`reject_rhsbl_reverse_client`).
    ReverseClientName,
    /// The HELO name (`reject_rhsbl_helo`).
    Helo,
    /// The sender's domain (`reject_rhsbl_sender`).
    Sender,
    /// The recipient's domain (`reject_rhsbl_recipient`).
    Recipient,
}

impl Target {
    /// Postfix's `$rbl_class` for this target.
    pub fn class(self) -> &'static str {
        match self {
            Target::ClientAddress | Target::ClientName => "Client host",
            Target::ReverseClientName => "Unverified Client host",
            Target::Helo => "Helo command",
            Target::Sender => "Sender address",
            Target::Recipient => "Recipient address",
        }
    }

    /// `$rbl_what` and the query name for `req`; none when there is
    /// nothing to look up (no HELO yet, the null sender, an unknown name).
    /// The client's names come from the server when it has them, else
    /// from the DNS ([`crate::lookup`]).
    fn query(self, req: &Request, domain: &str, dns: &dyn Resolver) -> Option<(String, String)> {
        let name;
        let what = match self {
            Target::ClientAddress => {
                let addr: IpAddr = req.client_address.parse().ok()?;
                return Some((req.client_address.clone(), address_query(addr, domain)));
            }
            Target::ClientName => match verified_name(dns, req) {
                NameStatus::Ok(n) => {
                    name = n;
                    &name
                }
                _ => return None,
            },
            Target::ReverseClientName => match reverse_name(dns, req) {
                NameStatus::Ok(n) => {
                    name = n;
                    &name
                }
                _ => return None,
            },
            Target::Helo => &req.helo_name,
            Target::Sender => &req.sender,
            Target::Recipient => &req.recipient,
        };
        if what.is_empty() || what == "unknown" {
            return None;
        }
        Some((what.clone(), domain_query(what, domain)?))
    }
}

/// One list entry, as `init` configured it.
#[derive(Debug, Clone)]
pub struct Check {
    target: Target,
    list: DnsList,
    /// Permit when listed (an allow list) instead of rejecting.
    allow: bool,
    /// The entry's `reply` template; none: `default_rbl_reply`.
    reply: Option<Template>,
    /// A table of templates keyed by the list argument (`rbl_reply_maps`).
    reply_maps: Option<String>,
    /// `$rbl_code`.
    code: u16,
}

/// Whether the recipient's domain is local, virtual or a relay domain
/// (Postfix's `permit_auth_destination`).
fn authorized_destination(req: &Request) -> bool {
    matches!(
        req.recipient_class,
        Some(DomainClass::Local | DomainClass::Virtual | DomainClass::Relay)
    )
}

/// The names of a reply template that quote the request, and the
/// attributes they quote.
const TEMPLATE_REQUEST_NAMES: [(&str, Attribute); 6] = [
    ("client_address", Attribute::ClientAddress),
    ("client_name", Attribute::ClientName),
    ("reverse_client_name", Attribute::ReverseClientName),
    ("helo_name", Attribute::HeloName),
    ("sender", Attribute::Sender),
    ("recipient", Attribute::Recipient),
];

/// The names a reply template may use.
fn known(name: &str) -> bool {
    matches!(
        name,
        "rbl_code"
            | "rbl_domain"
            | "rbl_reason"
            | "rbl_txt"
            | "rbl_what"
            | "rbl_class"
            | "client_address"
            | "client_name"
            | "reverse_client_name"
            | "helo_name"
            | "sender"
            | "recipient"
    )
}

/// `init` of a DNS list plugin: the entry's check parsed from `args` and
/// kept in `entry`, its instances offered for reuse and its verdicts for
/// [`CACHE_DNS_SECONDS`] by the attributes they depend on.
pub fn init(
    entry: &Entry<Check>,
    target: Target,
    allow: bool,
    args: Vec<(String, String)>,
) -> Result<(), String> {
    host::reuse_instances();
    let check = Check::from_args(target, allow, args)?;
    host::cache_verdicts(&check.attributes(), CACHE_DNS_SECONDS);
    entry.init(Ok(check))
}

impl Check {
    /// Reads the arguments: the list as the first positional argument or
    /// `domain = "..."`; optional `reply` (a template), `reply_maps` (a
    /// table name) and `code` (`$rbl_code`, default 554).
    pub fn from_args(
        target: Target,
        allow: bool,
        args: Vec<(String, String)>,
    ) -> Result<Check, String> {
        let mut args = Args::new(args);
        let mut positional = args.positional();
        let spec = match (positional.len(), args.take("domain")) {
            (0, Some(d)) => d,
            (1, None) => positional.remove(0),
            (0, None) => {
                return Err("missing the DNS list domain (such as zen.spamhaus.org)".to_owned());
            }
            _ => return Err("expected one DNS list domain".to_owned()),
        };
        let list = DnsList::parse(&spec)?;
        let reply = args.parse("reply", |t| Template::parse(t, &known))?;
        let reply_maps = args.take("reply_maps");
        let code = args.code(MAPS_RBL_REJECT_CODE)?;
        args.done()?;
        Ok(Check {
            target,
            list,
            allow,
            reply,
            reply_maps,
            code,
        })
    }

    /// The attributes of a request its verdict depends on, for
    /// `host.cache-verdicts`: the target's, the recipient's for an allow
    /// list (which never permits a relay), and those its reply template
    /// quotes (all of them when replies come from `rbl_reply_maps`, whose
    /// templates are read at the time of the reply).
    pub fn attributes(&self) -> Vec<Attribute> {
        let mut attributes = match self.target {
            Target::ClientAddress => vec![Attribute::ClientAddress],
            // Looked up in the DNS from the address when the server has
            // no name.
            Target::ClientName => vec![Attribute::ClientAddress, Attribute::ClientName],
            Target::ReverseClientName => {
                vec![Attribute::ClientAddress, Attribute::ReverseClientName]
            }
            Target::Helo => vec![Attribute::HeloName],
            Target::Sender => vec![Attribute::Sender],
            Target::Recipient => vec![Attribute::Recipient],
        };
        if self.allow {
            attributes.extend([Attribute::Recipient, Attribute::RecipientClass]);
        }
        let quoted: Vec<&str> = match (&self.reply_maps, &self.reply) {
            (Some(_), _) => TEMPLATE_REQUEST_NAMES.iter().map(|(n, _)| *n).collect(),
            (None, Some(template)) => template.names(),
            (None, None) => Vec::new(),
        };
        for name in quoted {
            if let Some((_, a)) = TEMPLATE_REQUEST_NAMES.iter().find(|(n, _)| *n == name) {
                attributes.push(*a);
            }
        }
        attributes
    }

    /// Answers `req`.
    pub fn check(&self, req: &Request, dns: &dyn Resolver) -> Verdict {
        // As Postfix: an allow list never permits a recipient this server
        // does not accept mail for, so that it cannot open the relay even
        // when placed in the relay list.
        if self.allow && !req.recipient.is_empty() && !authorized_destination(req) {
            return Verdict::Dunno;
        }
        let Some((what, query)) = self.target.query(req, &self.list.domain, dns) else {
            return Verdict::Dunno;
        };
        match lookup(dns, &query, self.list.filter.as_ref()) {
            Listing::No => Verdict::Dunno,
            Listing::Unavailable(why) => {
                host::log(
                    host::LogLevel::Warn,
                    &format!("{query}: RBL lookup error: {why}"),
                );
                if self.allow {
                    Verdict::DeferIfReject(crate::template::fixed(
                        450,
                        "4.7.1",
                        &format!(
                            "<{what}>: {} rejected: Service unavailable",
                            self.target.class()
                        ),
                    ))
                } else {
                    Verdict::Dunno
                }
            }
            Listing::Yes(_) if self.allow => Verdict::Permit,
            Listing::Yes(reason) => self.reply(req, &what, &reason),
        }
    }

    fn reply(&self, req: &Request, what: &str, reason: &str) -> Verdict {
        let mapped = self
            .reply_maps
            .as_deref()
            .and_then(|table| tables::lookup(table, &self.list.spec))
            .and_then(|text| match Template::parse(&text, &known) {
                Ok(t) => Some(t),
                Err(e) => {
                    host::log(
                        host::LogLevel::Warn,
                        &format!("bad rbl reply template for domain {}: {e}", self.list.spec),
                    );
                    None
                }
            });
        let default;
        let template = match (&mapped, &self.reply) {
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => {
                default = Template::parse(DEFAULT_RBL_REPLY, &known).unwrap_or_default();
                &default
            }
        };
        let code = self.code.to_string();
        let value = |name: &str| -> Option<String> {
            Some(match name {
                "rbl_code" => code.clone(),
                "rbl_domain" => self.list.domain.clone(),
                "rbl_reason" | "rbl_txt" => reason.to_owned(),
                "rbl_what" => what.to_owned(),
                "rbl_class" => self.target.class().to_owned(),
                "client_address" => req.client_address.clone(),
                "client_name" => req.client_name.clone(),
                "reverse_client_name" => req.reverse_client_name.clone(),
                "helo_name" => req.helo_name.clone(),
                "sender" => req.sender.clone(),
                "recipient" => req.recipient.clone(),
                _ => return None,
            })
        };
        let text = template.expand(&value);
        reply_verdict(&text, "4.7.1").unwrap_or_else(|fallback| {
            host::log(
                host::LogLevel::Warn,
                &format!("rbl response code configuration error: {text}"),
            );
            fallback
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let args = crate::args::pairs;
        assert!(Check::from_args(Target::ClientAddress, false, args(&[("1", "rbl.test")])).is_ok());
        assert!(
            Check::from_args(
                Target::Helo,
                false,
                args(&[("domain", "rbl.test"), ("code", "550")])
            )
            .is_ok()
        );
        let err = |pairs| Check::from_args(Target::Sender, false, args(pairs)).unwrap_err();
        assert!(err(&[]).contains("missing"));
        assert!(err(&[("1", "a.test"), ("2", "b.test")]).contains("one DNS list"));
        assert!(err(&[("1", "a.test"), ("code", "250")]).contains("code"));
        assert!(err(&[("1", "a.test"), ("reply", "$nope")]).contains("unknown name"));
        assert!(err(&[("1", "a.test"), ("colour", "x")]).contains("colour"));
        assert!(err(&[("1", "a.test=127.0.0.[9..2]")]).contains("bad range"));
    }
}
