//! The `check_*_a_access`, `check_*_mx_access` and `check_*_ns_access`
//! restrictions: Postfix's
//! `check_server_access` (smtpd_check.c), which judges a client, HELO
//! name, sender or recipient by the hosts behind its domain rather than by
//! its name.
//!
//! - `a`: the domain's own IPv4 and IPv6 addresses (A and AAAA), each
//!   looked up as a client address is (`192.0.2.1`, `192.0.2`, `192.0`,
//!   `192`; IPv6 cut at each `:`).
//! - `mx`: the domain's mail exchangers: each host name first, as a domain
//!   (the name, then its parents per `parent_domain_matches_subdomains`),
//!   then its addresses. A domain without MX records is its own mail
//!   exchanger (RFC 5321 §5.1's implicit MX), as is an address literal.
//! - `ns`: the domain's name servers, by host name and then by address. A
//!   name without NS records is judged by its closest parent domain that
//!   has some (`www.example.com` by `example.com`'s); an address literal
//!   has none.
//!
//! The first answer found decides, with the access(5) action it names and
//! the reply of the plain `check_*_access` (`<ADDR>: Sender address
//! rejected: ...`). What cannot be looked up has no opinion: a domain that
//! does not exist, a temporary DNS failure (logged, as Postfix's `Unable
//! to look up MX host for ...`), the null sender, a client without a
//! verified name.
//!
//! The `check_reverse_client_hostname_{a,mx,ns}_access` variants judge the
//! client's unverified reverse (PTR) name: the server's, else the first
//! valid name the PTR lookup gives ([`crate::lookup::reverse_name`]); a
//! client without one has no opinion. Their replies quote the client as
//! Postfix does, `<name[addr]>: Unverified Client host rejected: ...`. At most [`MAX_HOSTS`] hosts and [`MAX_ADDRESSES`]
//! addresses per host are looked at, so that a hostile zone cannot make
//! one check ask the resolver without bound.

use crate::access::{AccessMap, Kind};
use crate::access_action::{Outcome, server_error};
use crate::address::domain;
use crate::dns::DnsError;
use crate::host::LogLevel;
use crate::resolver::{Resolver, is_temporary};
use crate::{Request, Verdict};

/// The most servers (mail exchangers) looked at for one domain.
pub const MAX_HOSTS: usize = 10;

/// The most addresses looked at per server.
pub const MAX_ADDRESSES: usize = 10;

/// Which servers of the domain are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Servers {
    /// The domain's own addresses (`check_*_a_access`).
    A,
    /// The domain's mail exchangers (`check_*_mx_access`).
    Mx,
    /// The domain's name servers (`check_*_ns_access`).
    Ns,
}

impl Servers {
    /// The record type, as log lines name it.
    fn record(self) -> &'static str {
        match self {
            Servers::A => "A",
            Servers::Mx => "MX",
            Servers::Ns => "NS",
        }
    }
}

/// One `check_*_{a,mx,ns}_access` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccess {
    map: AccessMap,
    kind: Kind,
    servers: Servers,
}

impl ServerAccess {
    /// Reads the entry's arguments, as [`AccessMap::from_args`] does. Only
    /// the client, HELO, sender and recipient have server variants.
    pub fn from_args(
        kind: Kind,
        servers: Servers,
        args: Vec<(String, String)>,
    ) -> Result<ServerAccess, String> {
        if !matches!(
            kind,
            Kind::Client | Kind::ReverseClient | Kind::Helo | Kind::Sender | Kind::Recipient
        ) {
            return Err(format!("no {servers:?} variant for {kind:?}"));
        }
        Ok(ServerAccess {
            map: AccessMap::from_args(kind, args)?,
            kind,
            servers,
        })
    }

    /// The table this entry looks keys up in.
    pub fn table(&self) -> &str {
        self.map.table()
    }

    /// The domain whose servers are judged, or `None` when there is
    /// nothing to judge yet.
    fn domain(&self, req: &Request, dns: &dyn Resolver) -> Option<String> {
        let name = match self.kind {
            Kind::Client => {
                let n = req.client_name.as_str();
                (!n.is_empty() && n != "unknown").then(|| n.to_owned())
            }
            // Postfix: only a client whose reverse name is not "unknown"
            // (a temporary PTR failure leaves it unknown too).
            Kind::ReverseClient => match crate::lookup::reverse_name(dns, req) {
                crate::lookup::NameStatus::Ok(n) => Some(n),
                _ => None,
            },
            Kind::Helo => Some(req.helo_name.clone()),
            Kind::Sender => domain(&req.sender),
            Kind::Recipient => domain(&req.recipient),
            _ => None,
        }?;
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        (!name.is_empty()).then_some(name)
    }

