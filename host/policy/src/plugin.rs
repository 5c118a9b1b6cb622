//! Calls of one plugin: instantiation and `init` in a new store, `check`
//! in it, all under the plugin's limits.
//!
//! A [`Store`] per (session, plugin) (DESIGN §3): the first request of a
//! transaction for a plugin takes an idle instance of its entry, if the
//! plugin asked for reuse and one waits ([`crate::reuse`]), or
//! instantiates it and runs `init` with the entry's arguments; the
//! session keeps the [`Live`] instance and its later requests of the
//! transaction call only `check` (a few microseconds instead of an
//! instantiation). Each call has its own
//! deadline, DNS time and log lines ([`State::begin_call`]); memory is the
//! instance's and stays bounded by its limit. An instance that failed in
//! any way (trap, deadline, limit, refused arguments, a call cut off by
//! the watchdog) is dropped, never called again. `init` was already run
//! once at load time, so a failure in a new store is a plugin failure,
//! not a config error.
//!
//! The instance comes from a slot of the pool ([`crate::Pool`]) when the
//! plugin's memory limit fits one, which spares the `mmap`/`munmap` of a
//! fresh memory and fiber stack; when the pool is full (sessions hold
//! their slots for a transaction), wasmtime refuses before any guest code
//! runs and the instance is made in a store of the on-demand engine
//! instead, so a full pool slows a call down but never fails it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::HasSelf;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use crate::bindings::{Plugin, PluginPre, postern::policy::types};
use crate::component::Pres;
use crate::deadline::{Deadline, HostWait, OVERLOAD_FACTOR, Over, WALL_FACTOR};
use crate::engine::EPOCH_TICK;
use crate::host::{Services, State, one_line};
use crate::limits::Limits;
use crate::reuse::{Home, Idle};
use crate::stats::Counters;
use crate::verdicts::CacheSpec;

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
    /// Which instance of a session this entry uses: entries of one
    /// snapshot that name the same plugin with the same arguments, grant
    /// and limits share one, so what it learnt at MAIL FROM is there at
    /// RCPT TO.
    pub(crate) instance_key: usize,
    /// Instances of this entry that ended a transaction and wait for the
    /// next one ([`crate::reuse`]); shared like `instance_key`.
    pub(crate) idle: Arc<Idle>,
}

/// An instance a session keeps between the calls of one transaction.
pub(crate) struct Live {
    store: Store<State>,
    /// Set once `init` accepted the arguments.
    plugin: Option<Plugin>,
    /// Transactions it has served, this one included.
    uses: u32,
    home: Home,
}

impl Live {
    /// Whether it may serve another transaction: its `init` accepted the
    /// arguments and asked for reuse, it has served fewer than `max_use`,
    /// and the guest keeps no message handle (which would hold this
    /// transaction's message). An instance that failed never gets here: a
    /// failed call drops it.
    pub(crate) fn reusable(&self, max_use: u32) -> bool {
        let state = self.store.data();
        self.plugin.is_some() && state.reuse_asked && self.uses < max_use && state.handles == 0
    }

    /// Ends its transaction: back to its entry's idle list, or dropped.
    pub(crate) fn go_home(self) {
        let home = self.home.clone();
        home.give_back(self);
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("state", self.store.data())
            .finish_non_exhaustive()
    }
}

