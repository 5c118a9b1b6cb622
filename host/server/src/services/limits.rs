//! The limits of the services without restriction lists, kept so that a
//! reload changes them as `postfix reload` does (its daemons start again
//! and read main.cf anew): each `lmtp` entry's `message_size_limit`,
//! `line_length_limit`, `smtpd_recipient_limit`, `smtpd_timeout`,
//! `smtpd_hard_error_limit` and `smtpd_forbid_bare_newline`
//! ([`crate::lmtp::apply_limits`]), the largest IMAP APPEND
//! (`message_size_limit`) and the largest message `postern sendmail` may
//! hand the pickup. A connection takes the settings in force when it
//! arrives and keeps them to its end, as an SMTP connection keeps its
//! [`super::ServiceState`].
//!
//! Not here: the SMTP services' settings, swapped with their restriction
//! lists ([`super::SmtpPolicies`]), and the privileged helper's longest
//! frame, which follows `message_size_limit` at the helper's refresh
//! ([`crate::privilege_files`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use super::{Key, key};
use crate::config::{Config, Service};

/// Settings that a reload may replace; each connection loads them.
pub type Swappable<T> = Arc<ArcSwap<T>>;

/// The reloadable limits of the running LMTP and IMAP listeners and of
/// the pickup service.
pub struct ServiceLimits {
    /// Each `lmtp` entry's settings, found again in a reloaded config by
    /// name, addresses and rank, as the SMTP services are.
    lmtp: Mutex<Vec<(Key, Swappable<postern_lmtp::Settings>)>>,
    /// Each IMAP listener's settings (`imap` and `imaps` differ only in
    /// their implicit TLS).
    imap: Mutex<Vec<Swappable<postern_imap::Settings>>>,
    /// The largest message the pickup takes, read for each message.
    pickup: Arc<AtomicU64>,
}

impl ServiceLimits {
    /// The limits of `config` at start; the listeners register as they
    /// are made.
    pub fn new(config: &Config) -> ServiceLimits {
        ServiceLimits {
            lmtp: Mutex::default(),
            imap: Mutex::default(),
            pickup: Arc::new(AtomicU64::new(pickup_limit(config))),
        }
    }

    /// The pickup's size limit, for [`postern_queue::Queue::start_pickup`].
    pub fn pickup(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.pickup)
    }

    /// Keeps the settings of the `lmtp` entry `service` of `config` for
    /// later reloads; the listener loads them for each connection.
    pub fn lmtp(
        &self,
        config: &Config,
        service: &Service,
        settings: postern_lmtp::Settings,
    ) -> Swappable<postern_lmtp::Settings> {
        let cell = Arc::new(ArcSwap::from_pointee(settings));
        lock(&self.lmtp).push((key(config, service), Arc::clone(&cell)));
        cell
    }

    /// Keeps an IMAP listener's settings for later reloads.
    pub fn imap(&self, settings: postern_imap::Settings) -> Swappable<postern_imap::Settings> {
        let cell = Arc::new(ArcSwap::from_pointee(settings));
        lock(&self.imap).push(Arc::clone(&cell));
        cell
    }

    /// Puts the limits of the reloaded `config` in force for the
    /// connections that arrive from now on. An `lmtp` entry no longer in
    /// the config keeps its settings (it listens until a restart, which
    /// the SMTP services' reload already says of entries it cannot find).
    pub fn apply(&self, config: &Config) {
        for (was, cell) in lock(&self.lmtp).iter() {
            let Some(service) = config.services.iter().find(|s| key(config, s) == *was) else {
                continue;
            };
            let mut settings = postern_lmtp::Settings::clone(&cell.load());
            crate::lmtp::apply_limits(&mut settings, &service.main);
            cell.store(Arc::new(settings));
        }
        for cell in lock(&self.imap).iter() {
            let mut settings = postern_imap::Settings::clone(&cell.load());
            settings.max_literal = max_literal(config.main.message_size_limit);
            cell.store(Arc::new(settings));
        }
        self.pickup.store(pickup_limit(config), Ordering::Relaxed);
    }
}

impl fmt::Debug for ServiceLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceLimits")
            .field("lmtp", &lock(&self.lmtp).len())
            .field("imap", &lock(&self.imap).len())
            .field("pickup", &self.pickup.load(Ordering::Relaxed))
            .finish()
    }
}

/// The largest IMAP literal, and so APPEND: `message_size_limit`, as
/// Dovecot's `mail_max_size` bounds what is saved.
pub fn max_literal(message_size_limit: u64) -> usize {
    usize::try_from(message_size_limit).unwrap_or(usize::MAX)
}

/// The largest submission the pickup reads: `message_size_limit`, with
/// room for the envelope that comes with the message.
fn pickup_limit(config: &Config) -> u64 {
    config.main.message_size_limit.saturating_add(64 * 1024)
}

/// Locks, whatever a panicking holder left: every update is one step.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
