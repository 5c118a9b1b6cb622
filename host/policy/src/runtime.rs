//! The policy runtime: the engine and linker, and [`Runtime::load`], which
//! turns a [`PolicyConfig`] into a [`Snapshot`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::thread;

use postern_mail::{Stage, Verdict};
use tokio::sync::Semaphore;
use wasmtime::component::Linker;

use crate::component::{self, Compiler, Linkers};
use crate::config::PolicyConfig;
use crate::engine::Pool;
use crate::entry::{Builtin, Entry};
use crate::error::{Error, Place};
use crate::host::Services;
use crate::kv::Kv;
use crate::plugin::{self, CallError, LoadedPlugin};
use crate::reuse::{Idle, IdleBudget};
use crate::snapshot::{LoadedEntry, Snapshot, Target};
use crate::stats::Counters;
use crate::verdicts::VerdictCache;

/// The plugins a [`Runtime`] has without a plugin directory.
type Embedded = &'static [(&'static str, &'static [u8])];

/// One per process: owns the wasmtime engines (pooled and on demand, and
/// their epoch thread), the linkers with the host imports, the cache of
/// compiled components, and the plugins' key-value store (which therefore
/// survives reloads).
/// Build it once at start-up and keep it for reloads.
#[derive(Debug)]
pub struct Runtime {
    pub(crate) compiler: Compiler,
    pub(crate) embedded: Embedded,
    pub(crate) kv: Kv,
    /// The idle instances every snapshot's entries may keep, together.
    pub(crate) idle_budget: Arc<IdleBudget>,
}

impl Runtime {
    /// A runtime with the standard plugins ([`crate::STANDARD_PLUGINS`]).
    pub fn new() -> Result<Runtime, Error> {
        Runtime::with_embedded(crate::STANDARD_PLUGINS)
    }

    /// A runtime with the standard plugins that also keeps compiled code
    /// on disk in `cache_dir` (created if missing), so that a restart or
    /// a reload does not recompile unchanged components.
    pub fn with_cache(cache_dir: &Path) -> Result<Runtime, Error> {
        Runtime::with_pool(crate::STANDARD_PLUGINS, Some(cache_dir), Pool::default())
    }

    /// A runtime whose built-in plugin set is `embedded` (name, component
    /// bytes) instead of the standard plugins.
    pub fn with_embedded(embedded: Embedded) -> Result<Runtime, Error> {
        Runtime::with_pool(embedded, None, Pool::default())
    }