/// What a successful `check` answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) verdict: types::Verdict,
    /// Header lines added through `message.add-header`.
    pub(crate) added: Vec<String>,
    /// Whether the verdict is the request's alone, so that it may be
    /// kept ([`crate::verdicts`]): no header added, no `kv` written, no
    /// message taken or held, no DNS failure.
    pub(crate) cacheable: bool,
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
    /// Runs `init(args)` in a store of its own, dropped afterwards: the
    /// load-time check of an entry's arguments. Returns what `init`
    /// declared with `host.cache-verdicts`, if anything.
    pub(crate) async fn init(
        &self,
        args: &[(String, String)],
    ) -> Result<Option<CacheSpec>, CallError> {
        let mut held = None;
        self.run(args, None, None, &mut held).await?;
        let declared = held.and_then(|mut live| live.store.data_mut().cache_asked.take());
        if declared.is_some()
            && let Some(dir) = &self.data_dir
        {
            // Its files are read again at every call, so that an operator
            // who replaces them is heard without a reload; a kept verdict
            // makes no call.
            tracing::warn!(
                target: "postern/policy",
                plugin = &*self.name,
                "plugin {} declares its verdicts cacheable but reads data_dir {}: not kept",
                self.name,
                dir.display()
            );
            return Ok(None);
        }
        Ok(declared)
    }

    /// Runs `check(request)` in the instance `held` (made, with `init`,
    /// when there is none). On success the instance stays in `held` for
    /// the next call; on any failure it is gone.
    pub(crate) async fn check(
        &self,
        args: &[(String, String)],
        request: &types::Request,
        message: Option<&Arc<crate::message::Parsed>>,
        held: &mut Option<Live>,
    ) -> Result<Answer, CallError> {
        match self.run(args, Some(request), message, held).await? {
            Some(answer) => Ok(answer),
            None => Err(CallError::Failed("check gave no answer".to_owned())),
        }
    }

    async fn run(
        &self,
        args: &[(String, String)],
        request: Option<&types::Request>,
        message: Option<&Arc<crate::message::Parsed>>,
        held: &mut Option<Live>,
    ) -> Result<Option<Answer>, CallError> {
        // A turn is waited for within the deadline, in wall-clock time:
        // the wait uses no CPU, but a plugin whose every turn is taken is
        // not going to answer soon.
        let turn_by = Instant::now() + self.limits.deadline;
        let turn = tokio::time::timeout_at(turn_by.into(), self.turns.acquire()).await;
        // A turn freed just as the time ran out is no turn.
        let (Ok(Ok(_turn)), true) = (turn, Instant::now() < turn_by) else {
            return Err(CallError::Failed(format!(
                "busy: {} calls already running, none finished within {:?}",
                self.limits.concurrent_calls, self.limits.deadline
            )));
        };
        let deadline = Arc::new(Deadline::new(self.limits.deadline));
        // Taken out: put back only once the call has succeeded. A new
        // transaction takes an idle instance if its entry has one; the
        // load's check of the arguments (no request) never does, since it
        // must run `init` itself.
        let mut slot = held.take().or_else(|| {
            let mut live = request.and_then(|_| self.idle.take())?;
            live.uses += 1;
            Some(live)
        });
        if let Some(live) = &mut slot {
            live.store
                .data_mut()
                .begin_call(deadline.clone(), message.cloned());
            live.store.set_epoch_deadline(1);
        }
        let calling = async {
            if slot.is_none() {
                // Counted for the calls of transactions, not the load's
                // check of the arguments.
                if request.is_some() {
                    self.counters.instantiated();
                }
                self.instantiate(args, &deadline, message, &mut slot)
                    .await?;
            }
            match &mut slot {
                Some(Live {
                    store,
                    plugin: Some(plugin),
                    ..
                }) => match request {
                    Some(request) => plugin
                        .call_check(&mut *store, request)
                        .await
                        .map(|verdict| Ok(Some(verdict))),
                    None => Ok(Ok(None)),
                },
                // `init` refused the arguments: the error is in the store.
                Some(Live { plugin: None, .. }) => Ok(Err(())),
                None => Err(wasmtime::Error::msg("no instance")),
            }
        };
        // The epoch only interrupts wasm code. A guest blocked in a host
        // call (a WASI sleep or poll) is cut off by this watchdog at the
        // backstop (or the ceiling) instead; it fires a little after the
        // epoch would, so that a busy guest is reported as the trap it is.
        let outcome = tokio::select! {
            result = deadline.metered(calling) => Ok(result),
            over = watchdog(&deadline) => Err(over),
        };
        let Some(mut live) = slot else {
            return Err(CallError::Failed(match outcome {
                Ok(Err(error)) => one_line(&format!("{error:#}"), MAX_CAUSE),
                Err(over) => deadline_cause(self.limits.deadline, over, &deadline),
                Ok(Ok(_)) => "no instance".to_owned(),
            }));
        };
        let state = live.store.data_mut();
        state.end_call();
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
            Ok(Ok(Ok(verdict))) => {
                let added = std::mem::take(&mut state.added);
                let cacheable = state.cacheable() && added.is_empty() && state.handles == 0;
                let answer = verdict.map(|verdict| Answer {
                    verdict,
                    added,
                    cacheable,
                });
                *held = Some(live);
                Ok(answer)
            }
            Ok(Ok(Err(()))) => Err(CallError::Refused(state.refusal.take().unwrap_or_default())),
            Ok(Err(error)) => Err(CallError::Failed(self.cause(state, &error))),
            Err(over) => Err(CallError::Failed(deadline_cause(
                self.limits.deadline,
                over,
                &deadline,
            ))),
        }
    }

    /// Makes the instance in `slot`: a pool slot when the plugin fits one
    /// and the pool has one free, else on demand; then `init(args)`. A
    /// refusal leaves the store without a plugin and the message in
    /// [`State::refusal`].
    async fn instantiate(
        &self,
        args: &[(String, String)],
        deadline: &Arc<Deadline>,
        message: Option<&Arc<crate::message::Parsed>>,
        slot: &mut Option<Live>,
    ) -> wasmtime::Result<()> {
        let pooled = self.pre.pooled.as_ref().filter(|_| self.fits_pool());
        if let Some(pre) = pooled {
            let live = slot.insert(self.live(pre, deadline, message)?);
            match init(pre, live, args).await {
                Err(e) if e.is::<PoolConcurrencyLimitError>() => {
                    tracing::debug!(
                        target: "postern/policy",
                        plugin = &*self.name,
                        "instance pool full, {} allocated on demand: {e:#}",
                        self.name
                    );
                }
                result => return result,
            }
        }
        let pre = self
            .pre
            .on_demand
            .get()
            .map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        let live = slot.insert(self.live(pre, deadline, message)?);
        init(pre, live, args).await
    }

    /// Whether the plugin's memory limit fits a slot of the pool; if not,
    /// it runs on demand, where the limit is its own.
    pub(crate) fn fits_pool(&self) -> bool {
        self.limits.memory_bytes <= self.pool_memory
    }

    /// A fresh store on `pre`'s engine, not yet instantiated: the
    /// plugin's limits, the call's deadline and message, deny-all WASI.
    fn live(
        &self,
        pre: &PluginPre<State>,
        deadline: &Arc<Deadline>,
        message: Option<&Arc<crate::message::Parsed>>,
    ) -> wasmtime::Result<Live> {
        let clock = crate::host::WatchedClock::default();
        let wasi = crate::host::wasi(self.data_dir.as_deref(), clock.clone())
            .map_err(wasmtime::Error::msg)?;
        let mut store = Store::new(
            pre.engine(),
            State::new(
                self.name.clone(),
                self.limits,
                deadline.clone(),
                self.services.clone(),
                wasi,
                clock,
            ),
        );
        store.limiter(|state| &mut state.limiter);
        // Every tick: past the deadline (the call's CPU time, or the
        // wall-clock backstop; `crate::deadline`), interrupt (a trap);
        // before it, yield to the executor and look again at the next
        // tick. A busy guest thus shares its thread with other sessions.
        // Tokio's `yield_now` (rather than a plain wake) also lets the
        // runtime poll its timers and sockets before the guest runs again;
        // without it a busy guest would starve them for dozens of ticks.
        // The callback runs inside a poll of the metered call, on the
        // thread that runs the guest, which is where its CPU clock is read.
        // The wait after the yield is the executor's, not the plugin's
        // ([`HostWait::Yield`]).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if let Some(over) = state.deadline.over() {
                state.timed_out = Some(over);
                Ok(UpdateDeadline::Interrupt)
            } else {
                let deadline = state.deadline.clone();
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(async move {
                        let _yielding = deadline.host_wait(HostWait::Yield);
                        tokio::task::yield_now().await;
                    }),
                ))
            }
        });
        store
            .data_mut()
            .begin_call(deadline.clone(), message.cloned());
        Ok(Live {
            store,
            plugin: None,
            uses: 1,
            home: Home::new(&self.idle, self.limits.max_use),
        })
    }

    /// A one-line account of why the call failed: the deadline or limit
    /// that was hit, else the trap, else what wasmtime said.
    fn cause(&self, state: &State, error: &wasmtime::Error) -> String {
        if let Some(over) = state.timed_out {
            return deadline_cause(self.limits.deadline, over, &state.deadline);
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

/// Instantiates `pre` in `live`'s store and runs `init(args)`; keeps the
/// instance if `init` accepted them, else the refusal.
async fn init(
    pre: &PluginPre<State>,
    live: &mut Live,
    args: &[(String, String)],
) -> wasmtime::Result<()> {
    let plugin = pre.instantiate_async(&mut live.store).await?;
    match plugin.call_init(&mut live.store, args).await? {
        Ok(()) => live.plugin = Some(plugin),
        Err(message) => live.store.data_mut().refusal = Some(one_line(&message, MAX_CAUSE)),
    }
    Ok(())
}

/// Ends with the limit the call is past, a few ticks after it: the
/// epoch interrupts a busy guest at the limit itself, so that it is
/// reported as the trap it is; this ends a guest blocked in a host call.
async fn watchdog(deadline: &Deadline) -> Over {
    loop {
        match deadline.check(5 * EPOCH_TICK) {
            Err(over) => return over,
            Ok(left) => tokio::time::sleep(left).await,
        }
    }
}

/// The cause logged for a call cut off by `over`: its deadline of CPU
/// time; the backstop (a guest blocked in a host call), with where the
/// time went; or the wall-clock ceiling (a machine too loaded to run the
/// call), with where the time went.
fn deadline_cause(deadline: Duration, over: Over, spent: &Deadline) -> String {
    match over {
        Over::Cpu => format!("deadline: still running after {deadline:?}"),
        Over::Wall => format!(
            "deadline: still running after {deadline:?} (cut off after {:?} of its CPU time \
             and its own waits, {WALL_FACTOR} times the deadline; {})",
            deadline.saturating_mul(WALL_FACTOR),
            spent.account()
        ),
        Over::Overload => format!(
            "deadline: still running after {deadline:?} (cut off at {:?} of wall-clock time, \
             {OVERLOAD_FACTOR} times the deadline: the machine is overloaded; {})",
            deadline.saturating_mul(OVERLOAD_FACTOR),
            spent.account()
        ),
    }
}

/// Adds what plugins import to `linker`: WASI (deny-all, see
/// [`crate::host`]) and the `postern:policy/host` interface.
pub(crate) fn link(linker: &mut wasmtime::component::Linker<State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    Plugin::add_to_linker::<State, HasSelf<State>>(linker, |state| state)
}
