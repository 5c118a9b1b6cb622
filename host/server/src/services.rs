//! What each SMTP `[[service]]` entry runs with (a master.cf line with its
//! `-o` overrides): its session settings, its per-client counters (one
//! [`Anvil`] per entry, as Postfix's anvil counts per service), its
//! session slots (`default_process_limit`, Postfix's maxproc), and the
//! restriction lists it evaluates: the main ones, or its own when it
//! overrides a list. Made once per entry and shared by its listening
//! addresses.
//!
//! Every SMTP service asks its lists through one [`SmtpPolicies`]: the main
//! snapshot and each service's own, held together behind one pointer. A
//! reload ([`crate::control::Live::reload`]) builds all of them from the
//! re-read config ([`SmtpPolicies::prepare`]) and swaps them in one store
//! ([`SmtpPolicies::swap`]), or, if any fails, none. A service may gain or
//! lose lists of its own at a reload: it is found again in the new config
//! by its name, addresses and rank (`Key`). Services added to or removed
//! from the config take a restart (their sockets are bound at start); the
//! reload says so in the log. Each service's session settings and client
//! networks ([`ServiceState`], its `smtpd_*` parameters and overrides) are
//! swapped with its lists: a connection takes those in force when it
//! arrives. Its client counters (anvil) and session slots stay those of
//! the start.
//!
//! At stop, [`SmtpServices::drain`] waits for the sessions to finish.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use postern_mail::{BoxFuture, Decision, Directory, Enqueue, Policy, PolicyRequest, PolicySession};
use postern_policy::{Runtime, Snapshot};
use postern_smtp::Anvil;
use tokio::sync::Semaphore;

use crate::config::{Config, Service};
use crate::listener::{MailboxSessions, Smtp};

mod limits;
mod state;
pub use limits::{ServiceLimits, Swappable, max_literal};
pub use state::{ServiceHandle, ServiceState};

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

/// Whether a `[[service]]` entry is an SMTP service (the others are POP3,
/// IMAP and LMTP, which have no restriction lists).
fn is_smtp(service: &Service) -> bool {
    !matches!(
        service.name.as_str(),
        "imap" | "imaps" | "pop3" | "pop3s" | "lmtp"
    )
}

/// The restriction lists in force for every SMTP service at one moment.
#[derive(Debug)]
struct PolicySet {
    /// `[smtpd.restrictions]`: for every service without lists of its own.
    main: Arc<Snapshot>,
    /// The services that override a list, and their snapshots.
    own: BTreeMap<Key, Arc<Snapshot>>,
    /// Every running service's settings and networks.
    state: BTreeMap<Key, Arc<ServiceState>>,
}

/// The restriction lists of every SMTP service, swapped together.
#[derive(Debug)]
pub struct SmtpPolicies {
    current: ArcSwap<PolicySet>,
    /// The SMTP service entries running, as made at start: what a reload
    /// looks for in the re-read config.
    running: Mutex<Vec<Key>>,
    /// The certificate, password database and stop signal every service's
    /// settings share.
    shared: crate::tls::Shared,
}

/// One service's view of [`SmtpPolicies`]: what its sessions hold as their
/// `Arc<dyn Policy>`. Each check evaluates the snapshot in force when it
/// starts, as the main `Policies` does.
#[derive(Debug)]
struct ServicePolicy {
    all: Arc<SmtpPolicies>,
    key: Key,
}

impl ServicePolicy {
    /// The snapshot in force for this service now.
    fn current(&self) -> Arc<Snapshot> {
        let set = self.all.current.load();
        Arc::clone(set.own.get(&self.key).unwrap_or(&set.main))
    }
}

impl Policy for ServicePolicy {
    fn check<'a>(&'a self, request: &'a PolicyRequest) -> BoxFuture<'a, Decision> {
        let snapshot = self.current();
        Box::pin(async move { snapshot.check(request).await })
    }

    fn check_in<'a>(
        &'a self,
        session: &'a mut PolicySession,
        request: &'a PolicyRequest,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(Snapshot::check_pinned(session, || self.current(), request))
    }
}

/// Everything a reload will swap in for the SMTP services, built and
/// checked; what it will log once swapped.
#[derive(Debug)]
pub struct Prepared {
    set: PolicySet,
    notes: Vec<Note>,
}