    /// What replies quote: the plain access map's subject, and for the
    /// reverse client name Postfix's `name[addr]` of the client.
    fn reply_name(&self, req: &Request) -> Option<String> {
        if self.kind == Kind::ReverseClient {
            let name = if req.client_name.is_empty() {
                "unknown"
            } else {
                &req.client_name
            };
            return (!req.client_address.is_empty())
                .then(|| format!("{name}[{}]", req.client_address));
        }
        self.map.subject_name(req)
    }

    /// Answers `req`: resolves the servers through `dns`, looks them up
    /// with `lookup`.
    pub fn check(
        &self,
        req: &Request,
        dns: &dyn Resolver,
        lookup: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Outcome {
        let (Some(domain), Some(reply_name)) = (self.domain(req, dns), self.reply_name(req)) else {
            return Outcome::from(Verdict::Dunno);
        };
        // An address literal is its own server (no NS equivalent).
        if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            if self.servers == Servers::Ns {
                return Outcome::from(Verdict::Dunno);
            }
            let address = literal.strip_prefix("ipv6:").unwrap_or(literal);
            let searches = [crate::access::address_keys(address)];
            return self
                .map
                .search(req, &searches, &reply_name, lookup)
                .unwrap_or_else(|| Outcome::from(Verdict::Dunno));
        }
        let mut log = Vec::new();
        let searches = match self.servers {
            Servers::A => addresses(dns, &domain, &mut log)
                .iter()
                .map(|a| crate::access::address_keys(a))
                .collect::<Vec<_>>(),
            Servers::Mx | Servers::Ns => {
                let found = match self.servers {
                    Servers::Mx => mail_exchangers(dns, &domain),
                    _ => name_servers(dns, &domain),
                };
                let hosts = match found {
                    Ok(hosts) => hosts,
                    Err(e) => return unable(self.servers, &domain, &e),
                };
                let mut searches = Vec::new();
                for host in hosts {
                    // The host name first, then its addresses.
                    searches.push(self.map.domain_search(&host));
                    for a in addresses(dns, &host, &mut log) {
                        searches.push(crate::access::address_keys(&a));
                    }
                }
                searches
            }
        };
        let mut outcome = self
            .map
            .search(req, &searches, &reply_name, lookup)
            .unwrap_or_else(|| Outcome::from(Verdict::Dunno));
        log.append(&mut outcome.log);
        outcome.log = log;
        outcome
    }
}

/// The mail exchangers of `domain` by preference, at most [`MAX_HOSTS`];
/// the domain itself when it has none.
fn mail_exchangers(dns: &dyn Resolver, domain: &str) -> Result<Vec<String>, DnsError> {
    Ok(match dns.mx(domain) {
        // RFC 5321 §5.1: no MX, the domain is its own server.
        Ok(mx) if mx.is_empty() => vec![domain.to_owned()],
        Err(DnsError::Nxdomain) => vec![domain.to_owned()],
        Ok(mut mx) => {
            mx.sort_by_key(|m| m.preference);
            mx.into_iter()
                .map(|m| m.exchange.trim_end_matches('.').to_ascii_lowercase())
                // A null MX (RFC 7505) names no server.
                .filter(|h| !h.is_empty())
                .take(MAX_HOSTS)
                .collect()
        }
        Err(e) => return Err(e),
    })
}

/// The name servers of `domain`, or of its closest parent that has some
/// (Postfix walks up while the answer is "not found"), at most
/// [`MAX_HOSTS`].
fn name_servers(dns: &dyn Resolver, domain: &str) -> Result<Vec<String>, DnsError> {
    let mut name = domain;
    loop {
        match dns.ns(name) {
            Ok(ns) if !ns.is_empty() => {
                return Ok(ns
                    .into_iter()
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                    .take(MAX_HOSTS)
                    .collect());
            }
            Ok(_) | Err(DnsError::Nxdomain) => match name.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => name = parent,
                _ => return Ok(Vec::new()),
            },
            Err(e) => return Err(e),
        }
    }
}

