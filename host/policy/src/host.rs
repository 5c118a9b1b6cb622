//! What a plugin's store holds, and the host side of its imports: the
//! `postern:policy` interfaces `host` (log, now), `dns`, `tables` and `kv`,
//! and a deny-all WASI. (`message` is in [`crate::message`].)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_resolver::proto::rr::RecordType;
use postern_tables::Tables;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::postern::policy::dns::{self, DnsError, Exchanger};
use crate::bindings::postern::policy::host::{Host, LogLevel};
use crate::bindings::postern::policy::{kv, tables, types};
use crate::deadline::{Deadline, HostWait, Over};
use crate::dns::Dns;
use crate::kv::Kv;
use crate::limits::{Limiter, Limits};
use crate::verdicts::CacheSpec;

/// What the imports reach beyond the store: the resolver and tables of
/// the snapshot, and the runtime's key-value store.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    pub(crate) dns: Dns,
    pub(crate) tables: Arc<Tables>,
    pub(crate) kv: Kv,
}

/// The longest `host.log` message kept, in bytes; the rest is cut. One log
/// line stays one readable line.
const MAX_LOG_MESSAGE: usize = 1024;

/// The most distinct results `tables.results` hands over: an access map
/// has a handful (OK, REJECT, a few texts); a table with more is one a
/// plugin should not reason about as a whole, and copying it into every
/// entry's `init` would cost memory for nothing.
const MAX_RESULTS: usize = 1000;

/// The data of one store: one instance of one plugin, kept by a session
/// for its calls of one transaction (and, if the plugin asked, by later
/// transactions in turn: [`crate::reuse`]). The fields below `services`
/// are per call, set again by [`State::begin_call`].
pub(crate) struct State {
    /// The plugin's name, on every log line it writes.
    plugin: Arc<str>,
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// Enforces the memory and table limits; says which one was hit.
    pub(crate) limiter: Limiter,
    /// When the call must be over; checked at every epoch tick.
    pub(crate) deadline: Arc<Deadline>,
    services: Arc<Services>,
    /// The DNS time this call may still use ([`crate::DnsConfig::budget`]).
    dns_left: Duration,
    /// Set by the epoch callback when it interrupted the guest, so that the
    /// failure is reported as a timeout (and which) rather than as a bare
    /// trap.
    pub(crate) timed_out: Option<Over>,
    /// `host.log` lines this call may still write.
    logs_left: u32,
    /// `host.log` lines dropped once `logs_left` ran out.
    pub(crate) logs_dropped: u32,
    /// The message of an end-of-data request, for `message.current`.
    pub(crate) message: Option<Arc<crate::message::Parsed>>,
    /// Message handles the guest holds.
    pub(crate) handles: usize,
    /// Header lines the call added through `message.add-header`.
    pub(crate) added: Vec<String>,
    /// What `init` answered when it refused the entry's arguments.
    pub(crate) refusal: Option<String>,
    /// Set when the guest called `host.reuse-instances`: this instance may
    /// serve later transactions ([`crate::reuse`]).
    pub(crate) reuse_asked: bool,
    /// What the guest declared with `host.cache-verdicts`; read from the
    /// load-time `init` only ([`crate::verdicts`]).
    pub(crate) cache_asked: Option<CacheSpec>,
    /// Set when this call did something its verdict may depend on beyond
    /// the request, or that a kept verdict would skip (wrote to `kv`,
    /// logged at `info` or above, took the message, had a DNS lookup fail
    /// other than with NXDOMAIN, read `kv`): its verdict is not kept. (The
    /// time is watched by [`State::clock`].)
    pub(crate) uncacheable: bool,
    /// The wall clock `host.now` and WASI read, which notes that it was
    /// read: a verdict that may depend on the time is not kept (see
    /// [`State::cacheable`]).
    clock: WatchedClock,
    limits: Limits,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("plugin", &self.plugin)
            .field("limiter", &self.limiter)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The state of a call of `plugin` that must be over by `deadline`,
    /// with WASI from [`wasi`].
    pub(crate) fn new(
        plugin: Arc<str>,
        limits: Limits,
        deadline: Arc<Deadline>,
        services: Arc<Services>,
        wasi: WasiCtx,
        clock: WatchedClock,
    ) -> State {
        State {
            plugin,
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            deadline,
            dns_left: services.dns.config.budget,
            services,
            timed_out: None,
            logs_left: limits.log_lines,
            logs_dropped: 0,
            message: None,
            handles: 0,
            added: Vec::new(),
            refusal: None,
            reuse_asked: false,
            cache_asked: None,
            uncacheable: false,
            clock,
            limits,
        }
    }

