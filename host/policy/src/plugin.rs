//! One call of one plugin: a fresh store, instantiation, `init`, `check`,
//! all under the plugin's limits.
//!
//! A new [`Store`] per (request, plugin): nothing a plugin does can leak
//! into the next request. Its instance comes from a slot of the pool
//! ([`crate::Pool`]) when the plugin's memory limit fits one, which
//! spares the `mmap`/`munmap` of a fresh memory and fiber stack; when the
//! pool is full, wasmtime refuses before any guest code runs and the call
//! starts again in a store of the on-demand engine, so a full pool slows a
//! call down but never fails it. Because the instance does not outlive
//! the call, `init` runs again in each store, right before `check`, with
//! the entry's arguments: it is pure argument checking for the standard
//! plugins, and it was already run once at load time, so a failure here
//! is a plugin failure, not a config error. Stores per session come later
//! (DESIGN §3); state that must outlive a call lives behind the `kv`
//! import.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::HasSelf;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use crate::bindings::{PluginPre, postern::policy::types};
use crate::component::Pres;
use crate::engine::EPOCH_TICK;
use crate::host::{Deadline, Services, State, one_line};
use crate::limits::Limits;
use crate::stats::Counters;

/// The longest failure cause kept for a log line.
const MAX_CAUSE: usize = 400;

/// A plugin ready to be called: compiled, linked, with its limits.
#[derive(Clone)]
pub(crate) struct LoadedPlugin {
    /// The plugin's name: its file stem.
    pub(crate) name: Arc<str>,
    /// Where it came from, for messages: a path or `NAME (embedded)`.
    pub(crate) origin: Arc<str>,
    /// Linked for the pooled engine (if it holds the plugin) and the
    /// on-demand one.
    pub(crate) pre: Pres,
    /// The largest memory a pool slot holds: a plugin allowed more runs
    /// on demand.
    pub(crate) pool_memory: usize,
    pub(crate) limits: Limits,
    /// Turns for [`Limits::concurrent_calls`], shared by every entry that
    /// names this plugin.
    pub(crate) turns: Arc<Semaphore>,
    /// DNS, tables and kv, for the imports.
    pub(crate) services: Arc<Services>,
    /// Calls, verdicts and latencies, shared like `turns`.
    pub(crate) counters: Arc<Counters>,
    /// The entry's `data_dir`, granted read-only; `None`: no files.
    pub(crate) data_dir: Option<Arc<Path>>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("limits", &self.limits)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// How a call went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// `init` returned an error: the plugin's own message.
    Refused(String),
    /// A trap, the deadline, a limit, or an answer the host cannot use.
    Failed(String),
}

impl LoadedPlugin {
    /// Runs `init(args)` and, given a request, `check(request)` in a fresh
    /// store. Returns the raw verdict of `check`, or `None` without a
    /// request.
    pub(crate) async fn call(
        &self,
        args: &[(String, String)],
        request: Option<&types::Request>,
    ) -> Result<Option<types::Verdict>, CallError> {
        // Waiting for a turn counts against the deadline.
        let deadline = Instant::now() + self.limits.deadline;
        let turn = tokio::time::timeout_at(deadline.into(), self.turns.acquire()).await;
        // A turn freed just as the time ran out is no turn.
        let (Ok(Ok(_turn)), true) = (turn, Instant::now() < deadline) else {
            return Err(CallError::Failed(format!(
                "busy: {} calls already running, none finished within {:?}",
                self.limits.concurrent_calls, self.limits.deadline
            )));
        };
        let deadline = Arc::new(Deadline::new(deadline));
        // A slot of the pool when the plugin's memory fits one; on demand
        // when the pool is full (wasmtime refuses before any guest code
        // runs, so the call simply starts again in a fresh store).
        let pooled = self.pre.pooled.as_ref().filter(|_| self.fits_pool());
        // The store outlives the call's future, so that a call cut off by
        // the watchdog still reports what it did (dropped log lines).
        let mut slot = None;
        let calling = async {
            if let Some(pre) = pooled {
                let store = slot.insert(self.store(pre, &deadline)?);
                match run(pre, store, args, request).await {
                    Err(e) if e.is::<PoolConcurrencyLimitError>() => {
                        tracing::debug!(
                            target: "postern/policy",
                            plugin = &*self.name,
                            "instance pool full, {} allocated on demand: {e:#}",
                            self.name
                        );
                    }
                    result => return Ok(result),
                }
            }
            let pre = self.pre.on_demand.get().map_err(ToString::to_string)?;
            let store = slot.insert(self.store(pre, &deadline)?);
            Ok(run(pre, store, args, request).await)
        };
        // The epoch only interrupts wasm code. A guest blocked in a host
        // call (a WASI sleep or poll) is cut off by this watchdog instead;
        // it fires a little after the epoch would, so that a busy guest is
        // reported as the trap it is.
        let outcome = tokio::select! {
            result = calling => match result {
                Ok(result) => Ok(result),
                Err(cause) => return Err(CallError::Failed(cause)),
            },
            () = watchdog(&deadline) => Err(()),
        };
        let Some(store) = slot else {
            return Err(CallError::Failed(deadline_cause(self.limits.deadline)));
        };
        let state = store.data();
        if state.logs_dropped > 0 {
            tracing::warn!(
                target: "postern/policy",
                plugin = &*self.name,
                "plugin {} wrote too many log lines: {} dropped",
                self.name,
                state.logs_dropped
            );
        }
        match outcome {
            Ok(Ok(Ok(verdict))) => Ok(verdict),
            Ok(Ok(Err(message))) => Err(CallError::Refused(one_line(&message, MAX_CAUSE))),
            Ok(Err(error)) => Err(CallError::Failed(self.cause(state, &error))),
            Err(_elapsed) => Err(CallError::Failed(deadline_cause(self.limits.deadline))),
        }
    }

