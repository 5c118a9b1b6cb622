//! The DNS questions behind Postfix's `reject_unknown_*` restrictions: the
//! client's names (`smtpd_peer.c`: PTR, then forward confirmation), a
//! HELO host name (A, AAAA or MX: `reject_unknown_hostname`) and a mail
//! domain (MX, else A or AAAA, a null MX refused: `reject_unknown_mailhost`,
//! RFC 7505).
//!
//! The server hands over `client-name` and `reverse-client-name`; where it
//! says "unknown" (it may not have looked), the plugins ask here.

use std::net::IpAddr;

use crate::Request;
use crate::dns::DnsError;
use crate::resolver::{Resolver, is_temporary};

/// What is known of a client's name, as Postfix's `name_status` and
/// `reverse_name_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameStatus {
    /// The name (verified or not, depending on the question).
    Ok(String),
    /// No answer for now (SERVFAIL, timeout): Postfix's `SMTPD_PEER_CODE_TEMP`.
    Temporary,
    /// No name (no PTR record, or no valid one): `SMTPD_PEER_CODE_PERM`.
    Unknown,
    /// A PTR name whose addresses do not include the client's:
    /// `SMTPD_PEER_CODE_FORGED`. The text says which, for the log.
    Forged(String),
}

/// The client's PTR name, unverified (`reverse_client_name`): the server's
/// if it has one, else the first valid name the PTR lookup gives.
pub fn reverse_name(dns: &dyn Resolver, req: &Request) -> NameStatus {
    if !req.reverse_client_name.is_empty() && req.reverse_client_name != "unknown" {
        return NameStatus::Ok(req.reverse_client_name.clone());
    }
    match ptr_names(dns, &req.client_address) {
        Ok(names) => names
            .into_iter()
            .next()
            .map_or(NameStatus::Unknown, NameStatus::Ok),
        Err(e) if is_temporary(&e) => NameStatus::Temporary,
        Err(_) => NameStatus::Unknown,
    }
}

/// The client's forward-confirmed name (`client_name`): the server's if it
/// has one, else the first PTR name whose A or AAAA records include the
/// client's address.
pub fn verified_name(dns: &dyn Resolver, req: &Request) -> NameStatus {
    if !req.client_name.is_empty() && req.client_name != "unknown" {
        return NameStatus::Ok(req.client_name.clone());
    }
    let Ok(addr) = req.client_address.parse::<IpAddr>() else {
        return NameStatus::Unknown;
    };
    let names = match ptr_names(dns, &req.client_address) {
        Ok(names) if names.is_empty() => return NameStatus::Unknown,
        Ok(names) => names,
        Err(e) if is_temporary(&e) => return NameStatus::Temporary,
        Err(_) => return NameStatus::Unknown,
    };
    let mut temporary = false;
    for name in &names {
        let answer = match addr {
            IpAddr::V4(_) => dns.a(name),
            IpAddr::V6(_) => dns.aaaa(name),
        };
        match answer {
            Ok(addrs) => {
                if addrs
                    .iter()
                    .any(|a| a.parse::<IpAddr>().is_ok_and(|a| a == addr))
                {
                    return NameStatus::Ok(name.clone());
                }
            }
            Err(e) if is_temporary(&e) => temporary = true,
            Err(_) => {}
        }
    }
    if temporary {
        return NameStatus::Temporary;
    }
    NameStatus::Forged(format!(
        "hostname {} does not resolve to address {}",
        names.join(", "),
        req.client_address
    ))
}

/// The PTR names of `address` that are valid host names, lower-cased.
fn ptr_names(dns: &dyn Resolver, address: &str) -> Result<Vec<String>, DnsError> {
    if address.parse::<IpAddr>().is_err() {
        return Err(DnsError::Nxdomain);
    }
    Ok(dns
        .ptr(address)?
        .into_iter()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| crate::hostname::valid_hostname(n))
        .collect())
}

/// Whether a name resolves, for `reject_unknown_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolves {
    /// It has an address or a mail exchanger.
    Yes,
    /// It has a null MX (RFC 7505): it exists but takes no mail.
    NullMx,
    /// It has neither (or does not exist).
    No,
    /// The DNS did not answer (SERVFAIL, timeout).
    Temporary,
}

/// Whether `answer` is a null MX (RFC 7505 §3: a single MX record of
/// preference 0 whose exchange is "."; the host hands it over without the
/// dot, so empty).
fn is_null_mx(answer: &[crate::dns::Exchanger]) -> bool {
    answer.len() == 1 && answer[0].exchange.trim_end_matches('.').is_empty()
}

/// A HELO host name (`reject_unknown_helo_hostname`): A, then AAAA, then
/// MX; a null MX counts as found (MTA names may have one).
pub fn host_name(dns: &dyn Resolver, name: &str) -> Resolves {
    let mut temporary = false;
    let mut note = |r: Result<bool, DnsError>| match r {
        Ok(found) => found,
        Err(e) => {
            temporary |= is_temporary(&e);
            false
        }
    };
    if note(dns.a(name).map(|v| !v.is_empty()))
        || note(dns.aaaa(name).map(|v| !v.is_empty()))
        || note(dns.mx(name).map(|v| !v.is_empty()))
    {
        return Resolves::Yes;
    }
    if temporary {
        Resolves::Temporary
    } else {
        Resolves::No
    }
}