/// A log line of a reload: what changed, or what did not and why.
#[derive(Debug)]
enum Note {
    Done(String),
    NeedsRestart(String),
}

impl SmtpPolicies {
    /// Starts with `main` for every service; the services' settings
    /// share `shared`.
    pub fn new(main: Arc<Snapshot>, shared: crate::tls::Shared) -> SmtpPolicies {
        SmtpPolicies {
            current: ArcSwap::from_pointee(PolicySet {
                main,
                own: BTreeMap::new(),
                state: BTreeMap::new(),
            }),
            running: Mutex::new(Vec::new()),
            shared,
        }
    }

    /// What the services share: the certificate and the password
    /// database a reload replaces the contents of.
    pub fn shared(&self) -> &crate::tls::Shared {
        &self.shared
    }

    /// The main snapshot in force (for `postern plugin list`).
    pub fn main(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.load().main)
    }

    /// Adds a running service, with its own snapshot if it has one, and
    /// the settings and networks of `service`, counting its clients in
    /// `anvil`; the policy its sessions ask, and the state its connections
    /// start with.
    fn register(
        self: &Arc<Self>,
        (key, service): (Key, &Service),
        own: Option<Snapshot>,
        anvil: Arc<Anvil>,
    ) -> (Arc<dyn Policy>, ServiceHandle) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key.clone());
        let own = own.map(Arc::new);
        let state = Arc::new(ServiceState::of(service, &self.shared, anvil));
        self.current.rcu(|set| {
            let mut own_map = set.own.clone();
            if let Some(own) = &own {
                own_map.insert(key.clone(), Arc::clone(own));
            }
            let mut state_map = set.state.clone();
            state_map.insert(key.clone(), Arc::clone(&state));
            PolicySet {
                main: Arc::clone(&set.main),
                own: own_map,
                state: state_map,
            }
        });
        let policy = Arc::new(ServicePolicy {
            all: Arc::clone(self),
            key: key.clone(),
        });
        let handle = ServiceHandle {
            all: Arc::clone(self),
            key,
            start: state,
        };
        (policy, handle)
    }

    /// Builds what every running SMTP service will evaluate after a reload
    /// to `config`: `main` for those without lists of their own there, a
    /// snapshot compiled from their lists for the others (plugins come
    /// from `runtime`'s cache). Blocks while plugins compile. An error
    /// names the service's config line; nothing is swapped then.
    pub fn prepare(
        &self,
        config: &Config,
        runtime: &Runtime,
        main: Snapshot,
    ) -> anyhow::Result<Prepared> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let now = self.current.load_full();
        let mut own = BTreeMap::new();
        let mut state = BTreeMap::new();
        let mut notes = Vec::new();
        for was in &running {
            let name = &was.0;
            let Some(service) = config.services.iter().find(|s| key(config, s) == *was) else {
                // Still listening: it keeps what it evaluates now.
                if let Some(snapshot) = now.own.get(was) {
                    own.insert(was.clone(), Arc::clone(snapshot));
                }
                if let Some(n) = now.state.get(was) {
                    state.insert(was.clone(), Arc::clone(n));
                }
                notes.push(Note::NeedsRestart(format!("reload: service {name} on {} is gone from the config; it listens with its restriction lists as they were until a restart", addresses(&was.1))));
                continue;
            };
            if let Some(anvil) = now.state.get(was).and_then(|n| n.anvil()) {
                let new = ServiceState::of(service, &self.shared, anvil);
                state.insert(was.clone(), Arc::new(new));
            }
            let Some(lists) = &service.restrictions else {
                if now.own.contains_key(was) {
                    notes.push(Note::Done(format!(
                        "reload: service {name} has no restriction lists of its own now; it uses the main ones"
                    )));
                }
                continue;
            };
            let snapshot = crate::daemon::policy_config_for(config, lists)
                .and_then(|pc| runtime.load(&pc).map_err(anyhow::Error::from))
                .with_context(|| {
                    format!(
                        "{}:{}: service {name}: restrictions",
                        config.source.file, service.line
                    )
                })?;
            own.insert(was.clone(), Arc::new(snapshot));
            notes.push(Note::Done(format!(
                "reload: service {name} restriction lists"
            )));
        }
        for service in config.services.iter().filter(|s| is_smtp(s)) {
            if !running.contains(&key(config, service)) {
                notes.push(Note::NeedsRestart(format!(
                    "reload: service {} at {}:{} is not running; new services and addresses take a restart",
                    service.name, config.source.file, service.line
                )));
            }
        }
        Ok(Prepared {
            set: PolicySet {
                main: Arc::new(main),
                own,
                state,
            },
            notes,
        })
    }

    /// Makes `prepared` current for every service at once. Checks already
    /// running finish on the snapshots they started with.
    pub fn swap(&self, prepared: Prepared) {
        self.current.store(Arc::new(prepared.set));
        for note in prepared.notes {
            match note {
                Note::Done(line) => tracing::info!(target: "postern/master", "{line}"),
                Note::NeedsRestart(line) => tracing::warn!(target: "postern/master", "{line}"),
            }
        }
    }
}

