//! What one plugin call may use, and the limiter that enforces it.
//!
//! A plugin runs on the SMTP server's request path: whatever it takes, a
//! client waits for. The limits keep one plugin from starving the server
//! (DESIGN §8: "a plugin cannot crash, hang or starve the server"); hitting
//! one fails the call, which applies the entry's `on_error`.

use std::time::Duration;

/// Per-plugin resource limits. [`Limits::default`] fits the standard
/// plugins with a wide margin; the fields are public so that the server can
/// take them from `[plugins]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most one linear memory may grow to, in bytes (a Rust or C
    /// component has one memory; see `instances` for how many). 32 MiB: a
    /// restriction check needs a few pages; a Python or JavaScript
    /// component carries its interpreter's heap, which fits. Hundreds of
    /// sessions may each hold an instance, so this bounds the worst case
    /// at sessions × 32 MiB.
    pub memory_bytes: usize,
    /// The most elements one table may have. 20,000 is far above what the
    /// function tables of compiled Rust, C or an interpreter need, and
    /// stops a guest from growing a table without bound.
    pub table_elements: usize,
    /// The most core instances, tables and memories one component may
    /// create. A Rust component has a handful of core instances (the code
    /// and the canonical-ABI shims); 100 leaves room for composed
    /// components while refusing a component that fans out without bound.
    pub instances: usize,
    /// The CPU time a call may use: instantiation, `init` and `check`
    /// together, on whichever threads they ran. Time spent waiting (for a
    /// core on a loaded machine, for the executor, for DNS, which has its
    /// own bounds in [`crate::DnsConfig`]) does not count, so a busy
    /// machine does not cut off plugins that did nothing wrong. Four times
    /// as much of its CPU time and its own waits (a WASI sleep or poll;
    /// not DNS, not waiting for a thread) ends a guest blocked in a host
    /// call, and forty times as much wall-clock time (DNS waits excepted)
    /// ends any call, however loaded the machine (`crate::deadline`).
    /// A turn ([`Limits::concurrent_calls`]) is waited for within the
    /// deadline in wall-clock time. 250 ms: Postfix gives a policy server
    /// 100 s (`smtpd_policy_service_timeout`), but a plugin runs in-process
    /// and its network waits are the host's, so a quarter second of its
    /// own is an eternity of compute, and a chain of a few plugins that
    /// all hang still answers the client within seconds.
    pub deadline: Duration,
    /// How many calls of one plugin may run at once; more wait for a turn
    /// within their deadline. 100, Postfix's `default_process_limit`: as
    /// many as smtpd processes Postfix would run, and a bound on the memory
    /// one plugin can hold (`concurrent_calls` × `memory_bytes`). At
    /// least 1.
    pub concurrent_calls: usize,
    /// How many `host.log` lines one call may write; the rest are counted
    /// and dropped, so that a plugin cannot flood the mail log.
    pub log_lines: u32,
    /// How many transactions one instance may serve, for a plugin that
    /// asked for its instances to be reused (`host.reuse-instances`,
    /// `crate::reuse`); then it is dropped and the next transaction
    /// gets a fresh one. 100, Postfix's `max_use` for its daemons, and
    /// for the same reason: whatever an instance leaks is bounded. 1: no
    /// reuse. At least 1.
    pub max_use: u32,
    /// How long an instance kept for reuse may wait unused before it is
    /// dropped: 100 s, Postfix's `max_idle` for its daemons, so that the
    /// instances a burst of mail made go once it is over.
    pub max_idle: Duration,
    /// How many verdicts one entry keeps, for a plugin that declared what
    /// they depend on (`host.cache-verdicts`, `crate::verdicts`). 1,024:
    /// the clients and recipients of a busy minute. A verdict takes its
    /// declared attributes and its reply: a few hundred bytes as a rule,
    /// at most about 5 KiB (a reply of eight 480-byte lines), so that an
    /// entry holds 5 MiB at worst. 0: no verdict is kept.
    pub verdict_cache: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 32 << 20,
            table_elements: 20_000,
            instances: 100,
            deadline: Duration::from_millis(250),
            concurrent_calls: 100,
            log_lines: 16,
            max_use: 100,
            max_idle: Duration::from_secs(100),
            verdict_cache: 1024,
        }
    }
}

/// Reads a memory size as the config writes it: `32M`, `32MiB`, `512k`,
/// `1G` or a number of bytes; at least 1 MiB, less cannot hold a
/// component's stack and data.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(i);
    let scale: usize = match unit.trim() {
        "" => 1,
        "k" | "K" | "KiB" | "kB" => 1 << 10,
        "M" | "MiB" | "MB" => 1 << 20,
        "G" | "GiB" | "GB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use k, M or G)"
            ));
        }
    };
    let n = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("expected a size such as 32M, found {s:?}"))?;
    if n < 1 << 20 {
        return Err(format!("{s:?} is below the 1M a plugin needs"));
    }
    Ok(n)
}

/// Reads a time as the config writes it: `250ms`, `5s`, `1m`, or a number
/// of seconds (Postfix's default unit). Zero is refused: it would fail
/// every call.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(i);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a time such as 250ms or 5s, found {s:?}"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        other => {
            return Err(format!(
                "unknown time unit {other:?} in {s:?} (use ms, s or m)"
            ));
        }
    };
    if d.is_zero() {
        return Err(format!("{s:?}: a time of zero would fail every call"));
    }
    Ok(d)
}

/// The [`wasmtime::ResourceLimiter`] of one store: enforces [`Limits`] and
/// remembers which limit was hit, so that the log can name the cause
/// instead of the guest's abort that follows a failed allocation.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: Limits,
    /// The first limit refused, as a message.
    pub(crate) hit: Option<String>,
}

impl Limiter {
    pub(crate) fn new(limits: Limits) -> Limiter {
        Limiter { limits, hit: None }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            self.hit.get_or_insert_with(|| {
                format!(
                    "memory limit: wanted {} MiB, the limit is {} MiB",
                    desired >> 20,
                    self.limits.memory_bytes >> 20
                )
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            self.hit.get_or_insert_with(|| {
                format!(
                    "table limit: wanted {desired} elements, the limit is {}",
                    self.limits.table_elements
                )
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.instances
    }

    fn memories(&self) -> usize {
        self.limits.instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("32M"), Ok(32 << 20));
        assert_eq!(parse_size("2097152"), Ok(2 << 20));
        assert!(parse_size("12k").unwrap_or_default() == 0);
        assert!(parse_size("3X").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn refuses_memory_beyond_the_limit_and_says_so() {
        let mut l = Limiter::new(Limits::default());
        assert!(matches!(l.memory_growing(0, 1 << 20, None), Ok(true)));
        assert!(l.hit.is_none());
        assert!(matches!(l.memory_growing(0, 128 << 20, None), Ok(false)));
        assert_eq!(
            l.hit.as_deref(),
            Some("memory limit: wanted 128 MiB, the limit is 32 MiB")
        );
    }
}
