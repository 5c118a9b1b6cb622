//! Where plugins come from, and compiling them once.
//!
//! A plugin is a component file whose stem is its name. The standard ones
//! are embedded in the binary ([`crate::STANDARD_PLUGINS`]); a plugin
//! directory adds more and replaces an embedded one of the same name.
//! Compiling is the expensive step (Cranelift: about 60 ms per standard
//! plugin in a release build, a second in a debug one), so compiled
//! components are cached by a hash of their bytes: a reload recompiles
//! only what changed. With [`crate::Runtime::with_cache`], wasmtime also
//! keeps compiled code on disk, so a restart does not compile again.
//!
//! A component is compiled for the pooled engine at load; its copy for
//! the on-demand engine (the pool's fallback) only when first needed
//! ([`OnDemand`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::PluginPre;
use crate::engine::Engines;
use crate::error::Error;
use crate::host::State;

/// The bytes of one plugin and where they came from.
#[derive(Debug)]
pub(crate) struct Source {
    /// The file path, or `NAME (embedded)`: how messages name the plugin.
    pub(crate) origin: String,
    /// Whether it is one of the embedded plugins (not from the directory).
    pub(crate) embedded: bool,
    /// The file it was read from; `None` for an embedded plugin.
    pub(crate) path: Option<PathBuf>,
    pub(crate) bytes: Cow<'static, [u8]>,
}

/// Every available plugin by name: `embedded`, then the `*.wasm` files of
/// `dir`, which replace embedded plugins of the same name.
pub(crate) fn sources(
    embedded: &[(&'static str, &'static [u8])],
    dir: Option<&Path>,
) -> Result<BTreeMap<String, Source>, Error> {
    let mut all: BTreeMap<String, Source> = embedded
        .iter()
        .map(|&(name, bytes)| {
            let source = Source {
                origin: format!("{name} (embedded)"),
                embedded: true,
                path: None,
                bytes: Cow::Borrowed(bytes),
            };
            (name.to_owned(), source)
        })
        .collect();
    let Some(dir) = dir else {
        return Ok(all);
    };
    let dir_error = |source| Error::PluginDir {
        path: dir.to_path_buf(),
        source,
    };
    for item in fs::read_dir(dir).map_err(dir_error)? {
        let path = item.map_err(dir_error)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let read_error = |source| Error::ReadPlugin {
            path: path.clone(),
            source,
        };
        // Follows symbolic links, as an operator linking a plugin from a
        // shared store expects; skips directories named *.wasm.
        if !fs::metadata(&path).map_err(read_error)?.is_file() {
            continue;
        }
        let bytes = fs::read(&path).map_err(read_error)?;
        all.insert(
            name.to_owned(),
            Source {
                origin: path.display().to_string(),
                embedded: false,
                path: Some(path.clone()),
                bytes: Cow::Owned(bytes),
            },
        );
    }
    Ok(all)
}

/// The cache key of a component: a 64-bit hash of its bytes and their
/// length. Not a cryptographic digest: the bytes come from the operator,
/// and a collision would need two different plugins of the same length
/// colliding under SipHash.
type Key = (u64, usize);

fn key(bytes: &[u8]) -> Key {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    (h.finish(), bytes.len())
}

/// How many loads a compiled component stays cached without being used.
/// An operator who reloads, finds a new plugin version wanting and goes
/// back gets the old one without recompiling; one who cycles through many
/// versions does not keep them all in memory.
const CACHE_LOADS: u64 = 8;

/// The compile cache: each component with the number of the last load
/// that used it.
#[derive(Default)]
struct Cache {
    /// Loads finished so far.
    loads: u64,
    components: HashMap<Key, (Compiled, u64)>,
}

/// One component as compiled so far: for the pooled engine unless the
/// process has no pool or the pool cannot hold it (more memories, tables
/// or core instances than a slot allows), and, when first needed, for the
/// on-demand engine.
#[derive(Clone)]
struct Compiled {
    pooled: Option<Component>,
    on_demand: Arc<OnDemand>,
}

/// A plugin's copy for the on-demand engine, compiled on first need: at
/// load for a plugin that cannot use the pool (no pool, a component too
/// big for a slot, an entry allowed more memory than a slot holds), else
/// by the first call that finds the pool full. Compiling both copies of
/// every plugin at every start would double its compile time for a copy
/// most processes never use.
pub(crate) struct OnDemand {
    origin: String,
    bytes: Cow<'static, [u8]>,
    engine: Engine,
    linker: Linker<State>,
    pre: OnceLock<Result<PluginPre<State>, Failure>>,
}

/// Why a component could not be compiled or linked, kept to be told again
/// to every caller (an [`Error`] is not `Clone`).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// Linking failed (not a `postern:policy` plugin), rather than
    /// compiling (not a valid component).
    incompatible: bool,
    origin: String,
    detail: String,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        if f.incompatible {
            Error::Incompatible {
                origin: f.origin,
                detail: f.detail,
            }
        } else {
            Error::InvalidComponent {
                origin: f.origin,
                detail: f.detail,
            }
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Error::from(self.clone()).fmt(f)
    }
}

