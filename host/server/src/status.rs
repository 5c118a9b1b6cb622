//! `postern status`: what the running daemon says about itself, through
//! the control socket's `status` command: version, uptime, listeners,
//! messages in each queue, the digest of the plugin set in service, and
//! how the last reload went. Postfix's `postfix status` says only
//! "running, PID"; an operator asked `postqueue -p | tail -1`, `ss -ltn`
//! and the log for the rest.
//!
//! The daemon keeps the facts in [`Facts`] (start time and listeners at
//! start, the plugin digest and reload result at each reload) and renders
//! them with the queue counted at the moment of asking. Without a daemon
//! the command says it is not running and exits 1, as `postfix status`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use postern_queue::QueueName;
use sha2::{Digest as _, Sha256};

/// What the daemon knows about itself for `postern status`.
#[derive(Debug)]
pub struct Facts {
    started: Instant,
    config: String,
    queue_directory: PathBuf,
    /// `NAME ADDRESS` per listener, in the order they were bound.
    listeners: Vec<String>,
    plugins: Mutex<PluginSet>,
    last_reload: Mutex<Option<Reload>>,
}

/// The plugins the running restriction lists use.
#[derive(Debug, Default, Clone)]
pub struct PluginSet {
    /// How many.
    pub count: usize,
    /// SHA-256 over their `name sha256` lines, sorted by name: equal
    /// digests on two servers mean the same bytes run under the same names.
    pub digest: String,
}

#[derive(Debug)]
struct Reload {
    at: Instant,
    wall: SystemTime,
    result: Result<(), String>,
}

impl Facts {
    /// The facts of a daemon started now.
    pub fn new(
        config: &str,
        queue_directory: &Path,
        listeners: Vec<String>,
        plugins: PluginSet,
    ) -> Facts {
        Facts {
            started: Instant::now(),
            config: config.to_owned(),
            queue_directory: queue_directory.to_owned(),
            listeners,
            plugins: Mutex::new(plugins),
            last_reload: Mutex::new(None),
        }
    }

    /// Records a reload's outcome, and the plugin set it put in service.
    pub fn reloaded(&self, result: Result<PluginSet, String>) {
        let result = match result {
            Ok(set) => {
                *self.plugins.lock().unwrap_or_else(PoisonError::into_inner) = set;
                Ok(())
            }
            Err(e) => Err(e),
        };
        *self
            .last_reload
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Reload {
            at: Instant::now(),
            wall: SystemTime::now(),
            result,
        });
    }

    /// The `status` answer: one `key: value` line each (listeners one per
    /// line), the queue counted now.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "version: {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "pid: {}", std::process::id());
        let _ = writeln!(out, "uptime: {}", human(self.started.elapsed()));
        let _ = writeln!(out, "config: {}", self.config);
        for l in &self.listeners {
            let _ = writeln!(out, "listener: {l}");
        }
        let queues: Vec<String> = QueueName::ALL
            .iter()
            .map(|q| (q.as_str(), self.queue_directory.join(q.as_str())))
            .chain([(
                "maildrop",
                postern_queue::pickup::maildrop_dir(&self.queue_directory),
            )])
            .map(|(name, dir)| format!("{name} {}", crate::metrics::count_files(&dir)))
            .collect();
        let _ = writeln!(out, "queue: {}", queues.join(", "));
        let plugins = self
            .plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let _ = writeln!(
            out,
            "plugins: {} in service, set sha256:{}",
            plugins.count, plugins.digest
        );
        let reload = self
            .last_reload
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*reload {
            None => out.push_str("last reload: none since start\n"),
            Some(r) => {
                let ago = human(r.at.elapsed());
                let epoch = r
                    .wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match &r.result {
                    Ok(()) => {
                        let _ = writeln!(out, "last reload: ok, {ago} ago (unix time {epoch})");
                    }
                    Err(e) => {
                        let first = e.lines().next().unwrap_or_default();
                        let _ = writeln!(
                            out,
                            "last reload: failed, {ago} ago (unix time {epoch}), running set kept: {first}"
                        );
                    }
                }
            }
        }
        out
    }
}

/// The plugin set `config`'s lists use, for [`Facts`].
pub fn plugin_set(
    runtime: &postern_policy::Runtime,
    config: &postern_policy::PolicyConfig,
) -> anyhow::Result<PluginSet> {
    let mut used: Vec<(String, String)> = runtime
        .plugins(config)?
        .into_iter()
        .filter(|p| !p.used_by.is_empty())
        .map(|p| (p.name, p.sha256))
        .collect();
    used.sort();
    let mut hash = Sha256::new();
    for (name, sha) in &used {
        hash.update(format!("{name} {sha}\n").as_bytes());
    }
    let digest = hash.finalize().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    Ok(PluginSet {
        count: used.len(),
        digest,
    })
}

/// `1d 2h 3m 4s`, leaving out leading zero units.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m {seconds}s"),
        _ => format!("{days}d {hours}h {minutes}m {seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_as_a_human_writes_it() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(65)), "1m 5s");
        assert_eq!(human(Duration::from_secs(3_725)), "1h 2m 5s");
        assert_eq!(human(Duration::from_secs(90_061)), "1d 1h 1m 1s");
    }

    #[test]
    fn a_failed_reload_is_reported_with_its_reason() {
        let dir = std::env::temp_dir();
        let facts = Facts::new(
            "x.toml",
            &dir,
            vec!["smtp 127.0.0.1:25".into()],
            PluginSet::default(),
        );
        assert!(facts.render().contains("last reload: none since start"));
        facts.reloaded(Err("x.toml:3: bad\nmore".into()));
        let text = facts.render();
        assert!(text.contains("last reload: failed"), "{text}");
        assert!(text.contains("running set kept: x.toml:3: bad"), "{text}");
        assert!(text.contains("listener: smtp 127.0.0.1:25"), "{text}");
    }
}