    /// A runtime whose built-in plugin set is `embedded`, with compiled
    /// code kept in `cache_dir` if given, and instances allocated from
    /// `pool` ([`Pool::default`] for the others; `instances: 0` for none).
    pub fn with_pool(
        embedded: Embedded,
        cache_dir: Option<&Path>,
        pool: Pool,
    ) -> Result<Runtime, Error> {
        let engines = crate::engine::new_engines(cache_dir, pool)?;
        let link = |engine: &wasmtime::Engine| {
            let mut linker = Linker::new(engine);
            plugin::link(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
            Ok::<_, Error>(linker)
        };
        let linkers = Linkers {
            pooled: engines.pooled.as_ref().map(link).transpose()?,
            on_demand: link(&engines.on_demand)?,
        };
        Ok(Runtime {
            compiler: Compiler::new(engines, linkers),
            embedded,
            kv: Kv::default(),
            idle_budget: IdleBudget::start(pool.instances).map_err(|e| {
                Error::Engine(format!("cannot start the idle-instance thread: {e}"))
            })?,
        })
    }

    /// Builds a snapshot of `config`: finds every plugin the lists name,
    /// compiles what is not cached (and every file of the plugin
    /// directory), links it, and runs each plugin entry's `init` with its
    /// arguments. Any failure is an error naming the stage, entry, plugin
    /// or file; nothing is half-loaded.
    ///
    /// This blocks for as long as compiling takes (milliseconds per
    /// component in a release build, more in a debug one); an async caller
    /// should run it in `spawn_blocking`, off the request path.
    pub fn load(&self, config: &PolicyConfig) -> Result<Snapshot, Error> {
        let sources = component::sources(self.embedded, config.plugin_dir.as_deref())?;

        // Classes are sound (names free, no loops, bounded nesting), every
        // plugin named must exist, and every data_dir be a directory the
        // server can open, before anything is compiled.
        crate::class::check(config, |name| sources.contains_key(name))?;
        let mut needed = BTreeSet::new();
        for (place, entry) in entries(config) {
            if entry.builtin().is_some() || config.classes.contains_key(entry.name()) {
                continue;
            }
            if let Some(dir) = entry.data_dir() {
                check_data_dir(dir).map_err(|source| Error::DataDir {
                    place: place.clone(),
                    entry: entry.to_string(),
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            if !sources.contains_key(entry.name()) {
                return Err(Error::UnknownPlugin {
                    place,
                    entry: entry.to_string(),
                    plugin: entry.name().to_owned(),
                    where_: match &config.plugin_dir {
                        Some(dir) => format!(", no {}.wasm in {}", entry.name(), dir.display()),
                        None => ", and no plugin directory is set".to_owned(),
                    },
                });
            }
            needed.insert(entry.name());
        }
        let from_dir = sources
            .iter()
            .filter(|(_, s)| !s.embedded)
            .map(|(name, _)| name.as_str());
        needed.extend(from_dir);

        // What the imports reach, shared by every call of this snapshot.
        let services = Arc::new(Services {
            dns: crate::dns::Dns::new(&config.dns),
            tables: config.tables.clone(),
            kv: self.kv.clone(),
        });

        // Compiled, linked, and with the turns its calls share.
        let mut prepared = BTreeMap::new();
        for name in needed {
            // `needed` only holds names taken from `sources`.
            let Some(source) = sources.get(name) else {
                continue;
            };
            let pre = self.compiler.prepare(source)?;
            let turns = config.limits_for(name).concurrent_calls;
            let turns = Arc::new(Semaphore::new(turns.clamp(1, Semaphore::MAX_PERMITS)));
            let counters = Arc::new(Counters::default());
            prepared.insert(name, (pre, source.origin.as_str(), turns, counters));
        }

        let mut lists: HashMap<Stage, Vec<LoadedEntry>> = HashMap::new();
        let mut classes: HashMap<String, Vec<LoadedEntry>> = HashMap::new();
        // Entries that would make identical instances share one in a
        // session (see `LoadedPlugin::instance_key`).
        let mut instance_keys: HashMap<String, (usize, Arc<Idle>)> = HashMap::new();
        for (place, entry) in entries(config) {
            let target = match entry.builtin() {
                Some(builtin) => Target::Builtin(builtin_verdict(builtin)),
                None if config.classes.contains_key(entry.name()) => {
                    Target::Class(entry.name().to_owned())
                }
                None => {
                    let Some((pre, origin, turns, counters)) = prepared.get(entry.name()) else {
                        // Checked above: every plugin entry was prepared.
                        continue;
                    };
                    let limits = entry.limits(config.limits_for(entry.name()));
                    let identity = format!(
                        "{}\0{:?}\0{:?}\0{limits:?}",
                        entry.name(),
                        entry.args(),
                        entry.data_dir()
                    );
                    let next = instance_keys.len();
                    let (instance_key, idle) = instance_keys
                        .entry(identity)
                        .or_insert_with(|| (next, self.idle_budget.list(limits.max_idle)))
                        .clone();
                    let plugin = LoadedPlugin {
                        name: entry.name().into(),
                        origin: (*origin).into(),
                        pre: pre.clone(),
                        pool_memory: self.compiler.engines().pool.memory_bytes,
                        limits,
                        turns: turns.clone(),
                        services: services.clone(),
                        counters: counters.clone(),
                        data_dir: entry.data_dir().map(Arc::from),
                        instance_key,
                        idle,
                    };
                    // Compiled now, not on the request path.
                    if !plugin.fits_pool() {
                        plugin
                            .pre
                            .on_demand
                            .get()
                            .map_err(|f| Error::from(f.clone()))?;
                    }
                    Target::Plugin(plugin)
                }
            };
            let loaded = LoadedEntry::new(entry.clone(), target);
            match place {
                Place::List(stage) => lists.entry(stage).or_default().push(loaded),
                Place::Class(name) => classes.entry(name).or_default().push(loaded),
            }
        }
        // The stage lists are all in place; check each plugin entry's
        // arguments with its `init` before anyone relies on the snapshot.
        let inited = init_all(&lists, &classes);
        self.compiler.end_load();
        inited?;
        Ok(Snapshot::new(lists, config.max_failures).with_classes(classes))
    }
}

/// Every (place, entry) of `config`: the stages in transaction order, so
/// that the first error reported is the first one a reader meets, then the
/// restriction classes by name.
pub(crate) fn entries(config: &PolicyConfig) -> impl Iterator<Item = (Place, &Entry)> {
    let lists = Stage::ALL.into_iter().flat_map(move |stage| {
        config
            .restrictions
            .get(&stage)
            .into_iter()
            .flatten()
            .map(move |entry| (Place::List(stage), entry))
    });
    let classes = config.classes.iter().flat_map(|(name, list)| {
        list.iter()
            .map(move |entry| (Place::Class(name.clone()), entry))
    });
    lists.chain(classes)
}

/// Whether `dir` is a directory this process can list: what the plugin
/// will be granted at every call.
pub(crate) fn check_data_dir(dir: &Path) -> std::io::Result<()> {
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    std::fs::read_dir(dir).map(drop)
}

/// Postfix's replies for the built-ins.
pub(crate) fn builtin_verdict(builtin: Builtin) -> Verdict {
    match builtin {
        Builtin::Permit => Verdict::Permit,
        Builtin::Reject => Verdict::reject_default(),
        Builtin::Defer => Verdict::defer_default(),
        Builtin::Dunno => Verdict::Dunno,
    }
}

/// Runs `init` for every plugin entry. On a thread of its own: WASI's
/// clocks need a tokio runtime, and `load` may be called from inside one
/// (where blocking on another would panic) or from none; on a fresh
/// thread wasmtime-wasi supplies its own.
fn init_all(
    lists: &HashMap<Stage, Vec<LoadedEntry>>,
    classes: &HashMap<String, Vec<LoadedEntry>>,
) -> Result<(), Error> {
    let mut class_names: Vec<&String> = classes.keys().collect();
    class_names.sort();
    let places = Stage::ALL
        .into_iter()
        .map(|stage| (Place::List(stage), lists.get(&stage)))
        .chain(
            class_names
                .into_iter()
                .map(|name| (Place::Class(name.clone()), classes.get(name))),
        );
    let places: Vec<_> = places.collect();
    let run = || {
        for (place, list) in &places {
            for item in list.iter().copied().flatten() {
                let Target::Plugin(plugin) = &item.target else {
                    continue;
                };
                let args = item.entry.args();
                match wasmtime_wasi::runtime::in_tokio(plugin.init(args)) {
                    Ok(declared) => {
                        let cache = declared
                            .map(|spec| VerdictCache::new(spec, plugin.limits.verdict_cache));
                        if let Some(cache) = cache {
                            // Each entry is initialized once, here.
                            let _ = item.verdicts.set(cache);
                        }
                    }
                    Err(CallError::Refused(message)) => {
                        return Err(Error::InitRefused {
                            place: place.clone(),
                            entry: item.entry.to_string(),
                            plugin: plugin.name.to_string(),
                            message,
                        });
                    }
                    Err(CallError::Failed(cause)) => {
                        return Err(Error::InitFailed {
                            place: place.clone(),
                            entry: item.entry.to_string(),
                            plugin: plugin.name.to_string(),
                            cause,
                        });
                    }
                }
            }
        }
        Ok(())
    };
    thread::scope(|s| {
        s.spawn(run).join().unwrap_or_else(|_| {
            Err(Error::Engine(
                "the thread running the plugins' init panicked".to_owned(),
            ))
        })
    })
}