    /// Whether the plugin's memory limit fits a slot of the pool; if not,
    /// it runs on demand, where the limit is its own.
    pub(crate) fn fits_pool(&self) -> bool {
        self.limits.memory_bytes <= self.pool_memory
    }

    /// A fresh store for one call on `pre`'s engine: the plugin's limits,
    /// the call's deadline, deny-all WASI.
    fn store(
        &self,
        pre: &PluginPre<State>,
        deadline: &Arc<Deadline>,
    ) -> Result<Store<State>, String> {
        let wasi = crate::host::wasi(self.data_dir.as_deref())?;
        let mut store = Store::new(
            pre.engine(),
            State::new(
                self.name.clone(),
                self.limits,
                deadline.clone(),
                self.services.clone(),
                wasi,
            ),
        );
        store.limiter(|state| &mut state.limiter);
        // Every tick: past the deadline, interrupt (a trap); before it,
        // yield to the executor and look again at the next tick. A busy
        // guest thus shares its thread with other sessions. Tokio's
        // `yield_now` (rather than a plain wake) also lets the runtime
        // poll its timers and sockets before the guest runs again; without
        // it a busy guest would starve them for dozens of ticks.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if Instant::now() >= state.deadline.get() {
                state.timed_out = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        Ok(store)
    }

    /// A one-line account of why the call failed: the deadline or limit
    /// that was hit, else the trap, else what wasmtime said.
    fn cause(&self, state: &State, error: &wasmtime::Error) -> String {
        if state.timed_out {
            return deadline_cause(self.limits.deadline);
        }
        if let Some(hit) = &state.limiter.hit {
            return hit.clone();
        }
        if let Some(trap) = error.downcast_ref::<Trap>() {
            return one_line(&trap.to_string(), MAX_CAUSE);
        }
        one_line(&format!("{error:#}"), MAX_CAUSE)
    }
}

/// Instantiates `pre` in `store`, runs `init(args)` and, given a request,
/// `check(request)`.
async fn run(
    pre: &PluginPre<State>,
    store: &mut Store<State>,
    args: &[(String, String)],
    request: Option<&types::Request>,
) -> wasmtime::Result<Result<Option<types::Verdict>, String>> {
    let plugin = pre.instantiate_async(&mut *store).await?;
    if let Err(message) = plugin.call_init(&mut *store, args).await? {
        return Ok(Err(message));
    }
    let verdict = match request {
        Some(request) => Some(plugin.call_check(&mut *store, request).await?),
        None => None,
    };
    Ok(Ok(verdict))
}

/// Ends when the call's deadline (which DNS lookups push back) is past by
/// a few ticks.
async fn watchdog(deadline: &Deadline) {
    loop {
        let at = deadline.get() + 5 * EPOCH_TICK;
        if Instant::now() >= at {
            return;
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

fn deadline_cause(deadline: Duration) -> String {
    format!("deadline: still running after {deadline:?}")
}

/// Adds what plugins import to `linker`: WASI (deny-all, see
/// [`crate::host`]) and the `postern:policy/host` interface.
pub(crate) fn link(linker: &mut wasmtime::component::Linker<State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    crate::bindings::Plugin::add_to_linker::<State, HasSelf<State>>(linker, |state| state)
}