impl OnDemand {
    /// The linked on-demand copy, compiled now if it was not yet. Blocks
    /// for as long as compiling takes (milliseconds in a release build);
    /// concurrent callers wait for the one compiling.
    pub(crate) fn get(&self) -> Result<&PluginPre<State>, &Failure> {
        self.pre
            .get_or_init(|| {
                let component = Component::new(&self.engine, &self.bytes).map_err(|e| Failure {
                    incompatible: false,
                    origin: self.origin.clone(),
                    detail: format!("{e:#}"),
                })?;
                link(&self.linker, &component).map_err(|e| Failure {
                    incompatible: true,
                    origin: self.origin.clone(),
                    detail: e,
                })
            })
            .as_ref()
    }
}

/// A plugin linked for the engines: what every call instantiates.
#[derive(Clone)]
pub(crate) struct Pres {
    /// For a slot of the pool; `None` when the plugin cannot use the pool.
    pub(crate) pooled: Option<PluginPre<State>>,
    pub(crate) on_demand: Arc<OnDemand>,
}

/// Links `component` against the host imports; the error is wasmtime's.
fn link(linker: &Linker<State>, component: &Component) -> Result<PluginPre<State>, String> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| format!("{e:#}"))?;
    PluginPre::new(pre).map_err(|e| format!("{e:#}"))
}

/// Compiles and links components, remembering what it compiled.
pub(crate) struct Compiler {
    engines: Engines,
    linkers: Linkers,
    cache: Mutex<Cache>,
}

/// The host imports, linked once for each engine.
pub(crate) struct Linkers {
    pub(crate) pooled: Option<Linker<State>>,
    pub(crate) on_demand: Linker<State>,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.components.len()).unwrap_or(0);
        f.debug_struct("Compiler")
            .field("engines", &self.engines)
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl Compiler {
    pub(crate) fn new(engines: Engines, linkers: Linkers) -> Compiler {
        Compiler {
            engines,
            linkers,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The engines components are compiled for.
    pub(crate) fn engines(&self) -> &Engines {
        &self.engines
    }

    /// Compiles `source` (or takes it from the cache) and links it against
    /// the host: the `InstancePre`s that every call instantiates. A
    /// component that cannot use the pool is compiled on demand here, so
    /// that its errors are load errors.
    pub(crate) fn prepare(&self, source: &Source) -> Result<Pres, Error> {
        let key = key(&source.bytes);
        let cached = self.cache.lock().ok().and_then(|mut cache| {
            let now = cache.loads;
            let (component, used) = cache.components.get_mut(&key)?;
            *used = now;
            Some(component.clone())
        });
        let compiled = match cached {
            Some(compiled) => compiled,
            None => {
                let compiled = self.compile(source);
                if let Ok(mut cache) = self.cache.lock() {
                    let now = cache.loads;
                    cache.components.insert(key, (compiled.clone(), now));
                }
                compiled
            }
        };
        let pooled =
            match (&self.linkers.pooled, &compiled.pooled) {
                (Some(linker), Some(component)) => Some(link(linker, component).map_err(
                    |detail| Error::Incompatible {
                        origin: source.origin.clone(),
                        detail,
                    },
                )?),
                _ => {
                    compiled
                        .on_demand
                        .get()
                        .map_err(|f| Error::from(f.clone()))?;
                    None
                }
            };
        Ok(Pres {
            pooled,
            on_demand: compiled.on_demand,
        })
    }

    /// Compiles for the pooled engine; the on-demand copy waits for its
    /// first use. A component the pool's limits refuse is left to the
    /// on-demand engine (whose compile reports it if it is invalid).
    fn compile(&self, source: &Source) -> Compiled {
        let pooled = match &self.engines.pooled {
            None => None,
            Some(engine) => match Component::new(engine, &source.bytes) {
                Ok(component) => Some(component),
                Err(e) => {
                    tracing::debug!(
                        target: "postern/policy",
                        "{} cannot use the instance pool, runs on demand: {e:#}",
                        source.origin
                    );
                    None
                }
            },
        };
        let on_demand = Arc::new(OnDemand {
            origin: source.origin.clone(),
            bytes: source.bytes.clone(),
            engine: self.engines.on_demand.clone(),
            linker: self.linkers.on_demand.clone(),
            pre: OnceLock::new(),
        });
        Compiled { pooled, on_demand }
    }

    /// Ends a load: forgets the components no load used in the last
    /// [`CACHE_LOADS`]. Snapshots still in use keep their own references.
    pub(crate) fn end_load(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.loads += 1;
            let oldest = cache.loads.saturating_sub(CACHE_LOADS);
            cache.components.retain(|_, (_, used)| *used >= oldest);
        }
    }
}
