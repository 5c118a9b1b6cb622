//! What plugin authors and operators ask of the runtime outside the
//! request path: which plugins a config would load ([`Runtime::plugins`],
//! behind `postern plugin list`), and one plugin run alone against a
//! made-up request ([`Runtime::trial`], behind `postern plugin test`:
//! Exim's `-bh` and Postfix's `postmap -q` in one).
//!
//! A trial goes through the same sources, compiler, linker, limits and
//! call path as a loaded snapshot, so what it answers is what the server
//! would answer for that entry; only the failure is reported as such
//! instead of being replaced by the entry's `on_error`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use postern_mail::{PolicyRequest, Stage, Verdict};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::component;
use crate::config::PolicyConfig;
use crate::convert;
use crate::entry::Entry;
use crate::error::{Error, Place};
use crate::host::Services;
use crate::plugin::{CallError, LoadedPlugin};
use crate::runtime::{Runtime, builtin_verdict};
use crate::verdicts::attribute_name;

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginSource {
    /// Built from `plugins/` and embedded in the binary.
    Embedded,
    /// A `NAME.wasm` file of the plugin directory.
    File(PathBuf),
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::Embedded => f.write_str("embedded"),
            PluginSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One plugin a config would load, as `postern plugin list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginInfo {
    /// The plugin's name: what restriction entries call it.
    pub name: String,
    /// Embedded, or the file of the plugin directory (which replaces an
    /// embedded plugin of the same name).
    pub source: PluginSource,
    /// SHA-256 of the component's bytes, lower-case hex: the digest an
    /// OCI registry and `plugins.lock` pin a plugin by (DESIGN §3), so an
    /// operator can compare what runs with what was published. The
    /// compile cache keys on a cheaper non-cryptographic hash instead.
    pub sha256: String,
    /// The component's size in bytes.
    pub size: usize,
    /// The restriction lists with an entry naming it, in transaction
    /// order, each once.
    pub used_by: Vec<Stage>,
}

/// Why a trial call gave no verdict: what the server would log before
/// applying the entry's `on_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrialFailure {
    /// `init` refused the arguments: the plugin's own message.
    Refused(String),
    /// A trap, the deadline, or a limit: the cause.
    Failed(String),
    /// `check` answered something the server cannot act on.
    BadAnswer(String),
}

impl fmt::Display for TrialFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrialFailure::Refused(m) => write!(f, "init refused the arguments: {m}"),
            TrialFailure::Failed(m) => f.write_str(m),
            TrialFailure::BadAnswer(m) => write!(f, "bad answer: {m}"),
        }
    }
}

/// What one trial call gave, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trial {
    /// The verdict as the chain would see it (checked, defaults filled
    /// in), or why there is none.
    pub outcome: Result<Verdict, TrialFailure>,
    /// Instantiation, `init` and `check` together: what a request waits
    /// for this entry (compiling, done once per load, is not counted).
    pub took: Duration,
    /// Header fields an end-of-data plugin added (`message.add-header`),
    /// as the lines that would be prepended.
    pub added: Vec<String>,
    /// What `init` declared with `host.cache-verdicts`: the attributes a
    /// verdict is kept by, as WIT names them, and for how long. The check
    /// then saw only those attributes, as in the server.
    pub cache: Option<(Vec<String>, Duration)>,
}

impl Runtime {
    /// Every plugin `config` makes available, by name: the embedded ones
    /// and those of the plugin directory (which replace embedded ones of
    /// the same name), with the lists that use each. Reads the files;
    /// compiles nothing.
    pub fn plugins(&self, config: &PolicyConfig) -> Result<Vec<PluginInfo>, Error> {
        let sources = component::sources(self.embedded, config.plugin_dir.as_deref())?;
        let used_by: BTreeMap<&str, Vec<Stage>> = crate::class::used_by(config);
        Ok(sources
            .iter()
            .map(|(name, source)| PluginInfo {
                name: name.clone(),
                source: match &source.path {
                    Some(path) => PluginSource::File(path.clone()),
                    None => PluginSource::Embedded,
                },
                sha256: hex(&Sha256::digest(&source.bytes)),
                size: source.bytes.len(),
                used_by: used_by.get(name.as_str()).cloned().unwrap_or_default(),
            })
            .collect())
    }

