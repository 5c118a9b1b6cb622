//! What a snapshot is built from: the restriction lists, where to find
//! plugins beyond the embedded ones, and their limits.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use postern_mail::Stage;

use crate::entry::Entry;
use crate::limits::Limits;

/// The policy part of the server's configuration, already parsed:
/// `[smtpd.restrictions]` and the plugin settings of `[plugins]`.
#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    /// The list of each stage. A stage without a list permits, as an
    /// empty Postfix restriction list does.
    pub restrictions: HashMap<Stage, Vec<Entry>>,
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
