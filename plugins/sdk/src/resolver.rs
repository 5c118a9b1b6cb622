//! The `dns` import behind a trait, so that the DNS checks built on it
//! ([`crate::rbl`], [`crate::lookup`]) run against the host in a plugin and
//! against a table of made-up answers in a unit test on the build machine.

use crate::dns::{self, DnsError, Exchanger};

/// The lookups the DNS checks make: the `dns` import's functions.
pub trait Resolver {
    /// The IPv4 addresses of `name`.
    fn a(&self, name: &str) -> Result<Vec<String>, DnsError>;
    /// The IPv6 addresses of `name`.
    fn aaaa(&self, name: &str) -> Result<Vec<String>, DnsError>;
    /// The mail exchangers of `name`.
    fn mx(&self, name: &str) -> Result<Vec<Exchanger>, DnsError>;
    /// The TXT records of `name`, each one's strings joined.
    fn txt(&self, name: &str) -> Result<Vec<String>, DnsError>;
    /// The PTR names of the address `address`.
    fn ptr(&self, address: &str) -> Result<Vec<String>, DnsError>;
    /// The name servers of `name`. A default, so that resolvers written
    /// before the `ns` import (test zones) need not answer it.
    fn ns(&self, name: &str) -> Result<Vec<String>, DnsError> {
        Err(DnsError::Other(format!("no NS lookups here ({name})")))
    }
}

/// The server's resolver, through the `dns` import.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostDns;

impl Resolver for HostDns {
    fn a(&self, name: &str) -> Result<Vec<String>, DnsError> {
        dns::a(name)
    }
    fn aaaa(&self, name: &str) -> Result<Vec<String>, DnsError> {
        dns::aaaa(name)
    }
    fn mx(&self, name: &str) -> Result<Vec<Exchanger>, DnsError> {
        dns::mx(name)
    }
    fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        dns::txt(name)
    }
    fn ptr(&self, address: &str) -> Result<Vec<String>, DnsError> {
        dns::ptr(address)
    }
    fn ns(&self, name: &str) -> Result<Vec<String>, DnsError> {
        dns::ns(name)
    }
}

/// Whether a lookup error is temporary (try again later) rather than a
/// definite "no such name": Postfix's `DNS_RETRY` as opposed to
/// `DNS_NOTFOUND`.
pub fn is_temporary(error: &DnsError) -> bool {
    matches!(error, DnsError::Servfail | DnsError::Timeout)
}

/// Made-up DNS answers for unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
pub(crate) mod fake {
    use std::collections::HashMap;

    use super::Resolver;
    use crate::dns::{DnsError, Exchanger};

    /// An answer per (type, name); a name not listed is nxdomain.
    #[derive(Default)]
    pub(crate) struct FakeDns {
        pub(crate) answers: HashMap<(&'static str, String), Result<Vec<String>, DnsError>>,
    }

    impl FakeDns {
        pub(crate) fn with(mut self, kind: &'static str, name: &str, values: &[&str]) -> Self {
            let values = values.iter().map(|v| (*v).to_owned()).collect();
            self.answers.insert((kind, name.to_owned()), Ok(values));
            self
        }

        pub(crate) fn failing(mut self, kind: &'static str, name: &str, e: DnsError) -> Self {
            self.answers.insert((kind, name.to_owned()), Err(e));
            self
        }

        fn get(&self, kind: &'static str, name: &str) -> Result<Vec<String>, DnsError> {
            self.answers
                .get(&(kind, name.to_owned()))
                .cloned()
                .unwrap_or(Err(DnsError::Nxdomain))
        }
    }

    /// A RCPT request from `client_address`, everything else empty.
    pub(crate) fn request(client_address: &str) -> crate::Request {
        crate::Request {
            client_address: client_address.to_owned(),
            ..crate::Request::empty(crate::Stage::Recipient)
        }
    }

    impl Resolver for FakeDns {
        fn a(&self, name: &str) -> Result<Vec<String>, DnsError> {
            self.get("a", name)
        }
        fn aaaa(&self, name: &str) -> Result<Vec<String>, DnsError> {
            self.get("aaaa", name)
        }
        /// MX answers are written "PREF EXCHANGE".
        fn mx(&self, name: &str) -> Result<Vec<Exchanger>, DnsError> {
            Ok(self
                .get("mx", name)?
                .into_iter()
                .map(|v| {
                    let (pref, exchange) = v.split_once(' ').unwrap_or((&v, ""));
                    Exchanger {
                        preference: pref.parse().unwrap_or(0),
                        exchange: exchange.to_owned(),
                    }
                })
                .collect())
        }
        fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
            self.get("txt", name)
        }
        fn ptr(&self, address: &str) -> Result<Vec<String>, DnsError> {
            self.get("ptr", address)
        }
        fn ns(&self, name: &str) -> Result<Vec<String>, DnsError> {
            self.get("ns", name)
        }
    }
}