/// The A and AAAA addresses of `host`, at most [`MAX_ADDRESSES`]; lookup
/// failures leave them out (a temporary one is logged).
fn addresses(dns: &dyn Resolver, host: &str, log: &mut Vec<(LogLevel, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for (record, answer) in [("A", dns.a(host)), ("AAAA", dns.aaaa(host))] {
        match answer {
            Ok(list) => out.extend(list),
            Err(e) if is_temporary(&e) => log.push((
                LogLevel::Warn,
                format!("Unable to look up {record} record for {host}: {e:?}"),
            )),
            Err(_) => {}
        }
    }
    out.truncate(MAX_ADDRESSES);
    out
}

/// Postfix's warning when the servers cannot be found; no opinion.
fn unable(servers: Servers, domain: &str, e: &DnsError) -> Outcome {
    Outcome {
        verdict: Verdict::Dunno,
        log: vec![(
            LogLevel::Warn,
            format!(
                "Unable to look up {} host for {domain}: {e:?}",
                servers.record()
            ),
        )],
    }
}

/// The entry of this plugin instance, set by [`init`].
static ENTRY: std::sync::OnceLock<ServerAccess> = std::sync::OnceLock::new();

/// A `check_*_{a,mx,ns}_access` plugin's `init`.
pub fn init(kind: Kind, servers: Servers, args: Vec<(String, String)>) -> Result<(), String> {
    let entry = ServerAccess::from_args(kind, servers, args)?;
    // A second init in one instance keeps the first, as `access::init`.
    let _ = ENTRY.set(entry);
    Ok(())
}

/// A `check_*_{a,mx,ns}_access` plugin's `check`: the `dns` and `tables`
/// imports, logging through `host.log`.
pub fn check(req: Request) -> Verdict {
    let outcome = match ENTRY.get() {
        Some(entry) => entry.check(&req, &crate::resolver::HostDns, &mut |key| {
            crate::tables::lookup(entry.table(), key)
        }),
        None => server_error("check called before init".to_owned()),
    };
    for (level, line) in outcome.log {
        crate::host::log(level, &line);
    }
    outcome.verdict
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::resolver::fake::{FakeDns, request};
    use crate::{Reply, Stage};
    use std::collections::HashMap;

    fn dns() -> FakeDns {
        FakeDns::default()
            .with("mx", "spam.test", &["20 mx2.bulk.test", "10 mx1.bulk.test"])
            .with("a", "mx1.bulk.test", &["198.51.100.7"])
            .with("a", "mx2.bulk.test", &["203.0.113.9"])
            .with("a", "plain.test", &["192.0.2.50"])
            .with("aaaa", "plain.test", &["2001:db8::50"])
            .failing("mx", "slow.test", DnsError::Timeout)
            .with("ns", "spam.test", &["ns1.dark.test"])
            .with("a", "ns1.dark.test", &["203.0.113.53"])
    }

    /// Runs `servers` for the sender `sender` against `table`: the
    /// verdict, and every key asked.
    fn run(servers: Servers, sender: &str, table: &[(&str, &str)]) -> (Verdict, Vec<String>) {
        let entry = ServerAccess::from_args(
            Kind::Sender,
            servers,
            vec![("1".to_owned(), "hash:/etc/postfix/mx_access".to_owned())],
        )
        .unwrap();
        let table: HashMap<_, _> = table.iter().map(|(k, v)| (*k, *v)).collect();
        let req = Request {
            stage: Stage::Sender,
            sender: sender.to_owned(),
            queue_id: "Q1".to_owned(),
            ..request("192.0.2.1")
        };
        let mut asked = Vec::new();
        let out = entry.check(&req, &dns(), &mut |k| {
            asked.push(k.to_owned());
            table.get(k).map(|v| (*v).to_owned())
        });
        (out.verdict, asked)
    }

    fn rejected(text: &str) -> Verdict {
        Verdict::Reject(Reply {
            code: 554,
            enhanced: "5.7.1".to_owned(),
            text: text.to_owned(),
        })
    }

    #[test]
    fn mx_hosts_by_name_then_address_in_preference_order() {
        let (v, asked) = run(Servers::Mx, "a@spam.test", &[("bulk.test", "REJECT")]);
        assert_eq!(
            v,
            rejected("<a@spam.test>: Sender address rejected: Access denied")
        );
        assert_eq!(asked, ["mx1.bulk.test", "bulk.test"]);
        let (v, asked) = run(Servers::Mx, "a@spam.test", &[("203.0.113", "REJECT bulk")]);
        assert_eq!(v, rejected("<a@spam.test>: Sender address rejected: bulk"));
        assert_eq!(
            asked,
            [
                "mx1.bulk.test",
                "bulk.test",
                "test",
                "198.51.100.7",
                "198.51.100",
                "198.51",
                "198",
                "mx2.bulk.test",
                "bulk.test",
                "test",
                "203.0.113.9",
                "203.0.113"
            ]
        );
    }

    #[test]
    fn a_domain_without_mx_is_its_own_server() {
        let (v, asked) = run(Servers::Mx, "a@plain.test", &[("192.0.2.50", "REJECT")]);
        assert!(matches!(v, Verdict::Reject(_)));
        assert_eq!(asked[..2], ["plain.test", "test"]);
        // An address literal too, with no lookup at all.
        let (v, asked) = run(Servers::Mx, "a@[192.0.2.9]", &[("192.0.2", "REJECT")]);
        assert!(matches!(v, Verdict::Reject(_)));
        assert_eq!(asked, ["192.0.2.9", "192.0.2"]);
    }

    #[test]
    fn a_checks_the_domains_own_addresses() {
        let (v, asked) = run(Servers::A, "a@plain.test", &[("2001:db8:", "REJECT")]);
        assert_eq!(
            asked,
            [
                "192.0.2.50",
                "192.0.2",
                "192.0",
                "192",
                "2001:db8::50",
                "2001:db8:"
            ]
        );
        assert!(matches!(v, Verdict::Reject(_)));
        // The domain's name is not a key of an A check.
        let (v, _) = run(Servers::A, "a@plain.test", &[("plain.test", "REJECT")]);
        assert_eq!(v, Verdict::Dunno);
    }

    #[test]
    fn ns_walks_up_to_the_closest_zone() {
        let (v, asked) = run(
            Servers::Ns,
            "a@www.mail.spam.test",
            &[("203.0.113.53", "REJECT bad hosting")],
        );
        assert_eq!(
            v,
            rejected("<a@www.mail.spam.test>: Sender address rejected: bad hosting")
        );
        assert_eq!(
            asked,
            ["ns1.dark.test", "dark.test", "test", "203.0.113.53"]
        );
        // No NS anywhere up the tree: no opinion.
        let (v, asked) = run(Servers::Ns, "a@nowhere.example", &[("example", "REJECT")]);
        assert_eq!(v, Verdict::Dunno);
        assert!(asked.is_empty());
        // An address literal has no name servers.
        assert_eq!(
            run(Servers::Ns, "a@[192.0.2.9]", &[("192.0.2.9", "REJECT")]).0,
            Verdict::Dunno
        );
    }

    /// Runs `servers` for the client 192.0.2.1 (PTR `ptr`, unverified)
    /// against `table`.
    fn reverse(servers: Servers, ptr: Option<&str>, table: &[(&str, &str)]) -> Verdict {
        let entry = ServerAccess::from_args(
            Kind::ReverseClient,
            servers,
            vec![("1".to_owned(), "hash:/etc/postfix/rev".to_owned())],
        )
        .unwrap();
        let mut dns = dns();
        if let Some(ptr) = ptr {
            dns = dns.with("ptr", "192.0.2.1", &[ptr]);
        }
        let table: HashMap<_, _> = table.iter().map(|(k, v)| (*k, *v)).collect();
        let req = request("192.0.2.1");
        entry
            .check(&req, &dns, &mut |k| table.get(k).map(|v| (*v).to_owned()))
            .verdict
    }

    #[test]
    fn reverse_client_names_are_judged_by_their_servers() {
        let unverified = |text: &str| {
            rejected(&format!(
                "<unknown[192.0.2.1]>: Unverified Client host rejected: {text}"
            ))
        };
        // The PTR name's mail exchangers, name servers, own addresses.
        assert_eq!(
            reverse(
                Servers::Mx,
                Some("host.spam.test."),
                &[("bulk.test", "REJECT mx")]
            ),
            Verdict::Dunno,
            "host.spam.test has no MX of its own: it is its own server"
        );
        assert_eq!(
            reverse(
                Servers::Mx,
                Some("spam.test"),
                &[("bulk.test", "REJECT mx")]
            ),
            unverified("mx")
        );
        assert_eq!(
            reverse(
                Servers::Ns,
                Some("www.spam.test"),
                &[("203.0.113.53", "REJECT ns")]
            ),
            unverified("ns")
        );
        assert_eq!(
            reverse(
                Servers::A,
                Some("plain.test"),
                &[("192.0.2.50", "REJECT a")]
            ),
            unverified("a")
        );
        // No PTR name: nothing to judge.
        assert_eq!(
            reverse(Servers::A, None, &[("192.0.2.50", "REJECT a")]),
            Verdict::Dunno
        );
    }

    #[test]
    fn nothing_to_judge_has_no_opinion() {
        assert_eq!(run(Servers::Mx, "", &[("<>", "REJECT")]).0, Verdict::Dunno);
        let (v, asked) = run(Servers::Mx, "a@slow.test", &[("slow.test", "REJECT")]);
        assert_eq!(v, Verdict::Dunno);
        assert!(asked.is_empty());
        assert!(ServerAccess::from_args(Kind::Sasl, Servers::Mx, Vec::new()).is_err());
    }
}