/// A mail domain (`reject_unknown_sender_domain`,
/// `reject_unknown_recipient_domain`): MX, then A, then AAAA (RFC 5321
/// §5.1: no MX means the domain's address is its mail exchanger); a null
/// MX (RFC 7505) is its own answer.
pub fn mail_domain(dns: &dyn Resolver, domain: &str) -> Resolves {
    let mut temporary = false;
    match dns.mx(domain) {
        Ok(mx) if is_null_mx(&mx) => return Resolves::NullMx,
        Ok(mx) if !mx.is_empty() => return Resolves::Yes,
        Ok(_) => {}
        // The name does not exist: no address record either.
        Err(DnsError::Nxdomain) => return Resolves::No,
        Err(e) => temporary |= is_temporary(&e),
    }
    for answer in [dns.a(domain), dns.aaaa(domain)] {
        match answer {
            Ok(addrs) if !addrs.is_empty() => return Resolves::Yes,
            Ok(_) => {}
            Err(e) => temporary |= is_temporary(&e),
        }
    }
    if temporary {
        Resolves::Temporary
    } else {
        Resolves::No
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::resolver::fake::FakeDns;

    fn client(addr: &str) -> Request {
        crate::resolver::fake::request(addr)
    }

    #[test]
    fn forward_confirmed_names() {
        let dns = FakeDns::default()
            .with("ptr", "192.0.2.10", &["mail.test."])
            .with("a", "mail.test", &["192.0.2.10"])
            .with("ptr", "192.0.2.11", &["forged.test"])
            .with("a", "forged.test", &["192.0.2.99"])
            .with("ptr", "192.0.2.12", &["slow.test"])
            .failing("a", "slow.test", DnsError::Timeout)
            .failing("ptr", "192.0.2.13", DnsError::Servfail)
            .with("ptr", "192.0.2.14", &["bad name"])
            .with("ptr", "2001:db8::10", &["six.test"])
            .with("aaaa", "six.test", &["2001:db8:0:0::10"]);
        let name = |a: &str| verified_name(&dns, &client(a));
        assert_eq!(name("192.0.2.10"), NameStatus::Ok("mail.test".to_owned()));
        assert!(matches!(name("192.0.2.11"), NameStatus::Forged(t) if t.contains("forged.test")));
        assert_eq!(name("192.0.2.12"), NameStatus::Temporary);
        assert_eq!(name("192.0.2.13"), NameStatus::Temporary);
        assert_eq!(name("192.0.2.14"), NameStatus::Unknown);
        assert_eq!(name("192.0.2.15"), NameStatus::Unknown);
        assert_eq!(name("2001:db8::10"), NameStatus::Ok("six.test".to_owned()));
        let rev = |a: &str| reverse_name(&dns, &client(a));
        assert_eq!(rev("192.0.2.11"), NameStatus::Ok("forged.test".to_owned()));
        assert_eq!(rev("192.0.2.13"), NameStatus::Temporary);
        assert_eq!(rev("192.0.2.15"), NameStatus::Unknown);
        let mut known = client("192.0.2.15");
        known.client_name = "given.test".to_owned();
        assert_eq!(
            verified_name(&dns, &known),
            NameStatus::Ok("given.test".to_owned())
        );
    }

    #[test]
    fn mail_domains_and_host_names() {
        let dns = FakeDns::default()
            .with("mx", "mx.test", &["10 mx1.mx.test"])
            .with("mx", "null.test", &["0 "])
            .with("mx", "addr.test", &[])
            .with("a", "addr.test", &["192.0.2.1"])
            .with("mx", "empty.test", &[])
            .with("a", "empty.test", &[])
            .with("aaaa", "empty.test", &[])
            .failing("mx", "fail.test", DnsError::Servfail)
            .with("a", "six.test", &[])
            .with("aaaa", "six.test", &["2001:db8::1"]);
        assert_eq!(mail_domain(&dns, "mx.test"), Resolves::Yes);
        assert_eq!(mail_domain(&dns, "null.test"), Resolves::NullMx);
        assert_eq!(mail_domain(&dns, "addr.test"), Resolves::Yes);
        assert_eq!(mail_domain(&dns, "empty.test"), Resolves::No);
        assert_eq!(mail_domain(&dns, "missing.test"), Resolves::No);
        assert_eq!(mail_domain(&dns, "fail.test"), Resolves::Temporary);
        assert_eq!(host_name(&dns, "six.test"), Resolves::Yes);
        assert_eq!(host_name(&dns, "null.test"), Resolves::Yes);
        assert_eq!(host_name(&dns, "missing.test"), Resolves::No);
        assert_eq!(host_name(&dns, "fail.test"), Resolves::Temporary);
    }
}
