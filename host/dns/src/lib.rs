//! The DNS resolver Postern's lookups share: policy plugins' `dns` import
//! and remote delivery's MX and address lookups ask the same name servers,
//! those of the config's `[dns] nameservers` (so tests and operators can
//! point Postern at a chosen server) or else those of /etc/resolv.conf.
//!
//! Postfix counterpart: the resolver library its smtp client and smtpd's
//! restrictions both link. This crate only builds the resolver; what to
//! ask, how errors map to replies and how long a caller may wait stay with
//! each caller (`postern-policy`'s `dns` module, `postern-delivery`'s
//! `remote::dns`).

use std::net::SocketAddr;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

/// Why no resolver could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolverError {
    /// /etc/resolv.conf could not be read or parsed.
    #[error("cannot read the system DNS configuration: {0}")]
    SystemConfig(String),
    /// The options were refused.
    #[error("cannot set up the DNS resolver: {0}")]
    Build(String),
}

/// A resolver with `opts` asking `nameservers` (UDP, and TCP for truncated
/// answers), or the system's when the list is empty. Touches no socket.
pub fn resolver(
    nameservers: &[SocketAddr],
    opts: ResolverOpts,
) -> Result<TokioResolver, ResolverError> {
    let provider = TokioRuntimeProvider::default();
    let builder = if nameservers.is_empty() {
        Resolver::builder(provider).map_err(|e| ResolverError::SystemConfig(e.to_string()))?
    } else {
        let servers = nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
    };
    builder
        .with_options(opts)
        .build()
        .map_err(|e| ResolverError::Build(e.to_string()))
}
