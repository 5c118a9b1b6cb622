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

use std::net::{IpAddr, Ipv4Addr};

use crate::hostname::valid_hostname;
use crate::lookup::{NameStatus, reverse_name, verified_name};
use crate::resolver::{Resolver, is_temporary};
use crate::template::{Template, reply_verdict};
use crate::{Args, DomainClass, Request, Verdict, host, tables};

/// Postfix's `default_rbl_reply`.
pub const DEFAULT_RBL_REPLY: &str = "$rbl_code Service unavailable; $rbl_class [$rbl_what] \
                                     blocked using $rbl_domain${rbl_reason?; $rbl_reason}";

/// Postfix's `maps_rbl_reject_code` default.
pub const MAPS_RBL_REJECT_CODE: u16 = 554;

/// Postfix concatenates TXT records up to this many bytes (`RBL_TXT_LIMIT`).
const TXT_LIMIT: usize = 500;

/// The allowed values of one octet: inclusive ranges.
type Octet = Vec<(u8, u8)>;

/// A reply filter `d.d.d.d` whose fields may be `[list]`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter([Octet; 4]);

impl Filter {
    /// Parses an `ip_match` pattern such as `127.0.0.[2..11]`.
    pub fn parse(pattern: &str) -> Result<Filter, String> {
        let fields: Vec<&str> = pattern.split('.').collect();
        if fields.len() != 4 {
            // `[1..5]` splits at its own dots: rejoin bracketed fields.
            return Filter::parse_joined(pattern);
        }
        Filter::from_fields(pattern, fields)
    }

    fn parse_joined(pattern: &str) -> Result<Filter, String> {
        let mut fields = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            if rest.starts_with('[') {
                let end = rest
                    .find(']')
                    .ok_or_else(|| format!("{pattern:?}: missing ']'"))?;
                fields.push(&rest[..=end]);
                rest = &rest[end + 1..];
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                fields.push(&rest[..end]);
                rest = &rest[end..];
            }
            match rest.strip_prefix('.') {
                Some(r) if !r.is_empty() => rest = r,
                Some(_) => return Err(format!("{pattern:?}: ends in '.'")),
                None if rest.is_empty() => {}
                None => return Err(format!("{pattern:?}: expected '.' after ']'")),
            }
        }
        Filter::from_fields(pattern, fields)
    }

    fn from_fields(pattern: &str, fields: Vec<&str>) -> Result<Filter, String> {
        if fields.len() != 4 {
            return Err(format!(
                "{pattern:?}: expected four octet fields such as 127.0.0.[2..11]"
            ));
        }
        let mut octets: [Octet; 4] = Default::default();
        for (slot, field) in octets.iter_mut().zip(fields) {
            *slot = octet(field).map_err(|e| format!("{pattern:?}: {e}"))?;
        }
        Ok(Filter(octets))
    }

    /// Whether the list's answer `addr` passes the filter.
    pub fn matches(&self, addr: Ipv4Addr) -> bool {
        self.0
            .iter()
            .zip(addr.octets())
            .all(|(ranges, b)| ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi))
    }
}

/// One octet field: `N` or `[N;N..N;...]`.
fn octet(field: &str) -> Result<Octet, String> {
    let number = |s: &str| {
        s.parse::<u8>()
            .map_err(|_| format!("bad octet value {s:?} (expected 0..255)"))
    };
    let Some(inner) = field.strip_prefix('[').and_then(|f| f.strip_suffix(']')) else {
        let n = number(field)?;
        return Ok(vec![(n, n)]);
    };
    inner
        .split(';')
        .map(|item| match item.split_once("..") {
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if lo > hi {
                    return Err(format!("bad range {item:?}: {lo} > {hi}"));
                }
                Ok((lo, hi))
            }
            None => number(item).map(|n| (n, n)),
        })
        .collect()
}

/// A list argument: `zen.spamhaus.org` or `zen.spamhaus.org=127.0.0.[2..11]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsList {
    /// The argument as written: the key of the reply map.
    pub spec: String,
    /// The list's domain, without the filter: `$rbl_domain`.
    pub domain: String,
    /// The filter on the list's A answers; none: any answer lists.
    pub filter: Option<Filter>,
}

impl DnsList {
    /// Parses a list argument.
    pub fn parse(spec: &str) -> Result<DnsList, String> {
        let (domain, filter) = match spec.split_once('=') {
            Some((d, f)) => (d, Some(Filter::parse(f)?)),
            None => (spec, None),
        };
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if !valid_hostname(domain) {
            return Err(format!("{spec:?}: {domain:?} is not a DNS list domain"));
        }
        Ok(DnsList {
            spec: spec.to_owned(),
            domain: domain.to_ascii_lowercase(),
            filter,
        })
    }
}

