//! A loaded policy, and the handle that swaps it on reload.
//!
//! A [`Snapshot`] is immutable: the lists of every stage with their plugins
//! compiled, linked and initialised. [`Policies`] holds the current one in
//! an [`ArcSwap`]; `postern reload` builds a new snapshot off the request
//! path and [`Policies::replace`]s it atomically. A snapshot that fails to
//! load never replaces the old one.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwap;
use postern_mail::policy::BoxFuture;
use postern_mail::{Decision, EnhancedCode, Policy, PolicyRequest, Reply, Stage, Verdict};

use crate::bindings::postern::policy::types;
use crate::chain::Chain;
use crate::convert;
use crate::entry::{Entry, OnError};
use crate::plugin::{CallError, LoadedPlugin};
use crate::stats::PluginStats;

/// What one entry runs.
#[derive(Debug)]
pub(crate) enum Target {
    /// `permit`, `reject`, `defer`, `dunno`: a fixed verdict.
    Builtin(Verdict),
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
}

impl LoadedEntry {
    pub(crate) fn new(entry: Entry, target: Target) -> LoadedEntry {
        LoadedEntry {
            entry,
            target,
            failures: AtomicU32::new(0),
        }
    }
}

/// The restriction lists of every stage, ready to evaluate. Built by
/// [`crate::Runtime::load`]; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Snapshot {
    lists: HashMap<Stage, Vec<LoadedEntry>>,
    /// Consecutive failures that take an entry out; 0: never.
    max_failures: u32,
}

impl Snapshot {
    pub(crate) fn new(lists: HashMap<Stage, Vec<LoadedEntry>>, max_failures: u32) -> Snapshot {
        Snapshot {
            lists,
            max_failures,
        }
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
        for item in self.lists.values().flatten() {
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
    pub async fn check(&self, request: &PolicyRequest) -> Decision {
        Ambient(Box::pin(self.evaluate(request))).await
    }

    async fn evaluate(&self, request: &PolicyRequest) -> Decision {
        let Some(list) = self.lists.get(&request.stage) else {
            return Decision::permit();
        };
        // Converted once, on demand, for every plugin of the list.
        let mut wit: Option<Result<types::Request, String>> = None;
        let mut chain = Chain::new(request);
        for item in list {
            let verdict = match &item.target {
                Target::Builtin(verdict) => verdict.clone(),
                Target::Plugin(plugin) => {
                    let wit = wit.get_or_insert_with(|| convert::request(request));
                    ask(item, plugin, wit, request, self.max_failures).await
                }
            };
            if let Some(decision) = chain.step(&item.entry, verdict) {
                return decision;
            }
        }
        chain.finish()
    }
}

/// Calls one plugin entry; a failure becomes the entry's `on_error`, and
/// so does an entry taken out after `max_failures` failures in a row.
async fn ask(
    item: &LoadedEntry,
    plugin: &LoadedPlugin,
    wit: &Result<types::Request, String>,
    request: &PolicyRequest,
    max_failures: u32,
) -> Verdict {
    let entry = &item.entry;
    if max_failures > 0 && item.failures.load(Ordering::Relaxed) >= max_failures {
        return on_error(entry);
    }
    let started = Instant::now();
    let answer = match wit {
        Ok(wit) => match plugin.call(entry.args(), Some(wit)).await {
            Ok(Some(verdict)) => convert::verdict(verdict).map_err(|e| format!("bad answer: {e}")),
            Ok(None) => Err("check gave no answer".to_owned()),
            Err(CallError::Refused(message)) => {
                Err(format!("init refused the arguments: {message}"))
            }
            Err(CallError::Failed(cause)) => Err(cause),
        },
        Err(cause) => Err(cause.clone()),
    };
    plugin
        .counters
        .record(started.elapsed(), answer.as_ref().ok());
    match answer {
        Ok(verdict) => {
            item.failures.store(0, Ordering::Relaxed);
            verdict
        }
        Err(cause) => {
            let id = if request.queue_id.is_empty() {
                "NOQUEUE"
            } else {
                &request.queue_id
            };
            tracing::warn!(
                target: "postern/policy",
                plugin = &*plugin.name,
                stage = %request.stage,
                on_error = %entry.on_error(),
                "{id}: plugin {} failed at {} ({}): {cause}; on_error {}",
                plugin.name,
                request.stage,
                plugin.origin,
                entry.on_error()
            );
            let failures = item.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failures == max_failures {
                tracing::error!(
                    target: "postern/policy",
                    plugin = &*plugin.name,
                    stage = %request.stage,
                    "{id}: entry {entry} of the {} list failed {failures} times in a row: \
                     skipped until reload, on_error {} answers for it",
                    request.stage,
                    entry.on_error()
                );
            }
            on_error(entry)
        }
    }
}

/// The verdict that replaces a failed plugin's answer.
fn on_error(entry: &Entry) -> Verdict {
    let text = format!("Error: policy plugin {} failed", entry.name());
    match entry.on_error() {
        OnError::Defer => Verdict::Defer(Reply::new(451, EnhancedCode::new(4, 3, 0), text)),
        OnError::Reject => Verdict::Reject(Reply::new(554, EnhancedCode::new(5, 3, 0), text)),
        OnError::Dunno => Verdict::Dunno,
    }
}

impl Policy for Snapshot {
    fn check<'a>(&'a self, request: &'a PolicyRequest) -> BoxFuture<'a, Decision> {
        Box::pin(Snapshot::check(self, request))
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
}
