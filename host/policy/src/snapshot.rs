//! A loaded policy, and the handle that swaps it on reload.
//!
//! A [`Snapshot`] is immutable: the lists of every stage with their plugins
//! compiled, linked and initialised. [`Policies`] holds the current one in
//! an [`ArcSwap`]; `postern reload` builds a new snapshot off the request
//! path and [`Policies::replace`]s it atomically. A snapshot that fails to
//! load never replaces the old one.
//!
//! An SMTP session asks through [`Policy::check_in`] with its
//! [`PolicySession`]: the first check of a transaction pins the snapshot
//! then current, and every plugin instance the transaction makes is kept
//! there (`Held`) for its later checks, until the session releases it.
//! A transaction is thus evaluated against one snapshot from its first
//! check to its last, and a reload reaches the next transaction.
//!
//! How a list is evaluated, entry by entry, with its classes and plugin
//! calls, is in `eval`.

mod eval;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use postern_mail::policy::BoxFuture;
use postern_mail::{Decision, Policy, PolicyRequest, PolicySession, Stage, Verdict};

use crate::entry::Entry;
use crate::plugin::LoadedPlugin;
use crate::reuse::Instances;
use crate::stats::PluginStats;
use crate::verdicts::VerdictCache;

/// What one entry runs.
#[derive(Debug)]
pub(crate) enum Target {
    /// `permit`, `reject`, `defer`, `dunno`: a fixed verdict.
    Builtin(Verdict),
    /// A restriction class, evaluated in place.
    Class(String),
    /// A plugin, called with the entry's arguments.
    Plugin(LoadedPlugin),
}

/// One entry of a loaded list.
#[derive(Debug)]
pub(crate) struct LoadedEntry {
    pub(crate) entry: Entry,
    pub(crate) target: Target,
    /// Failures in a row; reset by an answer. Past the snapshot's
    /// `max_failures` the entry is no longer called until reload (a new
    /// snapshot starts at 0).
    failures: AtomicU32,
    /// The verdicts kept for a plugin entry whose load-time `init`
    /// declared what they depend on ([`crate::verdicts`]); set once, by
    /// the load, before the snapshot serves.
    pub(crate) verdicts: OnceLock<VerdictCache>,
}

impl LoadedEntry {
    pub(crate) fn new(entry: Entry, target: Target) -> LoadedEntry {
        LoadedEntry {
            entry,
            target,
            failures: AtomicU32::new(0),
            verdicts: OnceLock::new(),
        }
    }
}

/// The restriction lists of every stage, ready to evaluate. Built by
/// [`crate::Runtime::load`]; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Snapshot {
    lists: HashMap<Stage, Vec<LoadedEntry>>,
    /// The restriction classes, by name.
    classes: HashMap<String, Vec<LoadedEntry>>,
    /// Consecutive failures that take an entry out; 0: never.
    max_failures: u32,
    /// Tells snapshots apart, so that instances kept by a session are
    /// never called through another snapshot's entries.
    id: u64,
}

/// Numbers snapshots for [`Snapshot::id`].
static SNAPSHOTS: AtomicU64 = AtomicU64::new(0);

/// What a [`PolicySession`] holds between checks: the snapshot its
/// transaction is pinned to, and the plugin instances made for it, by
/// [`LoadedPlugin::instance_key`].
#[derive(Debug, Default)]
struct Held {
    /// The snapshot the instances belong to.
    snapshot: u64,
    /// Pinned by [`Snapshot::check_pinned`]; `None` for a session that
    /// asks one snapshot directly.
    pinned: Option<Arc<Snapshot>>,
    instances: Instances,
}

impl Held {
    /// Forgets instances that belong to another snapshot than `snapshot`.
    fn for_snapshot(&mut self, snapshot: &Snapshot) {
        if self.snapshot != snapshot.id {
            self.instances.clear();
            self.snapshot = snapshot.id;
        }
    }
}