/// The query name for a client address: its octets (IPv4) or nibbles
/// (IPv6) reversed, then the list's domain.
pub fn address_query(addr: IpAddr, domain: &str) -> String {
    let mut q = String::new();
    match addr {
        IpAddr::V4(v4) => {
            for b in v4.octets().iter().rev() {
                q.push_str(&format!("{b}."));
            }
        }
        IpAddr::V6(v6) => {
            for b in v6.octets().iter().rev() {
                q.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
        }
    }
    q.push_str(domain);
    q
}

/// The query name for a name or address (`what`): the domain after the
/// last `@` (or the whole name), then the list's domain; none for an
/// address literal, an empty or invalid domain, or one whose last label is
/// numeric (Postfix skips those: some lists refuse "IP queries").
pub fn domain_query(what: &str, domain: &str) -> Option<String> {
    let name = what.rsplit_once('@').map_or(what, |(_, d)| d);
    if name.is_empty() || name.starts_with('[') {
        return None;
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) || !valid_hostname(name) {
        return None;
    }
    Some(format!("{}.{domain}", name.to_ascii_lowercase()))
}

/// What a list says about a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Not listed (NXDOMAIN, no A record, or no answer passes the filter).
    No,
    /// Listed, with the TXT reason (records joined by " / "; may be empty).
    Yes(String),
    /// The list could not be asked (SERVFAIL, timeout): why.
    Unavailable(String),
}

/// Asks the list about `query`.
pub fn lookup(dns: &dyn Resolver, query: &str, filter: Option<&Filter>) -> Listing {
    let answers = match dns.a(query) {
        Ok(a) => a,
        Err(e) if is_temporary(&e) => return Listing::Unavailable(format!("{e:?}")),
        Err(_) => return Listing::No,
    };
    let listed = answers
        .iter()
        .any(|a| match (a.parse::<Ipv4Addr>(), filter) {
            (Ok(ip), Some(f)) => f.matches(ip),
            (Ok(_), None) => true,
            (Err(_), _) => false,
        });
    if !listed {
        return Listing::No;
    }
    let mut reason = String::new();
    for txt in dns.txt(query).unwrap_or_default() {
        if reason.len() >= TXT_LIMIT {
            break;
        }
        if !reason.is_empty() {
            reason.push_str(" / ");
        }
        reason.push_str(&txt);
    }
    if reason.len() > TXT_LIMIT {
        let mut cut = TXT_LIMIT;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    Listing::Yes(reason)
}

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
    use crate::dns::DnsError;
    use crate::resolver::fake::FakeDns;

    #[test]
    fn filters_as_postfix_parses_them() {
        let f = Filter::parse("127.0.0.[2..11]").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 11)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 1, 2)));
        let f = Filter::parse("127.0.0.2").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 3)));
        let f = Filter::parse("127.0.0.[1;5]").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 5)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 3)));
        let f = Filter::parse("127.[0..1].0.[1;3..4]").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 1, 0, 4)));
        for bad in [
            "127.0.0",
            "127.0.0.256",
            "127.0.0.[5..2]",
            "127.0.0.[2..11",
            "127.0.0.x",
            "127.0.0.2.",
            "127.0.0.[]",
            "",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_arguments() {
        let l = DnsList::parse("zen.spamhaus.org=127.0.0.[2..11]").unwrap();
        assert_eq!(l.domain, "zen.spamhaus.org");
        assert!(l.filter.is_some());
        assert_eq!(l.spec, "zen.spamhaus.org=127.0.0.[2..11]");
        assert!(DnsList::parse("bl.example.").unwrap().filter.is_none());
        assert!(DnsList::parse("bad domain").is_err());
        assert!(DnsList::parse("rbl.test=1.2").is_err());
    }

    #[test]
    fn query_names() {
        assert_eq!(
            address_query("192.0.2.1".parse().unwrap(), "rbl.test"),
            "1.2.0.192.rbl.test"
        );
        let q = address_query("2001:db8::1".parse().unwrap(), "rbl.test");
        assert!(q.starts_with("1.0.0.0.0.0.0.0."), "{q}");
        assert!(q.ends_with("8.b.d.0.1.0.0.2.rbl.test"), "{q}");
        assert_eq!(
            domain_query("a@Spam.Example", "dbl.test").as_deref(),
            Some("spam.example.dbl.test")
        );
        assert_eq!(domain_query("a@[192.0.2.1]", "dbl.test"), None);
        assert_eq!(domain_query("host.123", "dbl.test"), None);
        assert_eq!(domain_query("", "dbl.test"), None);
        assert_eq!(domain_query("a@bad..name", "dbl.test"), None);
    }

    #[test]
    fn lookups_with_filters_and_reasons() {
        let dns = FakeDns::default()
            .with("a", "2.0.2.192.rbl.test", &["127.0.0.2"])
            .with("txt", "2.0.2.192.rbl.test", &["first", "second"])
            .with("a", "3.0.2.192.rbl.test", &["127.0.0.20"])
            .failing("a", "4.0.2.192.rbl.test", DnsError::Servfail);
        let f = Filter::parse("127.0.0.[2..11]").unwrap();
        assert_eq!(
            lookup(&dns, "2.0.2.192.rbl.test", Some(&f)),
            Listing::Yes("first / second".to_owned())
        );
        assert_eq!(lookup(&dns, "3.0.2.192.rbl.test", Some(&f)), Listing::No);
        assert_eq!(
            lookup(&dns, "3.0.2.192.rbl.test", None),
            Listing::Yes(String::new())
        );
        assert_eq!(lookup(&dns, "5.0.2.192.rbl.test", None), Listing::No);
        assert!(matches!(
            lookup(&dns, "4.0.2.192.rbl.test", None),
            Listing::Unavailable(_)
        ));
        let long = "x".repeat(400);
        let dns =
            FakeDns::default()
                .with("a", "q", &["127.0.0.2"])
                .with("txt", "q", &[&long, &long]);
        match lookup(&dns, "q", None) {
            Listing::Yes(r) => assert_eq!(r.len(), TXT_LIMIT),
            other => panic!("{other:?}"),
        }
    }

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
