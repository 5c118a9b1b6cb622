//! Remote delivery: Postfix's smtp(8) and lmtp(8) agents. For a batch of
//! recipients of one next hop it finds the servers (MX records in
//! preference order, the domain's own A/AAAA records without MX, a
//! `[host]` as given), tries them in turn until one answers, sends one
//! transaction for all the recipients, and answers each recipient's
//! status: 2xx sent, 4xx deferred, 5xx bounced, as the server said.
//!
//! A null MX (RFC 7505) or a domain that does not exist bounces at once;
//! an MX that is this host bounces as "mail loops back to myself"; DNS
//! trouble and unreachable servers defer. Idle connections are reused per
//! destination (`cache`), at most `default_destination_concurrency_limit`
//! deliveries run per destination, and a batch larger than
//! `default_destination_recipient_limit` is sent in several transactions.
//! The SMTP conversation itself is [`postern_smtp::client`].
//!
//! A next hop where no server could be reached is marked dead for
//! `minimal_backoff_time` (Postfix's destination status cache, `status`):
//! the deliveries to it meanwhile are deferred at once as "delivery
//! temporarily suspended" rather than each waiting for its own timeouts.
//!
//! Not here yet: slow start (the concurrency to a destination starts at
//! its limit, not at one), random order among
//! MX hosts of equal preference, DANE, STARTTLS for LMTP, and handing
//! alias expansions at other domains from local delivery to this agent.
//!
//! # Layout
//! - [`nexthop`]: [`NextHop`] and [`Transport`], the config spellings.
//! - [`dns`]: [`Dns`], MX and address lookups.
//! - `cache`: idle sessions and concurrency per destination.
//! - `status`: the destination status cache (dead next hops).
//! - `smtp`: one batch to one destination.

mod cache;
pub mod dns;
pub mod nexthop;
mod smtp;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_smtp::client::{ClientTls, Timeouts, TlsLevel};
use postern_tables::Table;

pub use dns::{Dns, Exchangers, LookupError};
pub use nexthop::{LmtpTarget, NextHop, Transport};

use cache::Destinations;
use status::DeadDestinations;

/// What the remote agents run with, under Postfix's names.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// `myhostname`: an MX that names it is this host (a mail loop).
    pub myhostname: String,
    /// `smtp_helo_name` ($myhostname).
    pub helo_name: String,
    /// `smtp_tcp_port` (25): the port of a next hop that names none.
    pub smtp_tcp_port: u16,
    /// `smtp_tls_security_level` (may).
    pub tls_level: TlsLevel,
    /// The rustls configs (`smtp_tls_CAfile` or the webpki roots).
    pub tls: Option<Arc<ClientTls>>,
    /// The `smtp_*_timeout`s.
    pub timeouts: Timeouts,
    /// `smtp_sasl_auth_enable` (no).
    pub sasl_auth_enable: bool,
    /// `smtp_sasl_password_maps`: `[host]:port user:password`, in order.
    pub sasl_password_maps: Vec<Arc<Table>>,
    /// `default_destination_concurrency_limit` (20).
    pub destination_concurrency_limit: usize,
    /// `default_destination_recipient_limit` (50): recipients per SMTP
    /// transaction.
    pub destination_recipient_limit: usize,
    /// `smtp_connection_cache_time_limit` (2s).
    pub connection_cache_time_limit: Duration,
    /// The addresses this server's SMTP listeners are bound to: a next
    /// hop that is one of them is this server (a mail loop).
    pub own_addresses: Vec<SocketAddr>,
    /// How long a next hop where no server answered stays marked dead
    /// (`minimal_backoff_time`, 300s, as qmgr throttles a destination);
    /// zero: never marked.
    pub dead_destination_time: Duration,
}

impl RemoteSettings {
    /// Postfix's defaults for a host called `myhostname`.
    pub fn new(myhostname: &str) -> RemoteSettings {
        RemoteSettings {
            myhostname: myhostname.to_ascii_lowercase(),
            helo_name: myhostname.to_owned(),
            smtp_tcp_port: 25,
            tls_level: TlsLevel::May,
            tls: None,
            timeouts: Timeouts::default(),
            sasl_auth_enable: false,
            sasl_password_maps: Vec::new(),
            destination_concurrency_limit: 20,
            destination_recipient_limit: 50,
            connection_cache_time_limit: Duration::from_secs(2),
            own_addresses: Vec::new(),
            dead_destination_time: Duration::from_secs(300),
        }
    }
}

/// The SMTP and LMTP delivery agent.
#[derive(Debug)]
pub struct RemoteDelivery {
    settings: RemoteSettings,
    dns: Dns,
    destinations: Arc<Destinations>,
    dead: DeadDestinations,
}

impl RemoteDelivery {
    /// An agent with `settings`, resolving through `dns`.
    pub fn new(settings: RemoteSettings, dns: Dns) -> RemoteDelivery {
        let destinations = Arc::new(Destinations::new(
            settings.connection_cache_time_limit,
            settings.destination_concurrency_limit,
        ));
        let dead = DeadDestinations::new(settings.dead_destination_time);
        RemoteDelivery {
            settings,
            dns,
            destinations,
            dead,
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &RemoteSettings {
        &self.settings
    }
}
