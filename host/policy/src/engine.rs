//! The one wasmtime [`Engine`] of the process, and the thread that makes
//! its clock tick.
//!
//! Deadlines use epoch interruption rather than fuel: the compiled code
//! only checks a counter at loop heads and function entries, which costs
//! far less than counting fuel, and the ticker turns the counter into wall
//! time. Each tick lets a running guest yield to the executor (so that a
//! busy plugin does not hold a tokio worker for its whole second) and
//! checks the call's deadline; see [`crate::plugin`].

use std::path::Path;
use std::thread;
use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine};

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

/// Builds the engine and starts its ticker thread. The thread holds only a
/// weak reference and ends within one tick of the last clone of the engine
/// (held by the runtime, compiled components and snapshots) being dropped.
///
/// With `cache_dir`, compiled code is also kept on disk there (wasmtime's
/// own cache: keyed by a hash of the component's bytes, the engine's
/// settings and wasmtime's version, so a stale entry is never used), and a
/// restart compiles only what changed. Without it, only in memory
/// ([`crate::component`]).
pub(crate) fn new_engine(cache_dir: Option<&Path>) -> Result<Engine, Error> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK);
    // The pooling allocator would make per-call instantiation cheaper still
    // but reserves address space for every slot up front; it comes with
    // stores per session (DESIGN §3). Until then: on-demand allocation.
    if let Some(dir) = cache_dir {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        let cache = Cache::new(cache)
            .map_err(|e| Error::Engine(format!("compile cache in {}: {e:#}", dir.display())))?;
        config.cache(Some(cache));
    }
    let engine = Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))?;
    let weak = engine.weak();
    thread::Builder::new()
        .name("postern-policy-epoch".to_owned())
        .spawn(move || {
            loop {
                thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map_err(|e| Error::Engine(format!("cannot start the epoch thread: {e}")))?;
    Ok(engine)
}
