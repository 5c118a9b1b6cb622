//! What a plugin's store holds, and the host side of its imports: the
//! `postern:policy/host` interface (log, now) and a deny-all WASI.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::postern::policy::host::{Host, LogLevel};
use crate::bindings::postern::policy::types;
use crate::limits::{Limiter, Limits};

/// The longest `host.log` message kept, in bytes; the rest is cut. One log
/// line stays one readable line.
const MAX_LOG_MESSAGE: usize = 1024;

/// The data of one store: one call of one plugin.
pub(crate) struct State {
    /// The plugin's name, on every log line it writes.
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    /// Enforces the memory and table limits; says which one was hit.
    pub(crate) limiter: Limiter,
    /// When the call must be over; checked at every epoch tick.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it interrupted the guest, so that the
    /// failure is reported as a timeout rather than as a bare trap.
    pub(crate) timed_out: bool,
    /// `host.log` lines this call may still write.
    logs_left: u32,
    /// `host.log` lines dropped once `logs_left` ran out.
    pub(crate) logs_dropped: u32,
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
    /// The state of a call of `plugin` that must be over by `deadline`.
    pub(crate) fn new(plugin: Arc<str>, limits: Limits, deadline: Instant) -> State {
        State {
            plugin,
            wasi: deny_all(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            deadline,
            timed_out: false,
            logs_left: limits.log_lines,
            logs_dropped: 0,
        }
    }
}

/// A WASI context that grants nothing but clocks and random numbers: no
/// preopened directories, no environment, no arguments, stdin closed,
/// stdout and stderr discarded, no sockets and no name lookups. Components
/// built by Rust, Python or JavaScript toolchains import wasi:cli and
/// friends even when they never use them; they link, and get nothing.
fn deny_all() -> WasiCtx {
    WasiCtx::builder()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
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
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
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
