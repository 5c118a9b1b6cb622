//! What a snapshot is built from: the restriction lists, where to find
//! plugins beyond the embedded ones, their limits, and what their imports
//! reach (DNS, tables).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use postern_mail::Stage;
use postern_tables::Tables;

use crate::dns::DnsConfig;
use crate::entry::Entry;
use crate::limits::Limits;

/// How many failures in a row take an entry out of service until the next
/// reload, by default: enough that a passing hiccup (one DNS outage, one
/// odd request) does not trip it, few enough that a broken plugin stops
/// costing every session its deadline within seconds.
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// The policy part of the server's configuration, already parsed:
/// `[smtpd.restrictions]` and the plugin settings of `[plugins]`.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// The list of each stage. A stage without a list permits, as an
    /// empty Postfix restriction list does.
    pub restrictions: HashMap<Stage, Vec<Entry>>,
    /// Restriction classes (Postfix `smtpd_restriction_classes`): named
    /// lists that a list entry, or an access map's answer, names to have
    /// them evaluated in place. A class's entries may name other classes,
    /// without loops and at most [`crate::MAX_CLASS_DEPTH`] deep.
    pub classes: BTreeMap<String, Vec<Entry>>,
    /// A directory of `*.wasm` components, each named by its file stem.
    /// They add to the embedded standard plugins and replace one of the
    /// same name. Every file in it is compiled at load, used or not, so
    /// that a broken install shows at `postern check` and reload rather
    /// than when an entry first names it.
    pub plugin_dir: Option<PathBuf>,
    /// The limits of every plugin without its own in `plugin_limits`.
    pub limits: Limits,
    /// Limits for particular plugins, by plugin name.
    pub plugin_limits: BTreeMap<String, Limits>,
    /// After this many consecutive failures an entry is no longer called
    /// until reload: its `on_error` answers at once (so a failing
    /// `reject_unauth_destination` keeps deferring rather than opening the
    /// relay). 0 never takes an entry out.
    pub max_failures: u32,
    /// The tables plugins may look up (`[tables.NAME]`).
    pub tables: Arc<Tables>,
    /// How plugins' DNS lookups are resolved (`[dns]`).
    pub dns: DnsConfig,
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig {
            restrictions: HashMap::new(),
            classes: BTreeMap::new(),
            plugin_dir: None,
            limits: Limits::default(),
            plugin_limits: BTreeMap::new(),
            max_failures: DEFAULT_MAX_FAILURES,
            tables: Arc::default(),
            dns: DnsConfig::default(),
        }
    }
}

impl PolicyConfig {
    /// Sets the list of `stage`; a builder-style shorthand for tests and
    /// embedded defaults.
    pub fn with(mut self, stage: Stage, entries: Vec<Entry>) -> PolicyConfig {
        self.restrictions.insert(stage, entries);
        self
    }

    /// The limits that apply to `plugin`.
    pub fn limits_for(&self, plugin: &str) -> Limits {
        self.plugin_limits
            .get(plugin)
            .copied()
            .unwrap_or(self.limits)
    }
}
