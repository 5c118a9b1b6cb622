//! MX and address lookups for remote delivery (RFC 5321 §5.1) through
//! hickory-resolver, asking the name servers of the server's `[dns]`
//! section (the ones policy plugins ask) or those of /etc/resolv.conf.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolveHosts, ResolverOpts};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

/// Why a lookup gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The name does not exist (NXDOMAIN): permanent.
    #[error(
        "Host or domain name not found. Name service error for name={name} type={kind}: Host not found"
    )]
    NotFound {
        /// The name.
        name: String,
        /// The record type.
        kind: &'static str,
    },
    /// SERVFAIL, a timeout, no server reachable: try again later.
    #[error(
        "Host or domain name not found. Name service error for name={name} type={kind}: Host not found, try again"
    )]
    Temporary {
        /// The name.
        name: String,
        /// The record type.
        kind: &'static str,
    },
}

impl LookupError {
    /// Whether retrying later may help.
    pub fn is_temporary(&self) -> bool {
        matches!(self, LookupError::Temporary { .. })
    }
}

/// What the MX lookup of a domain said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchangers {
    /// MX hosts, best (lowest preference) first; equal preferences in the
    /// order the server gave them.
    Hosts(Vec<(u16, String)>),
    /// No MX records: the domain itself is the host (RFC 5321 §5.1).
    Implicit,
    /// `MX 0 .` (RFC 7505): the domain accepts no mail.
    Null,
}

/// The resolver remote delivery uses.
#[derive(Clone)]
pub struct Dns {
    resolver: Option<TokioResolver>,
    timeout: Duration,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Dns {
    /// A resolver asking `nameservers` (UDP, TCP for truncated answers),
    /// or the system's when the list is empty; each lookup bounded by
    /// `timeout`. Touches no socket yet.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Dns {
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        // Mail domains are absolute: no search list, and DNS only, as
        // Postfix's smtp_host_lookup = dns.
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver = match postern_dns::resolver(nameservers, opts) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(target: "postern/smtp", "{e}; remote delivery will defer");
                None
            }
        };
        Dns { resolver, timeout }
    }

    /// The MX hosts of `domain`.
    pub async fn exchangers(&self, domain: &str) -> Result<Exchangers, LookupError> {
        let data = self.lookup(domain, RecordType::MX, "MX").await?;
        let mut hosts: Vec<(u16, String)> = data
            .into_iter()
            .filter_map(|d| match d {
                RData::MX(mx) => Some((mx.preference, without_dot(&mx.exchange))),
                _ => None,
            })
            .collect();
        if hosts.is_empty() {
            return Ok(Exchangers::Implicit);
        }
        // RFC 7505 §3: a single MX with an empty exchange (the root).
        if hosts.iter().any(|(_, h)| h.is_empty()) {
            return Ok(Exchangers::Null);
        }
        hosts.sort_by_key(|(pref, _)| *pref);
        Ok(Exchangers::Hosts(hosts))
    }

    /// The IPv4 and IPv6 addresses of `host` (an address literal is its
    /// own answer).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let mut out = Vec::new();
        let v4 = self.lookup(host, RecordType::A, "A").await;
        let v6 = self.lookup(host, RecordType::AAAA, "AAAA").await;
        for data in [&v4, &v6].into_iter().flatten() {
            out.extend(data.iter().filter_map(|d| match d {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            }));
        }
        if !out.is_empty() {
            return Ok(out);
        }
        match (v4, v6) {
            (Err(e), _) if e.is_temporary() => Err(e),
            (_, Err(e)) if e.is_temporary() => Err(e),
            _ => Err(LookupError::NotFound {
                name: host.to_owned(),
                kind: "A",
            }),
        }
    }

    async fn lookup(
        &self,
        name: &str,
        kind: RecordType,
        label: &'static str,
    ) -> Result<Vec<RData>, LookupError> {
        let temporary = || LookupError::Temporary {
            name: name.to_owned(),
            kind: label,
        };
        let Some(resolver) = &self.resolver else {
            return Err(temporary());
        };
        let mut fqdn = Name::from_utf8(name).map_err(|_| LookupError::NotFound {
            name: name.to_owned(),
            kind: label,
        })?;
        fqdn.set_fqdn(true);
        // Both attempts, and a little more, before giving up.
        let limit = self.timeout * 3;
        match tokio::time::timeout(limit, resolver.lookup(fqdn, kind)).await {
            Err(_) => Err(temporary()),
            Ok(Ok(lookup)) => Ok(lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == kind)
                .map(|r| r.data.clone())
                .collect()),
            Ok(Err(e)) if e.is_nx_domain() => Err(LookupError::NotFound {
                name: name.to_owned(),
                kind: label,
            }),
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(_)))) => Ok(Vec::new()),
            Ok(Err(_)) => Err(temporary()),
        }
    }
}

fn without_dot(name: &Name) -> String {
    let text = name.to_utf8();
    text.strip_suffix('.')
        .map(str::to_owned)
        .unwrap_or(text)
        .to_ascii_lowercase()
}
