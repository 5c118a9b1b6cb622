//! The wasmtime engines of the process (pooled, and on demand as its
//! fallback), and the thread that makes their clock tick.
//!
//! Deadlines use epoch interruption rather than fuel: the compiled code
//! only checks a counter at loop heads and function entries, which costs
//! far less than counting fuel, and the ticker makes it advance every
//! [`EPOCH_TICK`]. Each tick lets a running guest yield to the executor (so
//! that a busy plugin does not hold a tokio worker for its whole second)
//! and checks the call's deadline, which is CPU time with a backstop and a
//! wall-clock ceiling (`crate::deadline`); see [`crate::plugin`].

use std::path::Path;
use std::thread;
use std::time::Duration;

use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use crate::error::Error;

/// How often the epoch advances: the granularity of deadlines and of a
/// guest's yields. 10 ms keeps a deadline within 1% of a second, for a
/// thread that wakes a hundred times a second and does one atomic add.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The wasm stack a guest may use before it traps: wasmtime's default,
/// written down because the async fiber stack below must exceed it.
const MAX_WASM_STACK: usize = 512 << 10;

/// The native stack of the fiber a guest runs on: the wasm stack plus room
/// for host calls (WASI, logging) made from its deepest frame.
const ASYNC_STACK: usize = 2 << 20;

/// The instance pool: how many plugin instances may be live at once in
/// pre-mapped slots, and the largest memory a slot holds.
///
/// On-demand allocation maps a fresh linear memory and a fresh fiber stack
/// for every call and unmaps them after (`mmap`, page faults, `munmap`:
/// more than half of a call's cost, bench/README.md). The pooling
/// allocator keeps slots mapped and only resets them between uses
/// (wasmtime zeroes a slot's memory and restores the component's initial
/// image before it is reused, so nothing passes from one call to the
/// next). Its two catches are handled here: a slot caps a memory at
/// [`Pool::memory_bytes`], so a plugin allowed more runs on demand; and a
/// full pool refuses an instance, so such a call falls back to on-demand
/// allocation instead of failing (`crate::plugin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Component instances the pool holds: instances live at once. A
    /// session holds one per plugin for the length of a transaction, so
    /// 256 serve 32 transactions in flight with 8 plugins each (a 2-core
    /// server has rarely more in the policy stages at once); instances
    /// beyond it are allocated on demand. Each slot reserves address
    /// space (4 GiB plus guard, wasmtime's memory reservation) but no
    /// memory until used, and keeps at most `KEEP_RESIDENT` of it mapped
    /// once used. 0: no pool, every instance on demand.
    pub instances: u32,
    /// The largest linear memory a slot holds: plugins whose memory limit
    /// ([`crate::Limits::memory_bytes`]) exceeds it run on demand. 32 MiB,
    /// the default limit.
    pub memory_bytes: usize,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool {
            instances: 256,
            memory_bytes: crate::Limits::default().memory_bytes,
        }
    }
}

/// The engines of the process: one with the instance pool (absent when
/// [`Pool::instances`] is 0) and one that allocates on demand, the
/// fallback. Both have the same settings otherwise and tick together.
#[derive(Clone)]
pub(crate) struct Engines {
    pub(crate) pooled: Option<Engine>,
    pub(crate) on_demand: Engine,
    pub(crate) pool: Pool,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The settings both engines share.
fn config(cache_dir: Option<&Path>) -> Result<Config, Error> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK);
    if let Some(dir) = cache_dir {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        let cache = Cache::new(cache)
            .map_err(|e| Error::Engine(format!("compile cache in {}: {e:#}", dir.display())))?;
        config.cache(Some(cache));
    }
    Ok(config)
}

/// Builds the engines and starts their ticker thread. The thread holds
/// only weak references and ends within one tick of the last clone of the
/// engines (held by the runtime, compiled components and snapshots) being
/// dropped.
///
/// With `cache_dir`, compiled code is also kept on disk there (wasmtime's
/// own cache: keyed by a hash of the component's bytes, the engine's
/// settings and wasmtime's version, so a stale entry is never used), and a
/// restart compiles only what changed. Without it, only in memory
/// ([`crate::component`]).
pub(crate) fn new_engines(cache_dir: Option<&Path>, pool: Pool) -> Result<Engines, Error> {
    let engine_error = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));
    let on_demand = Engine::new(&config(cache_dir)?).map_err(engine_error)?;
    let pooled = if pool.instances == 0 {
        None
    } else {
        let n = pool.instances;
        let mut slots = PoolingAllocationConfig::new();
        slots
            .total_component_instances(n)
            // A Rust component has a few core instances (its code and the
            // canonical-ABI shims), with one memory and a table or two.
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n)
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(pool.memory_bytes)
            // Reset a reused slot by zeroing its first pages in place
            // rather than handing them back to the kernel: a Rust plugin
            // touches a few dozen KiB per call, and a page fault per page
            // costs more than the memset.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            // Hand released pages back to the kernel 16 slots at a time:
            // one batch of `madvise` calls and TLB flushes instead of one
            // per call. A slot waiting in the batch is not lost: wasmtime
            // flushes the batch before it reports the pool full.
            .decommit_batch_size(16);
        let mut config = config(cache_dir)?;
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(slots));
        // The pool reserves its address space up front; where that is
        // refused (a `ulimit -v`, a 32-bit address space), every call
        // runs on demand rather than the server not starting.
        match Engine::new(&config) {
            Ok(engine) => Some(engine),
            Err(e) => {
                tracing::warn!(
                    target: "postern/policy",
                    "no instance pool ({} slots), plugins run on demand: {e:#}",
                    pool.instances
                );
                None
            }
        }
    };
    let weak = (on_demand.weak(), pooled.as_ref().map(Engine::weak));
    thread::Builder::new()
        .name("postern-policy-epoch".to_owned())
        .spawn(move || {
            loop {
                thread::sleep(EPOCH_TICK);
                let on_demand = weak.0.upgrade();
                let pooled = weak.1.as_ref().and_then(|w| w.upgrade());
                if on_demand.is_none() && pooled.is_none() {
                    break;
                }
                for engine in on_demand.iter().chain(&pooled) {
                    engine.increment_epoch();
                }
            }
        })
        .map_err(|e| Error::Engine(format!("cannot start the epoch thread: {e}")))?;
    Ok(Engines {
        pooled,
        on_demand,
        pool,
    })
}

/// How much of a pooled memory or table is zeroed in place when its slot
/// is released, rather than decommitted.
const KEEP_RESIDENT: usize = 256 << 10;
