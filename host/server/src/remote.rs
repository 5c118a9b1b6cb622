//! Remote delivery from the config: the outbound client's settings, the
//! `transport_maps` and `smtp_sasl_password_maps` tables, the resolver of
//! `[dns]`, and the [`Router`] the queue delivers through.
//!
//! The queue delivers through [`Routes`], which a reload rebuilds from the
//! re-read config and swaps in whole, as `postfix reload` restarts
//! trivial-rewrite and smtp: `relayhost`, `transport_maps` (tables read
//! again), the `smtp_*` client parameters and `[dns]` take effect for the
//! deliveries that start after it. Deliveries under way finish with the
//! router they started with; the new one starts with an empty connection
//! cache. The domains delivered here (`mydestination`,
//! `virtual_mailbox_domains`) are swapped with the local agent's and the
//! SMTP server's address classes (`relay_domains` too) by the same
//! [`Routes::swap`], so that the router never disagrees with what RCPT
//! accepts for longer than the swap takes.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use postern_delivery::remote::{Dns, ReuseLimits};
use postern_delivery::{LocalDelivery, RemoteDelivery, RemoteSettings, Router};
use postern_mail::{
    BoxFuture, Deliver, Delivered, DeliveryStatus, Domain, Envelope, QueueId, Recipient,
};
use postern_smtp::client::{ClientTls, TlsLevel};
use postern_tables::Table;

use crate::config::Config;
use crate::config::smtp_client::TableRef;
use crate::directory::ConfigDirectory;

/// The same classes as the SMTP server's directory: mail it accepts for
/// these domains is delivered here. Domains of the users file are not
/// listed: the router asks the delivery agent, whose users file follows
/// `postern reload`.
fn local_domains(config: &Config) -> BTreeSet<Domain> {
    let main = &config.main;
    main.mydestination
        .iter()
        .chain(&main.virtual_mailbox_domains)
        .cloned()
        .collect()
}

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
    Ok(Router::new(
        local,
        Arc::new(remote),
        local_domains(config),
        load(config, "transport_maps", &c.transport_maps)?,
        c.relayhost.clone(),
    ))
}

/// Reads the tables a parameter names (a table only root may read through
/// the root helper, at a reload).
fn load(config: &Config, name: &str, refs: &[TableRef]) -> anyhow::Result<Vec<Arc<Table>>> {
    refs.iter()
        .map(|t| {
            crate::daemon::load_table(t.kind, &t.path)
                .map(Arc::new)
                .map_err(|e| anyhow::anyhow!("{}: {name}: {e}", config.source.file))
        })
        .collect()
}

/// The router in force, which the queue delivers through and a reload
/// replaces.
pub struct Routes {
    current: ArcSwap<Router>,
    /// The local agent every router hands local mail to.
    local: Arc<LocalDelivery>,
    /// This server's SMTP listeners, a mail loop as a next hop.
    own_addresses: Vec<SocketAddr>,
    /// The SMTP server's address classes, swapped with the router.
    directory: Arc<ConfigDirectory>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("own_addresses", &self.own_addresses)
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// The routes of `config` ([`router`]); `directory` is the SMTP
    /// server's view of the same domains, made from the same config.
    pub fn new(
        config: &Config,
        local: Arc<LocalDelivery>,
        own_addresses: Vec<SocketAddr>,
        directory: Arc<ConfigDirectory>,
    ) -> anyhow::Result<Routes> {
        let first = router(config, Arc::clone(&local), own_addresses.clone())?;
        Ok(Routes {
            current: ArcSwap::from_pointee(first),
            local,
            own_addresses,
            directory,
        })
    }

    /// The local delivery agent.
    pub fn local(&self) -> &Arc<LocalDelivery> {
        &self.local
    }

    /// The router of a re-read `config`, built and checked, not yet in
    /// force; errors name the parameter and file.
    pub fn prepare(&self, config: &Config) -> anyhow::Result<Router> {
        router(config, Arc::clone(&self.local), self.own_addresses.clone())
    }

    /// Puts `router`, made by [`Routes::prepare`] from `config`, in force
    /// for the deliveries that start from now on, with `config`'s domains:
    /// the local agent's first (so that mail RCPT accepts for a new domain
    /// finds it local), then the SMTP server's address classes.
    pub fn swap(&self, router: Router, config: &Config) {
        self.local
            .replace_local_domains(config.main.mydestination.clone());
        self.current.store(Arc::new(router));
        self.directory.replace(&config.main);
    }
}

/// Each call goes to the router in force when it is made.
impl Deliver for Routes {
    fn agent(&self) -> &'static str {
        self.current.load().agent()
    }

    fn deliver<'a>(
        &'a self,
        id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        let router = self.current.load_full();
        Box::pin(async move { router.deliver(id, envelope, recipient, content).await })
    }

    fn destination(&self, recipient: &Recipient) -> Option<String> {
        self.current.load().destination(recipient)
    }

    fn deliver_at_once<'a>(
        &'a self,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, Option<Delivered>> {
        let router = self.current.load_full();
        Box::pin(async move { router.deliver_at_once(envelope, recipient, content).await })
    }

    fn deliver_batch<'a>(
        &'a self,
        id: &'a QueueId,
        envelope: &'a Envelope,
        recipients: &'a [Recipient],
        content: &'a [u8],
    ) -> BoxFuture<'a, Vec<Delivered>> {
        let router = self.current.load_full();
        Box::pin(async move {
            router
                .deliver_batch(id, envelope, recipients, content)
                .await
        })
    }
}
