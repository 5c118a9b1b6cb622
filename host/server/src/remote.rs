//! Remote delivery from the config: the outbound client's settings, the
//! `transport_maps` and `smtp_sasl_password_maps` tables, the resolver of
//! `[dns]`, and the [`Router`] the queue delivers through.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use postern_delivery::remote::{Dns, ReuseLimits};
use postern_delivery::{LocalDelivery, RemoteDelivery, RemoteSettings, Router};
use postern_smtp::client::{ClientTls, TlsLevel};
use postern_tables::Table;

use crate::config::Config;
use crate::config::smtp_client::TableRef;

/// The router over `local` and a remote agent built from `config`;
/// `own_addresses` are this server's SMTP listeners (a next hop that is
/// one of them is a mail loop). Errors name the parameter and file.
pub fn router(
    config: &Config,
    local: Arc<LocalDelivery>,
    own_addresses: Vec<SocketAddr>,
) -> anyhow::Result<Router> {
    let main = &config.main;
    let c = &main.smtp;
    let tls = match c.smtp_tls_security_level {
        TlsLevel::None => None,
        _ => Some(Arc::new(
            ClientTls::new(c.smtp_tls_ca_file.as_deref())
                .with_context(|| format!("{}: smtp_tls_CAfile", config.source.file))?,
        )),
    };
    let mut settings = RemoteSettings::new(main.myhostname.as_str());
    settings.helo_name = if c.smtp_helo_name.is_empty() {
        main.myhostname.to_string()
    } else {
        c.smtp_helo_name.clone()
    };
    settings.smtp_tcp_port = c.smtp_tcp_port;
    settings.tls_level = c.smtp_tls_security_level;
    settings.tls = tls;
    settings.timeouts = c.timeouts;
    settings.sasl_auth_enable = c.smtp_sasl_auth_enable;
    settings.sasl_password_maps = load(
        config,
        "smtp_sasl_password_maps",
        &c.smtp_sasl_password_maps,
    )?;
    settings.smtp_concurrency = c.smtp_concurrency;
    settings.lmtp_concurrency = c.lmtp_concurrency;
    settings.destination_recipient_limit =
        usize::try_from(c.default_destination_recipient_limit).unwrap_or(usize::MAX);
    settings.connection_cache = ReuseLimits {
        idle: c.smtp_connection_cache_time_limit,
        age: c.smtp_connection_reuse_time_limit,
        count: u32::try_from(c.smtp_connection_reuse_count_limit).unwrap_or(u32::MAX),
    };
    settings.own_addresses = own_addresses;
    // A dead destination is probed again after minimal_backoff_time, as
    // qmgr's throttled queue is.
    settings.dead_destination_time = main.minimal_backoff_time;
    let dns = &config.policy.dns;
    let remote = RemoteDelivery::new(settings, Dns::new(&dns.nameservers, dns.timeout));
    // The same classes as the SMTP server's directory: mail it accepts
    // for these domains is delivered here. Domains of the users file are
    // not listed: the router asks the delivery agent, whose users file
    // follows `postern reload`.
    let local_domains: BTreeSet<_> = main
        .mydestination
        .iter()
        .chain(&main.virtual_mailbox_domains)
        .cloned()
        .collect();
    Ok(Router::new(
        local,
        Arc::new(remote),
        local_domains,
        load(config, "transport_maps", &c.transport_maps)?,
        c.relayhost.clone(),
    ))
}

/// Reads the tables a parameter names.
fn load(config: &Config, name: &str, refs: &[TableRef]) -> anyhow::Result<Vec<Arc<Table>>> {
    refs.iter()
        .map(|t| {
            Table::load(t.kind, &t.path)
                .map(Arc::new)
                .map_err(|e| anyhow::anyhow!("{}: {name}: {e}", config.source.file))
        })
        .collect()
}
