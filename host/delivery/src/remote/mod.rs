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
//! destination (`cache`, Postfix's connection cache with its
//! `smtp_connection_cache_time_limit` and `smtp_connection_reuse_*`
//! limits; a cached connection found closed falls back to a new one
//! before any content is sent), and a batch larger than
//! `default_destination_recipient_limit` is sent in several transactions.
//! The SMTP conversation itself is [`postern_smtp::client`].
//!
//! Concurrency per destination is Postfix 2.5's scheduler (`window`,
//! `status`): a destination starts at `initial_destination_concurrency`
//! deliveries at once, grows with each delivery that reaches a server up
//! to `smtp_destination_concurrency_limit` (`lmtp_...` for LMTP), shrinks
//! with each connection or handshake failure, and after
//! `default_destination_concurrency_failed_cohort_limit` failed cohorts is
//! dead for `minimal_backoff_time` (the destination status cache): the
//! deliveries to it meanwhile are deferred at once as "delivery
//! temporarily suspended" rather than each waiting for its own timeouts.
//!
//! When the next hop announces DSN (RFC 3461), the recipients' NOTIFY and
//! ORCPT and the message's RET and ENVID go on to it, and it reports
//! success from then on ([`postern_mail::Delivered::next_hop_notifies`]);
//! when it does not, the queue reports `relayed` itself.
//!
//! Not here yet: random order among MX hosts of equal preference, DANE,
//! STARTTLS for LMTP, and handing alias expansions at other domains from
//! local delivery to this agent.
//!
//! # Layout
//! - [`nexthop`]: [`NextHop`] and [`Transport`], the config spellings.
//! - [`dns`]: [`Dns`], MX and address lookups.
//! - `cache`: idle sessions per destination, [`ReuseLimits`].
//! - [`window`]: slow start and feedback arithmetic, [`Concurrency`].
//! - `status`: windows and dead marks per destination, delivery slots.
//! - `smtp`: one batch to one destination.

mod cache;
pub mod dns;
pub mod nexthop;
mod smtp;
mod status;
pub mod window;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_smtp::client::{ClientTls, Timeouts, TlsLevel};
use postern_tables::Table;

pub use dns::{Dns, Exchangers, LookupError};
pub use nexthop::{LmtpTarget, NextHop, Transport};

use cache::Idle;
pub use cache::ReuseLimits;
use status::Destinations;
pub use window::{Concurrency, Feedback};

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
    /// Slow start and feedback for SMTP destinations
    /// (`initial_destination_concurrency`,
    /// `smtp_destination_concurrency_limit`, the
    /// `default_destination_concurrency_*` feedback).
    pub smtp_concurrency: Concurrency,
    /// The same for LMTP (`lmtp_destination_concurrency_limit`).
    pub lmtp_concurrency: Concurrency,
    /// `default_destination_recipient_limit` (50): recipients per SMTP
    /// transaction.
    pub destination_recipient_limit: usize,
    /// `smtp_connection_cache_time_limit` (2s),
    /// `smtp_connection_reuse_time_limit` (300s) and
    /// `smtp_connection_reuse_count_limit` (0: none).
    pub connection_cache: ReuseLimits,
    /// The addresses this server's SMTP listeners are bound to: a next
    /// hop that is one of them is this server (a mail loop).
    pub own_addresses: Vec<SocketAddr>,
    /// How long a destination declared dead stays dead
    /// (`minimal_backoff_time`, 300s, as qmgr throttles a destination);
    /// zero: never suspended.
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
            smtp_concurrency: Concurrency::default(),
            lmtp_concurrency: Concurrency::default(),
            destination_recipient_limit: 50,
            connection_cache: ReuseLimits::default(),
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
    idle: Arc<Idle>,
    destinations: Arc<Destinations>,
}

impl RemoteDelivery {
    /// An agent with `settings`, resolving through `dns`.
    pub fn new(settings: RemoteSettings, dns: Dns) -> RemoteDelivery {
        let idle = Arc::new(Idle::new(settings.connection_cache));
        let destinations = Arc::new(Destinations::new(settings.dead_destination_time));
        RemoteDelivery {
            settings,
            dns,
            idle,
            destinations,
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &RemoteSettings {
        &self.settings
    }
}
