//! What each SMTP `[[service]]` entry runs with (a master.cf line with its
//! `-o` overrides): its session settings, its per-client counters (one
//! [`Anvil`] per entry, as Postfix's anvil counts per service), its
//! session slots (`default_process_limit`, Postfix's maxproc), and its own
//! policy snapshot when it overrides a restriction list. Made once per
//! entry and shared by its listening addresses.
//!
//! A service's own lists follow `postern reload`: after the main snapshot
//! is swapped, [`SmtpServices::follow_reloads`] re-reads the config and
//! swaps each service's snapshot too (or keeps it and says why). Giving a
//! service lists of its own where it had none takes a restart.
//!
//! At stop, [`SmtpServices::drain`] waits for the sessions to finish.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use postern_mail::{Directory, Enqueue, Policy};
use postern_policy::{Policies, Runtime};
use postern_smtp::{Anvil, SessionSettings};
use tokio::sync::Semaphore;

use crate::config::{Config, Service};
use crate::listener::Smtp;

/// How often the main snapshot is looked at for a reload.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// A service entry's name, `listen` and rank among the entries with the
/// same two (the config line may move when the file is edited).
type Key = (String, Vec<SocketAddr>, usize);

fn key(config: &Config, service: &Service) -> Key {
    let rank = config
        .services
        .iter()
        .filter(|s| s.name == service.name && s.listen == service.listen)
        .position(|s| s.line == service.line)
        .unwrap_or(0);
    (service.name.clone(), service.listen.clone(), rank)
}

/// One service entry's parts.
struct Made {
    /// The entry's config line, which tells the entries apart at start.
    line: usize,
    /// Its name, addresses and rank among the entries with both, which
    /// find it again in a reloaded config.
    key: Key,
    settings: Arc<SessionSettings>,
    policy: Arc<dyn Policy>,
    /// Its own snapshot, when it overrides a list.
    own: Option<Arc<Policies>>,
    slots: Arc<Semaphore>,
    limit: usize,
}

/// The SMTP service entries of a running server.
#[derive(Default)]
pub struct SmtpServices {
    made: Vec<Made>,
}

impl std::fmt::Debug for SmtpServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServices")
            .field("services", &self.made.len())
            .finish_non_exhaustive()
    }
}

impl SmtpServices {
    /// The acceptor of `service`; its parts are made at its first address.
    /// A service with lists of its own gets a policy snapshot of its own,
    /// compiled here (plugins come from the runtime's cache).
    pub fn service(
        &mut self,
        config: &Config,
        service: &Service,
        shared: &crate::tls::Shared,
        runtime: &Runtime,
        policy: &Arc<dyn Policy>,
        (directory, enqueue): (&Arc<dyn Directory>, &Arc<dyn Enqueue>),
    ) -> anyhow::Result<Smtp> {
        if !self.made.iter().any(|m| m.line == service.line) {
            let made = make(config, service, shared, runtime, policy)?;
            self.made.push(made);
        }
        let Some(made) = self.made.iter().find(|m| m.line == service.line) else {
            anyhow::bail!("service {} was not made", service.name);
        };
        Ok(Smtp {
            name: service.name.clone(),
            settings: Arc::clone(&made.settings),
            policy: Arc::clone(&made.policy),
            directory: Arc::clone(directory),
            enqueue: Arc::clone(enqueue),
            mynetworks: service.main.mynetworks.clone(),
            limit_exceptions: service.main.smtpd_client_event_limit_exceptions.clone(),
        })
    }

    /// The session slots of `service` (its `default_process_limit`),
    /// shared by its addresses; `fallback` if it was never made.
    pub fn sessions(&self, service: &Service, fallback: Arc<Semaphore>) -> Arc<Semaphore> {
        self.made
            .iter()
            .find(|m| m.line == service.line)
            .map_or(fallback, |m| Arc::clone(&m.slots))
    }

    /// SMTP sessions open now.
    pub fn open(&self) -> usize {
        self.made
            .iter()
            .map(|m| m.limit.saturating_sub(m.slots.available_permits()))
            .sum()
    }

