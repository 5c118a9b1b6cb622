//! Why a policy could not be set up. Failures of a plugin while it answers a
//! request are not errors of this kind: they apply the entry's `on_error`
//! and are logged.

use std::io;
use std::path::PathBuf;

use postern_mail::Stage;

/// Why a restriction-list entry could not be parsed from the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The string, or the table's `plugin` key, was empty.
    #[error("empty restriction entry")]
    Empty,
    /// A table entry without a `plugin` key.
    #[error("restriction table {keys} has no `plugin` key")]
    MissingPlugin {
        /// The keys the table had, for the message.
        keys: String,
    },
    /// `on_error` was not `defer`, `dunno` or `reject`.
    #[error("entry {entry}: on_error = {value:?}: expected \"defer\", \"dunno\" or \"reject\"")]
    BadOnError {
        /// The entry's name.
        entry: String,
        /// The value found.
        value: String,
    },
    /// `mode` was not `enforce` or `shadow`.
    #[error("entry {entry}: mode = {value:?}: expected \"enforce\" or \"shadow\"")]
    BadMode {
        /// The entry's name.
        entry: String,
        /// The value found.
        value: String,
    },
    /// `deadline` or `memory_limit` could not be read.
    #[error("entry {entry}: {key} = {value:?}: {message}")]
    BadLimit {
        /// The entry's name.
        entry: String,
        /// `deadline` or `memory_limit`.
        key: String,
        /// The value found.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// A built-in verdict (`permit`, `reject`, `defer`, `dunno`) was given
    /// arguments.
    #[error("entry {entry}: the built-in {entry} takes no arguments (got {args})")]
    BuiltinArguments {
        /// The built-in's name.
        entry: String,
        /// The arguments, for the message.
        args: String,
    },
    /// `data_dir` was empty.
    #[error("entry {entry}: data_dir = {value:?}: expected the path of a directory")]
    BadDataDir {
        /// The entry's name.
        entry: String,
        /// The value found.
        value: String,
    },
    /// `warn_if_reject` with nothing after it.
    #[error("warn_if_reject must be followed by the restriction it applies to")]
    DanglingWarnIfReject,
    /// A name that cannot be a plugin name (plugin names are file stems:
    /// letters, digits, `_` and `-`).
    #[error("entry {entry:?}: not a valid plugin name (letters, digits, '_' and '-')")]
    BadName {
        /// The name found.
        entry: String,
    },
}

/// Why the policy runtime or a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The WebAssembly engine refused its configuration.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The plugin directory could not be listed.
    #[error("plugin directory {}: {source}", path.display())]
    PluginDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A plugin file could not be read.
    #[error("plugin {}: {source}", path.display())]
    ReadPlugin {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The bytes are not a WebAssembly component wasmtime can compile.
    #[error("plugin {origin}: not a valid WebAssembly component: {detail}")]
    InvalidComponent {
        /// The file path, or `NAME (embedded)`.
        origin: String,
        /// What wasmtime said.
        detail: String,
    },
    /// The component is valid but is not a `postern:policy` plugin: it
    /// imports something the host does not offer, or lacks an export.
    #[error("plugin {origin}: does not fit the postern:policy@0.1.0 plugin world: {detail}")]
    Incompatible {
        /// The file path, or `NAME (embedded)`.
        origin: String,
        /// What wasmtime said.
        detail: String,
    },
    /// A list names a plugin that is neither embedded nor in the plugin
    /// directory.
    #[error(
        "{place}: entry {entry:?}: unknown plugin {plugin:?} \
         (not a standard plugin{where_})"
    )]
    UnknownPlugin {
        /// The list or class.
        place: Place,
        /// The entry as written.
        entry: String,
        /// The plugin name looked up.
        plugin: String,
        /// Where else it was looked for, for the message.
        where_: String,
    },
    /// An entry's `data_dir` is not a directory the server can open.
    #[error("{place}: entry {entry}: data_dir {}: {source}", path.display())]
    DataDir {
        /// The list or class.
        place: Place,
        /// The entry as written.
        entry: String,
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        source: io::Error,
    },
    /// A plugin's `init` refused the entry's arguments.
    #[error("{place}: entry {entry}: plugin {plugin} refused its arguments: {message}")]
    InitRefused {
        /// The list or class.
        place: Place,
        /// The entry as written.
        entry: String,
        /// The plugin.
        plugin: String,
        /// The plugin's message, which names the argument.
        message: String,
    },
    /// A plugin's `init` trapped, ran out of time or hit a limit.
    #[error("{place}: entry {entry}: plugin {plugin} failed in init: {cause}")]
    InitFailed {
        /// The list or class.
        place: Place,
        /// The entry as written.
        entry: String,
        /// The plugin.
        plugin: String,
        /// The cause: trap, deadline or limit.
        cause: String,
    },
    /// A restriction class (`smtpd_restriction_classes`) that cannot be
    /// used: a name taken by a built-in or a plugin, an entry with
    /// arguments, a loop, or nesting past [`crate::MAX_CLASS_DEPTH`].
    #[error("{place}: {message}")]
    Class {
        /// Where the class is defined or named.
        place: Place,
        /// What is wrong.
        message: String,
    },
}

/// Where an entry is written: a stage's list or a restriction class.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// `smtpd_<stage>_restrictions`.
    List(Stage),
    /// A class of `smtpd_restriction_classes`.
    Class(String),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::List(stage) => write!(f, "{stage} restrictions"),
            Place::Class(name) => write!(f, "restriction class {name}"),
        }
    }
}
