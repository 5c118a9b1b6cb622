//! [`LiveStats`]: one line of the `plugins` answer, written by the daemon
//! and read back by `postern plugin list`. Apart because both sides of
//! the socket use it, and its text is the protocol.

use std::time::Duration;

/// One line of the `plugins` answer: what a plugin of the running
/// snapshot has done since the last reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStats {
    /// The plugin's name.
    pub name: String,
    /// Calls made.
    pub calls: u64,
    /// Requests answered with a kept verdict, without a call
    /// (`host.cache-verdicts`); `None` from a daemon that does not say.
    pub cached: Option<u64>,
    /// Instances made for them (as many as transactions for a plugin
    /// that does not ask for reuse); `None` from a daemon that does not
    /// say.
    pub instances: Option<u64>,
    /// Calls that failed (the entry's `on_error` answered).
    pub failures: u64,
    /// Verdicts by kind, those that occurred.
    pub verdicts: Vec<(String, u64)>,
    /// Median call time (upper bound of its histogram bucket).
    pub p50: Option<Duration>,
    /// 99th percentile call time, likewise.
    pub p99: Option<Duration>,
}

impl std::fmt::Display for LiveStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = |d: Option<Duration>| match d {
            Some(d) => d.as_micros().to_string(),
            None => "-".to_owned(),
        };
        let verdicts: Vec<String> = self
            .verdicts
            .iter()
            .map(|(k, n)| format!("{k}:{n}"))
            .collect();
        write!(
            f,
            "{} calls={} cached={} instances={} failures={} p50_us={} p99_us={} verdicts={}",
            self.name,
            self.calls,
            self.cached
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            self.instances
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            self.failures,
            micros(self.p50),
            micros(self.p99),
            if verdicts.is_empty() {
                "-".to_owned()
            } else {
                verdicts.join(",")
            }
        )
    }
}

impl LiveStats {
    /// Reads a line written by [`LiveStats`]'s `Display`.
    pub fn parse(line: &str) -> Option<LiveStats> {
        let mut words = line.split_whitespace();
        let name = words.next()?.to_owned();
        let mut stats = LiveStats {
            name,
            calls: 0,
            cached: None,
            instances: None,
            failures: 0,
            verdicts: Vec::new(),
            p50: None,
            p99: None,
        };
        let micros = |v: &str| match v {
            "-" => Some(None),
            v => v.parse().ok().map(|n| Some(Duration::from_micros(n))),
        };
        for word in words {
            let (key, value) = word.split_once('=')?;
            match key {
                "calls" => stats.calls = value.parse().ok()?,
                "cached" if value == "-" => {}
                "cached" => stats.cached = Some(value.parse().ok()?),
                "instances" if value == "-" => {}
                "instances" => stats.instances = Some(value.parse().ok()?),
                "failures" => stats.failures = value.parse().ok()?,
                "p50_us" => stats.p50 = micros(value)?,
                "p99_us" => stats.p99 = micros(value)?,
                "verdicts" if value == "-" => {}
                "verdicts" => {
                    for pair in value.split(',') {
                        let (k, n) = pair.split_once(':')?;
                        stats.verdicts.push((k.to_owned(), n.parse().ok()?));
                    }
                }
                // A later daemon may say more; this client shows what it knows.
                _ => {}
            }
        }
        Some(stats)
    }
}
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_round_trip() {
        let s = LiveStats {
            name: "rbl".to_owned(),
            calls: 12,
            cached: Some(40),
            instances: Some(3),
            failures: 1,
            verdicts: vec![("dunno".to_owned(), 10), ("reject".to_owned(), 1)],
            p50: Some(Duration::from_micros(64)),
            p99: Some(Duration::from_micros(4096)),
        };
        let line = s.to_string();
        assert_eq!(
            line,
            "rbl calls=12 cached=40 instances=3 failures=1 p50_us=64 p99_us=4096 verdicts=dunno:10,reject:1"
        );
        assert_eq!(LiveStats::parse(&line), Some(s));
        let idle = LiveStats::parse("x calls=0 failures=0 p50_us=- p99_us=- verdicts=-").unwrap();
        assert_eq!((idle.p50, idle.verdicts.len()), (None, 0));
        // A daemon from before the instance and cache counts: not known,
        // not 0.
        assert_eq!((idle.instances, idle.cached), (None, None));
        assert_eq!(LiveStats::parse("x calls=lots"), None);
    }
}