    /// Waits until no SMTP session is open, or `grace` has passed; logs
    /// how many were cut short.
    pub async fn drain(&self, grace: Duration) {
        let start = tokio::time::Instant::now();
        let n = self.open();
        if n > 0 {
            tracing::info!(target: "postern/master", "waiting for {n} SMTP sessions to finish");
        }
        while self.open() > 0 && start.elapsed() < grace {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let n = self.open();
        if n > 0 {
            tracing::warn!(target: "postern/master", "{n} SMTP sessions still open after {} s: closing them", grace.as_secs());
        }
    }

    /// Swaps in new snapshots for the services with lists of their own
    /// whenever `main` (the snapshot every other service uses) is
    /// replaced by a reload, re-reading the config at `path`. Runs until
    /// aborted; `None` when no service has lists of its own.
    pub fn follow_reloads(
        &self,
        main: Arc<Policies>,
        runtime: Arc<Runtime>,
        path: Option<PathBuf>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let own: Vec<(Key, Arc<Policies>)> = self
            .made
            .iter()
            .filter_map(|m| Some((m.key.clone(), Arc::clone(m.own.as_ref()?))))
            .collect();
        if own.is_empty() {
            return None;
        }
        let own = Arc::new(own);
        Some(tokio::spawn(async move {
            let mut seen = main.current();
            loop {
                tokio::time::sleep(FOLLOW_INTERVAL).await;
                let now = main.current();
                if Arc::ptr_eq(&now, &seen) {
                    continue;
                }
                seen = now;
                let (own, runtime, path) = (Arc::clone(&own), Arc::clone(&runtime), path.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    reload_own(&own, &runtime, path.as_deref());
                })
                .await;
            }
        }))
    }
}

fn make(
    config: &Config,
    service: &Service,
    shared: &crate::tls::Shared,
    runtime: &Runtime,
    policy: &Arc<dyn Policy>,
) -> anyhow::Result<Made> {
    let m = &service.main;
    let anvil = Arc::new(Anvil::new(m.anvil_rate_time_unit));
    let settings = Arc::new(crate::tls::service_settings(service, shared, anvil));
    let own = match &service.restrictions {
        None => None,
        Some(lists) => {
            let pc = crate::daemon::policy_config_for(config, lists)?;
            let snapshot = runtime.load(&pc).with_context(|| {
                format!(
                    "{}:{}: service {}: restrictions",
                    config.source.file, service.line, service.name
                )
            })?;
            Some(Arc::new(Policies::new(snapshot)))
        }
    };
    let policy: Arc<dyn Policy> = match &own {
        Some(p) => Arc::clone(p) as Arc<dyn Policy>,
        None => Arc::clone(policy),
    };
    let limit = usize::try_from(m.default_process_limit.max(1)).unwrap_or(usize::MAX);
    Ok(Made {
        line: service.line,
        key: key(config, service),
        settings,
        policy,
        own,
        slots: Arc::new(Semaphore::new(limit)),
        limit,
    })
}

/// Re-reads the config and swaps each service's own snapshot; on any
/// error that service keeps its running one and the log says why.
fn reload_own(own: &[(Key, Arc<Policies>)], runtime: &Runtime, path: Option<&Path>) {
    let config = match path {
        Some(p) => Config::load(p),
        None if Path::new(crate::config::DEFAULT_PATH).exists() => {
            Config::load(Path::new(crate::config::DEFAULT_PATH))
        }
        None => Config::embedded(),
    };
    let config = match config {
        Ok(c) => c,
        // The main reload said why already.
        Err(_) => return,
    };
    for (was, policies) in own {
        let name = &was.0;
        let Some(service) = config.services.iter().find(|s| key(&config, s) == *was) else {
            tracing::warn!(target: "postern/master", "reload: service {name} is gone from the config; its restriction lists stay as they were until a restart");
            continue;
        };
        let lists = service
            .restrictions
            .as_ref()
            .unwrap_or(&config.restrictions);
        let result = crate::daemon::policy_config_for(&config, lists)
            .and_then(|pc| runtime.load(&pc).map_err(anyhow::Error::from));
        match result {
            Ok(snapshot) => {
                policies.replace(snapshot);
                tracing::info!(target: "postern/master", "reload: service {name} restriction lists");
            }
            Err(e) => {
                tracing::warn!(target: "postern/master", "reload of service {name} failed, keeping its running policy: {e:#}")
            }
        }
    }
}