    /// Whether this call's verdict may be kept as far as what it read and
    /// did goes: nothing made it [`State::uncacheable`], and it did not
    /// read the wall clock (`host.now` or WASI's). (The caller checks the added headers and the
    /// handles.) The monotonic clock and random numbers are not watched:
    /// language runtimes read them for their own ends (timers, hash
    /// seeds), and a verdict that depends on them depends on nothing an
    /// operator could name.
    pub(crate) fn cacheable(&self) -> bool {
        !self.uncacheable && !self.clock.read.load(Ordering::Relaxed)
    }

    /// Starts a call on this store: its own deadline, DNS time and log
    /// lines, and the message it may read. What the last call left (a
    /// limit hit, added headers) is forgotten; the instance's memory is
    /// not, and counts against the memory limit as before.
    pub(crate) fn begin_call(
        &mut self,
        deadline: Arc<Deadline>,
        message: Option<Arc<crate::message::Parsed>>,
    ) {
        self.deadline = deadline;
        self.dns_left = self.services.dns.config.budget;
        self.timed_out = None;
        self.limiter.hit = None;
        self.logs_left = self.limits.log_lines;
        self.logs_dropped = 0;
        self.message = message;
        self.added.clear();
        self.uncacheable = false;
        self.clock.read.store(false, Ordering::Relaxed);
    }

    /// Ends a call: the message goes (handles the guest kept still hold
    /// it until the store is dropped).
    pub(crate) fn end_call(&mut self) {
        self.message = None;
    }
}

/// A WASI context that grants nothing but clocks and random numbers: no
/// environment, no arguments, stdin closed, stdout and stderr discarded,
/// no sockets and no name lookups, and no preopened directory except the
/// entry's `data_dir`, read-only, at [`crate::entry::DATA_DIR_GUEST`].
/// Components built by Rust, Python or JavaScript toolchains import
/// wasi:cli and friends even when they never use them; they link, and get
/// nothing.
///
/// The directory is opened again for every call (one `open`, a few
/// microseconds): a snapshot holds its path, not a descriptor, so an
/// operator who replaces the directory sees the new one without a reload.
/// wasmtime-wasi resolves every guest path beneath the descriptor
/// (cap-std), so `..` and symbolic links cannot leave it.
///
/// The wall clock is the host's, watched: a call that reads it is not
/// kept ([`State::cacheable`]).
pub(crate) fn wasi(data_dir: Option<&Path>, clock: WatchedClock) -> Result<WasiCtx, String> {
    let mut builder = WasiCtx::builder();
    builder
        .wall_clock(clock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    if let Some(dir) = data_dir {
        builder
            .preopened_dir(dir, crate::entry::DATA_DIR_GUEST, FsPerms::ReadOnly)
            .map_err(|e| format!("data_dir {}: {e:#}", dir.display()))?;
    }
    Ok(builder.build())
}

/// The host's wall clock, as `host.now` and WASI's wall clock read it,
/// noting that it was read: a verdict that may depend on the time of day
/// is not kept for later requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct WatchedClock {
    read: Arc<AtomicBool>,
}

impl HostWallClock for WatchedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.read.store(true, Ordering::Relaxed);
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for State {}

impl Host for State {
    fn log(&mut self, level: LogLevel, message: String) {
        // A line the operator reads belongs to this request: a verdict
        // kept would answer the next one without it.
        if !matches!(level, LogLevel::Trace | LogLevel::Debug) {
            self.uncacheable = true;
        }
        if self.logs_left == 0 {
            self.logs_dropped = self.logs_dropped.saturating_add(1);
            return;
        }
        self.logs_left -= 1;
        let message = one_line(&message, MAX_LOG_MESSAGE);
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(target: "postern/policy", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "postern/policy", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "postern/policy", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "postern/policy", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "postern/policy", plugin, "{message}"),
        }
    }

    fn now(&mut self) -> u64 {
        // The same watched clock as WASI's: a verdict that may depend on
        // the time is this request's alone.
        HostWallClock::now(&self.clock).as_secs()
    }

    fn reuse_instances(&mut self) {
        self.reuse_asked = true;
    }

    fn cache_verdicts(&mut self, attributes: Vec<types::Attribute>, ttl_seconds: u32) {
        self.cache_asked = CacheSpec::new(attributes, ttl_seconds);
    }
}

