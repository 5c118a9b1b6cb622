//! The `dns` host import: A, AAAA, MX, TXT, PTR and NS lookups through
//! hickory-resolver, with NXDOMAIN, SERVFAIL and timeouts told apart.
//!
//! Time: each lookup is bounded by [`DnsConfig::timeout`]. A plugin's
//! deadline is CPU time (the `deadline` module), and waiting on DNS uses
//! none, so a plugin that asks a slow RBL is not cut off for it, and one
//! that spins is still cut off after its own deadline of CPU time; the
//! call's backstop and wall-clock ceiling do not count DNS waits either.
//! What the host waits on DNS in one call is bounded by
//! [`DnsConfig::budget`]: once it is spent, lookups fail with `timeout` at
//! once, so a plugin cannot hold a session by looking names up forever.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolveHosts, ResolverOpts};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use crate::bindings::postern::policy::dns::{DnsError as WitError, Exchanger};

/// How the server resolves names for plugins: `[dns]` in the server
/// config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The name servers to ask, as `ip:port` (UDP, then TCP for truncated
    /// answers). Empty: those of `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// How long one lookup may take. 5 s, as Postfix's resolver (and the
    /// resolv.conf default) waits for one answer.
    pub timeout: Duration,
    /// The most DNS time one plugin call may use, all lookups together.
    /// 10 s: a couple of lookups that time out, or dozens that do not.
    pub budget: Duration,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            budget: Duration::from_secs(10),
        }
    }
}

/// The resolver of one snapshot, shared by every call of it.
#[derive(Clone)]
pub(crate) struct Dns {
    /// `None` when the system configuration could not be read: every
    /// lookup answers servfail (and the load said why, once).
    resolver: Option<TokioResolver>,
    pub(crate) config: DnsConfig,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dns {
    /// A resolver for `config`. Creating one touches no socket.
    pub(crate) fn new(config: &DnsConfig) -> Dns {
        let mut opts = ResolverOpts::default();
        opts.timeout = config.timeout;
        opts.attempts = 1;
        // Names from plugins are absolute (an RBL query is); no search
        // list, no /etc/hosts.
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver = match postern_dns::resolver(&config.nameservers, opts) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(target: "postern/policy", "{e}; plugin DNS lookups will fail");
                None
            }
        };
        Dns {
            resolver,
            config: config.clone(),
        }
    }

    /// Looks `name` up for records of `kind`, within `limit`; returns the
    /// answer and how long the host waited.
    pub(crate) async fn lookup(
        &self,
        name: &str,
        kind: RecordType,
        limit: Duration,
    ) -> (Result<Vec<RData>, WitError>, Duration) {
        let started = Instant::now();
        let result = self.lookup_inner(name, kind, limit).await;
        (result, started.elapsed())
    }

    async fn lookup_inner(
        &self,
        name: &str,
        kind: RecordType,
        limit: Duration,
    ) -> Result<Vec<RData>, WitError> {
        if limit.is_zero() {
            return Err(WitError::Timeout);
        }
        let Some(resolver) = &self.resolver else {
            return Err(WitError::Servfail);
        };
        let name = absolute(name)?;
        let lookup = resolver.lookup(name, kind);
        match tokio::time::timeout(limit.min(self.config.timeout), lookup).await {
            Err(_elapsed) => Err(WitError::Timeout),
            Ok(Err(e)) => no_answer(&e),
            Ok(Ok(lookup)) => Ok(lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == kind)
                .map(|r| r.data.clone())
                .collect()),
        }
    }
}

/// `name` as an absolute DNS name: plugins name hosts, not search-list
/// fragments.
fn absolute(name: &str) -> Result<Name, WitError> {
    let mut name = Name::from_utf8(name.trim())
        .map_err(|e| WitError::Other(format!("{name:?} is not a domain name: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The reverse (in-addr.arpa / ip6.arpa) name of an address given as text.
pub(crate) fn reverse_name(address: &str) -> Result<String, WitError> {
    let ip: IpAddr = address
        .trim()
        .parse()
        .map_err(|_| WitError::Other(format!("{address:?} is not an IP address")))?;
    Ok(Name::from(ip).to_string())
}

/// The answer for a lookup that failed: no records of the type is an
/// empty answer, NXDOMAIN is its own error, the rest say whether retrying
/// later may help.
fn no_answer(e: &NetError) -> Result<Vec<RData>, WitError> {
    if e.is_nx_domain() {
        return Err(WitError::Nxdomain);
    }
    match e {
        NetError::Dns(DnsError::NoRecordsFound(_)) => Ok(Vec::new()),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::NXDomain)) => Err(WitError::Nxdomain),
        NetError::Dns(DnsError::ResponseCode(_)) => Err(WitError::Servfail),
        NetError::Timeout => Err(WitError::Timeout),
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Err(WitError::Timeout),
        // No server reachable, a server that sent garbage: the lookup
        // failed for reasons that may pass, as SERVFAIL does.
        _ => Err(WitError::Servfail),
    }
}

/// A-record data as text.
pub(crate) fn addresses(data: Vec<RData>) -> Vec<String> {
    data.into_iter()
        .filter_map(|d| match d {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// MX-record data.
pub(crate) fn exchangers(data: Vec<RData>) -> Vec<Exchanger> {
    data.into_iter()
        .filter_map(|d| match d {
            RData::MX(mx) => Some(Exchanger {
                preference: mx.preference,
                exchange: without_dot(&mx.exchange),
            }),
            _ => None,
        })
        .collect()
}

/// TXT-record data, each record's strings joined.
pub(crate) fn texts(data: Vec<RData>) -> Vec<String> {
    data.into_iter()
        .filter_map(|d| match d {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// PTR- or NS-record data: the names.
pub(crate) fn names(data: Vec<RData>) -> Vec<String> {
    data.into_iter()
        .filter_map(|d| match d {
            RData::PTR(ptr) => Some(without_dot(&ptr.0)),
            RData::NS(ns) => Some(without_dot(&ns.0)),
            _ => None,
        })
        .collect()
}

fn without_dot(name: &Name) -> String {
    let text = name.to_utf8();
    text.strip_suffix('.').map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.1").ok().as_deref(),
            Some("1.2.0.192.in-addr.arpa.")
        );
        assert!(matches!(reverse_name("nope"), Err(WitError::Other(_))));
    }
}