impl Snapshot {
    pub(crate) fn new(lists: HashMap<Stage, Vec<LoadedEntry>>, max_failures: u32) -> Snapshot {
        Snapshot {
            lists,
            classes: HashMap::new(),
            max_failures,
            id: SNAPSHOTS.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// This snapshot with restriction classes.
    pub(crate) fn with_classes(mut self, classes: HashMap<String, Vec<LoadedEntry>>) -> Snapshot {
        self.classes = classes;
        self
    }

    /// The entries of `stage`'s list, in order.
    pub fn entries(&self, stage: Stage) -> impl Iterator<Item = &Entry> {
        self.lists
            .get(&stage)
            .into_iter()
            .flatten()
            .map(|item| &item.entry)
    }

    /// What each plugin of this snapshot has done so far (calls, verdicts,
    /// latencies), by name; a plugin named by several entries or lists is
    /// counted once, for all of them.
    pub fn stats(&self) -> Vec<PluginStats> {
        let mut seen = BTreeMap::new();
        for item in self.lists.values().chain(self.classes.values()).flatten() {
            if let Target::Plugin(plugin) = &item.target {
                seen.entry(plugin.name.clone())
                    .or_insert_with(|| plugin.counters.read(&plugin.name));
            }
        }
        seen.into_values().collect()
    }

    /// Evaluates the list of `request.stage` with Postfix's rules: the
    /// first permit, reject or defer ends it, the end of the list permits,
    /// `defer_if_permit`/`defer_if_reject` wait for what follows, other
    /// actions are collected, shadow entries are only logged. Never fails:
    /// a plugin failure applies its entry's `on_error` and is logged.
    ///
    /// Plugins that use WASI clocks need a tokio runtime with time
    /// enabled; outside one (or in one without time), wasmtime-wasi's own
    /// background runtime is used.
    ///
    /// Each plugin called gets a new instance, dropped when the check
    /// ends; [`Snapshot::check_pinned`] keeps them for a session.
    pub async fn check(&self, request: &PolicyRequest) -> Decision {
        let mut instances = Instances::default();
        Ambient(Box::pin(self.evaluate(request, &mut instances))).await
    }

    /// [`Snapshot::check`] for an SMTP session: the snapshot is the one
    /// `session` is pinned to, else `current()`, which it then pins; the
    /// plugin instances stay in `session` for its next checks. The
    /// session's [`PolicySession::release`] ends both.
    pub async fn check_pinned(
        session: &mut PolicySession,
        current: impl FnOnce() -> Arc<Snapshot>,
        request: &PolicyRequest,
    ) -> Decision {
        let mut held = session.take::<Held>();
        let snapshot = Arc::clone(held.pinned.get_or_insert_with(current));
        held.for_snapshot(&snapshot);
        let decision = Ambient(Box::pin(snapshot.evaluate(request, &mut held.instances))).await;
        session.keep(held);
        decision
    }
}

impl Policy for Snapshot {
    fn check<'a>(&'a self, request: &'a PolicyRequest) -> BoxFuture<'a, Decision> {
        Box::pin(Snapshot::check(self, request))
    }

    fn check_in<'a>(
        &'a self,
        session: &'a mut PolicySession,
        request: &'a PolicyRequest,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let mut held = session.take::<Held>();
            held.for_snapshot(self);
            let decision = Ambient(Box::pin(self.evaluate(request, &mut held.instances))).await;
            session.keep(held);
            decision
        })
    }
}

/// Runs every poll of the inner future with a tokio runtime in reach
/// (wasmtime-wasi's fallback when the caller has none), because WASI's
/// clocks and `tokio::time::timeout` need one.
struct Ambient<F>(Pin<Box<F>>);

impl<F: Future> Future for Ambient<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.0.as_mut();
        wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| inner.poll(cx))
    }
}

/// The current snapshot, swapped whole on reload: what the SMTP server
/// holds as its `Arc<dyn Policy>`.
///
/// Each [`Policy::check`] call evaluates against the snapshot current when
/// it starts. A transaction that must see one snapshot from MAIL to the
/// final dot takes [`Policies::current`] once and calls the snapshot,
/// which is itself a [`Policy`].
#[derive(Debug)]
pub struct Policies {
    current: ArcSwap<Snapshot>,
}

impl Policies {
    /// Starts with `snapshot`.
    pub fn new(snapshot: Snapshot) -> Policies {
        Policies {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// Makes `snapshot` current; returns the one it replaces. Checks
    /// already running finish on the old one.
    pub fn replace(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        self.current.swap(Arc::new(snapshot))
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }
}

impl Policy for Policies {
    fn check<'a>(&'a self, request: &'a PolicyRequest) -> BoxFuture<'a, Decision> {
        let snapshot = self.current.load_full();
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