impl State {
    /// One DNS lookup under this call's budget; the deadline moves by the
    /// time it took.
    async fn resolve(
        &mut self,
        name: &str,
        kind: RecordType,
    ) -> Result<Vec<hickory_resolver::proto::rr::RData>, DnsError> {
        // The wait is the host's, bounded by the DNS timeout and budget:
        // it counts for neither the call's backstop nor its ceiling
        // (`crate::deadline`).
        let limit = self.dns_left.min(self.services.dns.config.timeout);
        let deadline = self.deadline.clone();
        let waiting = deadline.host_wait(HostWait::Dns);
        let (result, took) = self.services.dns.lookup(name, kind, limit).await;
        drop(waiting);
        self.dns_left = self.dns_left.saturating_sub(took.min(limit));
        if let Err(e) = &result {
            // NXDOMAIN is an answer (an RBL's "not listed"); the rest may
            // be different in a minute.
            if !matches!(e, DnsError::Nxdomain) {
                self.uncacheable = true;
            }
            let name = one_line(name, 256);
            tracing::debug!(target: "postern/policy", plugin = &*self.plugin, "dns {kind} {name}: {e:?}");
        }
        result
    }
}

impl dns::Host for State {
    async fn a(&mut self, name: String) -> Result<Vec<String>, DnsError> {
        self.resolve(&name, RecordType::A)
            .await
            .map(crate::dns::addresses)
    }

    async fn aaaa(&mut self, name: String) -> Result<Vec<String>, DnsError> {
        self.resolve(&name, RecordType::AAAA)
            .await
            .map(crate::dns::addresses)
    }

    async fn mx(&mut self, name: String) -> Result<Vec<Exchanger>, DnsError> {
        self.resolve(&name, RecordType::MX)
            .await
            .map(crate::dns::exchangers)
    }

    async fn txt(&mut self, name: String) -> Result<Vec<String>, DnsError> {
        self.resolve(&name, RecordType::TXT)
            .await
            .map(crate::dns::texts)
    }

    async fn ptr(&mut self, address: String) -> Result<Vec<String>, DnsError> {
        let name = crate::dns::reverse_name(&address)?;
        self.resolve(&name, RecordType::PTR)
            .await
            .map(crate::dns::names)
    }

    async fn ns(&mut self, name: String) -> Result<Vec<String>, DnsError> {
        self.resolve(&name, RecordType::NS)
            .await
            .map(crate::dns::names)
    }
}

impl tables::Host for State {
    fn results(&mut self, table: String) -> wasmtime::Result<Option<Vec<String>>> {
        let Some(table) = self.services.tables.get(&table) else {
            return Ok(None);
        };
        let results = table.results();
        Ok(
            (results.len() <= MAX_RESULTS)
                .then(|| results.into_iter().map(str::to_owned).collect()),
        )
    }

    fn lookup(&mut self, table: String, key: String) -> wasmtime::Result<Option<String>> {
        match self.services.tables.lookup(&table, &key) {
            Some(answer) => Ok(answer),
            None => Err(wasmtime::Error::msg(format!(
                "tables: no table {:?} is declared (add [tables.{}] to the config)",
                one_line(&table, 64),
                one_line(&table, 64)
            ))),
        }
    }
}

impl kv::Host for State {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        // What another call wrote may change before a kept verdict expires.
        self.uncacheable = true;
        Ok(self.services.kv.get(&self.plugin, &key)?)
    }

    fn set(&mut self, key: String, value: String, ttl_seconds: u64) -> wasmtime::Result<()> {
        self.uncacheable = true;
        Ok(self
            .services
            .kv
            .set(&self.plugin, &key, &value, ttl_seconds)?)
    }

    fn incr(&mut self, key: String, delta: i64, ttl_seconds: u64) -> wasmtime::Result<i64> {
        self.uncacheable = true;
        Ok(self
            .services
            .kv
            .incr(&self.plugin, &key, delta, ttl_seconds)?)
    }
}

/// `text` made safe for one log or reply line: control characters (a
/// plugin could otherwise forge log lines with a newline) become spaces,
/// and the text is cut to at most `max` bytes on a character boundary.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_newlines_and_cuts_on_a_char_boundary() {
        assert_eq!(one_line("a\r\nb", 100), "a  b");
        assert_eq!(one_line("ééé", 5), "éé");
    }
}
