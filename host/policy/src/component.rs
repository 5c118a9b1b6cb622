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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::PluginPre;
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
    components: HashMap<Key, (Component, u64)>,
}

/// Compiles and links components, remembering what it compiled.
pub(crate) struct Compiler {
    engine: Engine,
    linker: Linker<State>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.components.len()).unwrap_or(0);
        f.debug_struct("Compiler")
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl Compiler {
    pub(crate) fn new(engine: Engine, linker: Linker<State>) -> Compiler {
        Compiler {
            engine,
            linker,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Compiles `source` (or takes it from the cache) and links it against
    /// the host: the `InstancePre` that every call instantiates.
    pub(crate) fn prepare(&self, source: &Source) -> Result<PluginPre<State>, Error> {
        let key = key(&source.bytes);
        let cached = self.cache.lock().ok().and_then(|mut cache| {
            let now = cache.loads;
            let (component, used) = cache.components.get_mut(&key)?;
            *used = now;
            Some(component.clone())
        });
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, &source.bytes).map_err(|e| {
                    Error::InvalidComponent {
                        origin: source.origin.clone(),
                        detail: format!("{e:#}"),
                    }
                })?;
                if let Ok(mut cache) = self.cache.lock() {
                    let now = cache.loads;
                    cache.components.insert(key, (component.clone(), now));
                }
                component
            }
        };
        let incompatible = |e: wasmtime::Error| Error::Incompatible {
            origin: source.origin.clone(),
            detail: format!("{e:#}"),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(incompatible)?;
        let pre = PluginPre::new(pre).map_err(incompatible)?;
        Ok(pre)
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