    /// Runs `entry` alone, as the server would for `request`: finds and
    /// compiles its plugin (from `config`'s plugin directory or the
    /// embedded set), links it with `config`'s tables and DNS, and calls
    /// `init` with the entry's arguments and `check` with `request` under
    /// the limits `config` and the entry give it. A built-in entry answers
    /// its fixed verdict.
    ///
    /// An error is a plugin that cannot be loaded (unknown, not a valid
    /// component, not a `postern:policy` plugin); a plugin that loads but
    /// refuses its arguments, traps or runs out of time is a
    /// [`TrialFailure`] in [`Trial::outcome`]. Blocks; see
    /// [`Runtime::load`].
    pub fn trial(
        &self,
        config: &PolicyConfig,
        entry: &Entry,
        request: &PolicyRequest,
    ) -> Result<Trial, Error> {
        if let Some(builtin) = entry.builtin() {
            return Ok(Trial {
                outcome: Ok(builtin_verdict(builtin)),
                took: Duration::ZERO,
                added: Vec::new(),
                cache: None,
            });
        }
        let name = entry.name();
        let sources = component::sources(self.embedded, config.plugin_dir.as_deref())?;
        let Some(source) = sources.get(name) else {
            return Err(Error::UnknownPlugin {
                place: Place::List(request.stage),
                entry: entry.to_string(),
                plugin: name.to_owned(),
                where_: match &config.plugin_dir {
                    Some(dir) => format!(", no {name}.wasm in {}", dir.display()),
                    None => ", and no plugin directory is set".to_owned(),
                },
            });
        };
        let pre = self.compiler.prepare(source);
        self.compiler.end_load();
        let limits = entry.limits(config.limits_for(name));
        let plugin = LoadedPlugin {
            name: name.into(),
            origin: source.origin.as_str().into(),
            pre: pre?,
            pool_memory: self.compiler.engines().pool.memory_bytes,
            limits,
            turns: Arc::new(Semaphore::new(
                limits.concurrent_calls.clamp(1, Semaphore::MAX_PERMITS),
            )),
            services: Arc::new(Services {
                dns: crate::dns::Dns::new(&config.dns),
                tables: config.tables.clone(),
                kv: self.kv.clone(),
            }),
            counters: Arc::default(),
            data_dir: entry.data_dir().map(Arc::from),
            instance_key: 0,
            idle: self.idle_budget.list(limits.max_idle),
        };
        // Compiled before the timed call, as a load would.
        if !plugin.fits_pool() {
            plugin
                .pre
                .on_demand
                .get()
                .map_err(|f| Error::from(f.clone()))?;
        }
        let wit = match convert::request(request) {
            Ok(wit) => wit,
            Err(cause) => {
                return Ok(Trial {
                    outcome: Err(TrialFailure::Failed(cause)),
                    took: Duration::ZERO,
                    added: Vec::new(),
                    cache: None,
                });
            }
        };
        // On a thread of its own, for the reason `Runtime::load` gives.
        // `init` first, as a load runs it: what it declares decides what
        // the check sees.
        let run = || {
            let declared = match wasmtime_wasi::runtime::in_tokio(plugin.init(entry.args())) {
                Ok(declared) => declared,
                Err(refused) => return (Err(refused), Duration::ZERO, None),
            };
            let masked = declared.as_ref().map(|spec| spec.mask(&wit));
            let started = Instant::now();
            let mut held = None;
            let message = request
                .message
                .clone()
                .map(|m| Arc::new(crate::message::Parsed::new(m)));
            let answer = wasmtime_wasi::runtime::in_tokio(plugin.check(
                entry.args(),
                masked.as_ref().unwrap_or(&wit),
                message.as_ref(),
                &mut held,
            ));
            (answer, started.elapsed(), declared)
        };
        let (answer, took, declared) = thread::scope(|s| s.spawn(run).join()).map_err(|_| {
            Error::Engine("the thread running the plugin's trial panicked".to_owned())
        })?;
        let cache = declared.map(|spec| {
            let names = spec
                .attributes
                .iter()
                .map(|a| attribute_name(*a).to_owned());
            (names.collect(), spec.ttl)
        });
        let mut added = Vec::new();
        let outcome = match answer {
            Ok(answer) => {
                added = answer.added;
                convert::verdict(answer.verdict).map_err(TrialFailure::BadAnswer)
            }
            Err(CallError::Refused(message)) => Err(TrialFailure::Refused(message)),
            Err(CallError::Failed(cause)) => Err(TrialFailure::Failed(cause)),
        };
        Ok(Trial {
            outcome,
            took,
            added,
            cache,
        })
    }
}

/// Lower-case hex, as `sha256sum` prints a digest.
fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_sha256sum_style() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
