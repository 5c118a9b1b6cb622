//! The query names of a DNS list (the reversed address, or the domain of
//! a name or address) and what the list answers: the A lookup that
//! decides, through the reply filter, and the TXT lookup that gives the
//! reason.

use std::net::{IpAddr, Ipv4Addr};

use super::Filter;
use crate::hostname::valid_hostname;
use crate::resolver::{Resolver, is_temporary};

/// Postfix concatenates TXT records up to this many bytes (`RBL_TXT_LIMIT`).
const TXT_LIMIT: usize = 500;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::resolver::fake::FakeDns;

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
}