/// `127.0.0.1:25, [::1]:25`, as a service's addresses are logged.
fn addresses(listen: &[SocketAddr]) -> String {
    let all: Vec<String> = listen.iter().map(ToString::to_string).collect();
    all.join(", ")
}

/// One service entry's parts.
struct Made {
    /// The entry's config line, which tells the entries apart at start.
    line: usize,
    policy: Arc<dyn Policy>,
    state: ServiceHandle,
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
    /// compiled here (plugins come from the runtime's cache) and kept in
    /// `policies` with the others.
    pub fn service(
        &mut self,
        config: &Config,
        service: &Service,
        runtime: &Runtime,
        policies: &Arc<SmtpPolicies>,
        (directory, enqueue): (&Arc<dyn Directory>, &Arc<dyn Enqueue>),
    ) -> anyhow::Result<Smtp> {
        if !self.made.iter().any(|m| m.line == service.line) {
            let made = make(config, service, runtime, policies)?;
            self.made.push(made);
        }
        let Some(made) = self.made.iter().find(|m| m.line == service.line) else {
            anyhow::bail!("service {} was not made", service.name);
        };
        Ok(Smtp {
            name: service.name.clone(),
            state: made.state.clone(),
            policy: Arc::clone(&made.policy),
            directory: Arc::clone(directory),
            // The service's `content_filter` (master.cf `-o`), for the
            // messages no FILTER action routed.
            enqueue: postern_queue::ContentFilter::wrap(
                Arc::clone(enqueue),
                service.main.content_filter.as_deref(),
            ),
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

    /// Waits until no SMTP, POP3 or IMAP session is open, or `grace` has
    /// passed; logs how many were cut short. The sessions were told to
    /// stop: SMTP ones finish their transaction, POP3 and IMAP ones the
    /// command they are in.
    pub async fn drain(&self, mailbox: &MailboxSessions, grace: Duration) {
        let start = tokio::time::Instant::now();
        let (n, m) = (self.open(), mailbox.open());
        if n > 0 {
            tracing::info!(target: "postern/master", "waiting for {n} SMTP sessions to finish");
        }
        if m > 0 {
            tracing::info!(target: "postern/master", "waiting for {m} POP3/IMAP sessions to close");
        }
        while self.open() + mailbox.open() > 0 && start.elapsed() < grace {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (n, m) = (self.open(), mailbox.open());
        if n + m > 0 {
            tracing::warn!(target: "postern/master", "{n} SMTP and {m} POP3/IMAP sessions still open after {} s: closing them", grace.as_secs());
        }
    }
}

fn make(
    config: &Config,
    service: &Service,
    runtime: &Runtime,
    policies: &Arc<SmtpPolicies>,
) -> anyhow::Result<Made> {
    let m = &service.main;
    let anvil = Arc::new(Anvil::new(m.anvil_rate_time_unit));
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
            Some(snapshot)
        }
    };
    let (policy, state) = policies.register((key(config, service), service), own, anvil);
    let limit = usize::try_from(m.default_process_limit.max(1)).unwrap_or(usize::MAX);
    Ok(Made {
        line: service.line,
        policy,
        state,
        slots: Arc::new(Semaphore::new(limit)),
        limit,
    })
}
