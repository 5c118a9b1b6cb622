//! Postern's policy runtime: the restriction lists of every SMTP stage,
//! evaluated as chains of sandboxed WebAssembly components that speak the
//! `postern:policy` WIT package (`wit/policy.wit`).
//!
//! Its Postfix counterparts are the `smtpd_*_restrictions` lists with
//! access(5) actions, and policy delegation (SMTPD_POLICY_README): the
//! request a plugin sees carries the policy-delegation attributes, and its
//! verdict is an access(5) action. Unlike a Postfix policy server, a plugin
//! runs in-process, in a sandbox: no files, sockets, environment or stdio
//! (WASI is linked deny-all), limited memory, and a deadline of CPU time
//! (with a backstop for a guest that waits, and a wall-clock ceiling)
//! enforced by epoch interruption. A plugin that traps, hangs or answers
//! nonsense costs one request its entry's `on_error` (by default `451
//! 4.3.0`), is logged, and the server keeps serving. This is the only
//! crate that uses wasmtime; the server sees the [`postern_mail::Policy`]
//! trait.
//!
//! The server builds one [`Runtime`], parses each configured entry with
//! [`Entry::from_line`] or [`Entry::from_table`] into a [`PolicyConfig`],
//! calls [`Runtime::load`] for a [`Snapshot`], and serves through
//! [`Policies`] (an `Arc<dyn Policy>`), calling [`Policies::replace`] on
//! reload.
//!
//! Plugins reach the world through host imports only: `dns` (through
//! hickory-resolver; waiting costs the call none of its deadline),
//! `tables` (the operator's [`postern_tables::Tables`]), `kv` (a bounded
//! in-memory store per plugin that survives reloads), `log` and `now`. An
//! entry that fails [`PolicyConfig::max_failures`] times in a row is no
//! longer called until reload; its `on_error` answers for it.
//!
//! Limits ([`Limits`]: 32 MiB of memory, a 250 ms deadline by default)
//! come from `[plugins]`, `[plugins.NAME]` and an entry's own `deadline`
//! and `memory_limit` keys, in rising precedence.
//!
//! Restriction classes ([`PolicyConfig::classes`], Postfix's
//! `smtpd_restriction_classes`) are named lists that an entry, or an
//! access map's answer (the `restriction` verdict), has evaluated in
//! place; loops and names taken by plugins are refused at load.
//!
//! An entry may grant its plugin one read-only directory (`data_dir`),
//! preopened at [`DATA_DIR_GUEST`]; nothing else of the file system is
//! reachable. [`Runtime::with_cache`] keeps compiled components on disk
//! (wasmtime's cache) so that a restart does not compile them again.
//!
//! A store per (session, plugin): an SMTP session asks through
//! [`postern_mail::Policy::check_in`], and the first check of a
//! transaction that reaches a plugin makes its instance (in a slot of
//! wasmtime's pooling allocator, [`Pool`], or on demand when the pool is
//! full or the plugin may use more memory than a slot holds) and runs
//! `init`; the transaction's later checks call only `check` on it. The
//! session releases its instances, and the snapshot it pinned, when the
//! transaction ends; a failed instance is dropped at once. A check without
//! a session ([`Snapshot::check`]) has instances of its own.
//! `bench/README.md` has the cost of a call.
//!
//! A plugin may declare, in `init`, which attributes of the request its
//! verdict depends on (`host.cache-verdicts`); its entry then keeps
//! verdicts and answers a request like an earlier one without a call,
//! and its calls see only those attributes.
//!
//! End-of-data plugins read the message (header fields, body in slices)
//! through the `message` resource and may add header fields, which become
//! PREPEND actions of their entry.
//!
//! Not here: pulling plugins from OCI registries (the `registry` crate's
//! job).
//!
//! # Layout
//! - [`entry`]: [`Entry`], one item of a restriction list, parsed from the
//!   config; [`Builtin`], [`OnError`], [`Mode`].
//! - [`config`]: [`PolicyConfig`], what a snapshot is built from.
//! - [`runtime`]: [`Runtime`], engine and linker; [`Runtime::load`].
//! - [`snapshot`]: [`Snapshot`] and [`Policies`], the loaded policy and the
//!   hot-reload handle, both [`postern_mail::Policy`].
//! - [`stats`]: [`PluginStats`], counters per plugin
//!   ([`Snapshot::stats`]).
//! - [`limits`]: [`Limits`] per plugin, with the reason for each default,
//!   and the config spellings of sizes and times.
//! - [`error`]: [`Error`] and [`EntryError`].
//! - [`inspect`]: [`Runtime::plugins`] ([`PluginInfo`]) and
//!   [`Runtime::trial`] ([`Trial`]), behind `postern plugin list|test`.
//! - `chain`: Postfix's evaluation rules for one list.
//! - `class`: restriction classes (`smtpd_restriction_classes`), checked
//!   at load ([`MAX_CLASS_DEPTH`]); [`Place`] names a list or a class.
//! - `plugin`: calls of one plugin, under its limits, in an instance a
//!   session keeps ([`Snapshot::check_pinned`]) or a new one, in a pool
//!   slot or on demand.
//! - `message`: the end-of-data `message` resource.
//! - `component`: plugin sources (embedded, directory), the in-memory
//!   compile cache, and the on-demand copy compiled on first need.
//! - `host`: the store's data, the host imports and the deny-all WASI.
//! - `deadline`: a call's deadline of CPU time; its backstop on what the
//!   plugin can be blamed for (CPU time and its own waits); the
//!   wall-clock ceiling of an overloaded machine. `deadline::meter`
//!   meters each poll and tells the waits between polls apart.
//! - [`dns`]: [`DnsConfig`] and the resolver behind the `dns` import.
//! - `kv`: the store behind the `kv` import.
//! - `verdicts`: the verdicts kept for a plugin that declared what they
//!   depend on (`host.cache-verdicts`).
//! - `convert`: requests out, verdicts in (checked).
//! - `engine`: the wasmtime engines (pooled, on demand), their epoch
//!   ticker and on-disk cache; [`Pool`].
//! - `bindings`: what `bindgen!` generates from `wit/policy.wit`.
//! - [`STANDARD_PLUGINS`]: the plugins built from `plugins/` by `build.rs`.

mod bindings;
mod chain;
mod class;
mod component;
pub mod config;
mod convert;
mod deadline;
pub mod dns;
mod engine;
pub mod entry;
pub mod error;
mod host;
pub mod inspect;
mod kv;
pub mod limits;
mod message;
mod plugin;
mod reuse;
pub mod runtime;
pub mod snapshot;
mod standard;
pub mod stats;
mod verdicts;

pub use class::MAX_CLASS_DEPTH;
pub use config::{DEFAULT_MAX_FAILURES, PolicyConfig};
pub use dns::DnsConfig;
pub use engine::Pool;
pub use entry::{Builtin, DATA_DIR_GUEST, Entry, Mode, OnError};
pub use error::{EntryError, Error, Place};
pub use inspect::{PluginInfo, PluginSource, Trial, TrialFailure};
pub use limits::Limits;
pub use runtime::Runtime;
pub use snapshot::{Policies, Snapshot};
pub use standard::STANDARD_PLUGINS;
pub use stats::PluginStats;
