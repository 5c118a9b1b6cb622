//! The config sections of the policy runtime: `[plugins]` (limits and the
//! failure threshold, with `[plugins.NAME]` per plugin), `[tables.NAME]`
//! (the tables plugins look up: Postfix `hash`, `cidr`, `regexp`) and
//! `[dns]` (the resolver plugins' lookups go through).
//!
//! ```toml
//! [plugins]
//! memory_limit = "32M"     # per plugin instance
//! deadline = "250ms"       # per call, not counting DNS waits
//! max_failures = 5         # in a row, then skipped until reload
//!
//! [plugins.greylist]
//! deadline = "1s"
//!
//! [tables.access]
//! type = "hash"
//! path = "/etc/postern/access"
//!
//! [dns]
//! nameservers = ["127.0.0.1:5353"]   # default: /etc/resolv.conf
//! timeout = "5s"                     # per lookup
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use postern_policy::limits::{parse_duration as duration, parse_size as size};
use postern_policy::{DEFAULT_MAX_FAILURES, DnsConfig, Limits};
use postern_tables::{Kind, TableSpec};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Source};
use super::{expand, toml_value};

/// The top-level keys this module reads.
pub const SECTIONS: &[&str] = &["plugins", "tables", "dns"];

/// A declared table and the config line that declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredTable {
    /// Name, type and source file.
    pub spec: TableSpec,
    /// 1-based line of `[tables.NAME]`.
    pub line: usize,
}

/// What `[plugins]`, `[tables]` and `[dns]` say, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// The limits of every plugin without its own.
    pub limits: Limits,
    /// `[plugins.NAME]`: limits of particular plugins.
    pub plugin_limits: BTreeMap<String, Limits>,
    /// Failures in a row after which an entry is skipped until reload.
    pub max_failures: u32,
    /// `[tables.NAME]`, sorted by name.
    pub tables: Vec<DeclaredTable>,
    /// `[dns]`.
    pub dns: DnsConfig,
}

impl Default for PolicySettings {
    fn default() -> PolicySettings {
        PolicySettings {
            limits: Limits::default(),
            plugin_limits: BTreeMap::new(),
            max_failures: DEFAULT_MAX_FAILURES,
            tables: Vec::new(),
            dns: DnsConfig::default(),
        }
    }
}

/// Where errors go while reading.
struct Ctx<'a> {
    src: &'a Source,
    errors: &'a mut Vec<ConfigError>,
}

impl Ctx<'_> {
    fn error(&mut self, at: usize, key: &str, message: impl Into<String>) {
        self.errors
            .push(self.src.error(Some(at), key, message.into()));
    }

    /// The value as a string (numbers in decimal), or an error.
    fn scalar(&mut self, key: &str, v: &Spanned<DeValue<'_>>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(_) | DeValue::Integer(_) => toml_value::scalar(v)
                .map_err(|m| self.error(v.span().start, key, m))
                .ok()
                .map(|r| r.value),
            other => {
                self.error(
                    v.span().start,
                    key,
                    format!("expected a string or integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn table<'a, 'i>(&mut self, key: &str, v: &'a Spanned<DeValue<'i>>) -> Option<&'a DeTable<'i>> {
        toml_value::table(v)
            .map_err(|m| self.error(v.span().start, key, m))
            .ok()
    }
}

impl PolicySettings {
    /// Reads one of [`SECTIONS`]; `lookup` expands `$names` in paths.
    pub(super) fn read(
        &mut self,
        name: &str,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        lookup: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<ConfigError>,
    ) {
        let mut cx = Ctx { src, errors };
        let Some(table) = cx.table(name, value) else {
            return;
        };
        match name {
            "plugins" => self.read_plugins(table, &mut cx),
            "tables" => self.read_tables(table, lookup, &mut cx),
            _ => self.read_dns(table, &mut cx),
        }
    }

    fn read_plugins(&mut self, table: &DeTable<'_>, cx: &mut Ctx<'_>) {
        let mut per_plugin = Vec::new();
        for (key, v) in table.iter() {
            let k = key.get_ref().as_ref();
            let path = format!("plugins.{k}");
            if v.get_ref().as_table().is_some() {
                per_plugin.push((k.to_owned(), v));
                continue;
            }
            if k == "max_failures" {
                if let Some(n) = cx.scalar(&path, v).and_then(|s| {
                    parse_count(&s)
                        .map_err(|m| cx.error(v.span().start, &path, m))
                        .ok()
                }) {
                    self.max_failures = n;
                }
                continue;
            }
            let mut limits = self.limits;
            if limit(&mut limits, k, v, &path, cx) {
                self.limits = limits;
            }
        }
        // Per-plugin tables start from the defaults, wherever in the
        // section they were written.
        for (name, v) in per_plugin {
            let mut limits = self.limits;
            let Some(t) = cx.table(&format!("plugins.{name}"), v) else {
                continue;
            };
            for (key, v) in t.iter() {
                let k = key.get_ref().as_ref();
                limit(&mut limits, k, v, &format!("plugins.{name}.{k}"), cx);
            }
            self.plugin_limits.insert(name, limits);
        }
    }

    fn read_tables(
        &mut self,
        table: &DeTable<'_>,
        lookup: &dyn Fn(&str) -> Option<String>,
        cx: &mut Ctx<'_>,
    ) {
        for (key, v) in table.iter() {
            let name = key.get_ref().as_ref();
            let at = key.span().start;
            let prefix = format!("tables.{name}");
            let Some(t) = cx.table(&prefix, v) else {
                continue;
            };
            let (mut kind, mut path) = (None, None);
            // A bad type or path was reported already; "missing" would
            // only repeat it.
            let mut reported = false;
            for (key, v) in t.iter() {
                let k = key.get_ref().as_ref();
                let kpath = format!("{prefix}.{k}");
                let at = v.span().start;
                match k {
                    "type" => match cx.scalar(&kpath, v).map(|s| s.parse::<Kind>()) {
                        Some(Ok(k)) => kind = Some(k),
                        Some(Err(e)) => {
                            reported = true;
                            cx.error(at, &kpath, e.to_string());
                        }
                        None => reported = true,
                    },
                    "path" => {
                        if let Some(p) = cx.scalar(&kpath, v) {
                            match expand::expand(&p, lookup) {
                                Ok(p) => path = Some(PathBuf::from(p)),
                                Err(e) => {
                                    reported = true;
                                    cx.error(at, &kpath, e.to_string());
                                }
                            }
                        } else {
                            reported = true;
                        }
                    }
                    _ => cx.error(
                        key.span().start,
                        &kpath,
                        "unknown key (expected type, path)",
                    ),
                }
            }
            match (kind, path) {
                (Some(kind), Some(path)) => self.tables.push(DeclaredTable {
                    spec: TableSpec {
                        name: name.to_owned(),
                        kind,
                        path,
                    },
                    line: cx.src.line_of(at),
                }),
                _ if reported => {}
                (None, _) => cx.error(
                    at,
                    &prefix,
                    "missing type = \"hash\", \"cidr\" or \"regexp\"",
                ),
                (_, None) => cx.error(at, &prefix, "missing path = \"/path/to/source\""),
            }
        }
    }

    fn read_dns(&mut self, table: &DeTable<'_>, cx: &mut Ctx<'_>) {
        for (key, v) in table.iter() {
            let k = key.get_ref().as_ref();
            let path = format!("dns.{k}");
            let at = v.span().start;
            match k {
                "nameservers" => {
                    let Some(s) = toml_value::scalar(v)
                        .map_err(|m| cx.error(at, &path, m))
                        .ok()
                    else {
                        continue;
                    };
                    let servers: Result<Vec<SocketAddr>, String> = s
                        .value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(nameserver)
                        .collect();
                    match servers {
                        Ok(servers) => self.dns.nameservers = servers,
                        Err(m) => cx.error(at, &path, m),
                    }
                }
                "timeout" | "budget" => {
                    let Some(d) = cx
                        .scalar(&path, v)
                        .and_then(|s| duration(&s).map_err(|m| cx.error(at, &path, m)).ok())
                    else {
                        continue;
                    };
                    if k == "timeout" {
                        self.dns.timeout = d;
                    } else {
                        self.dns.budget = d;
                    }
                }
                _ => cx.error(
                    key.span().start,
                    &path,
                    "unknown key (expected nameservers, timeout, budget)",
                ),
            }
        }
    }
}

/// Sets limit `key` of `limits` from `v`; false (with an error) if it is
/// not a limit or not valid.
fn limit(
    limits: &mut Limits,
    key: &str,
    v: &Spanned<DeValue<'_>>,
    path: &str,
    cx: &mut Ctx<'_>,
) -> bool {
    let at = v.span().start;
    let Some(s) = cx.scalar(path, v) else {
        return false;
    };
    let result = match key {
        "memory_limit" => size(&s).map(|n| limits.memory_bytes = n),
        "deadline" => duration(&s).map(|d| limits.deadline = d),
        "concurrent_calls" => parse_count(&s).map(|n| limits.concurrent_calls = n.max(1) as usize),
        "log_lines" => parse_count(&s).map(|n| limits.log_lines = n),
        _ => Err("unknown key (expected memory_limit, deadline, concurrent_calls, log_lines, max_failures, or a [plugins.NAME] table)".to_owned()),
    };
    match result {
        Ok(()) => true,
        Err(m) => {
            cx.error(at, path, m);
            false
        }
    }
}

fn parse_count(s: &str) -> Result<u32, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected a whole number, found {s:?}"))
}

/// `127.0.0.1:5353`, `[::1]:5353`, or an address on port 53.
fn nameserver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not a name server address such as 127.0.0.1:5353"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, Machine};

    fn parse(text: &str) -> Result<Config, String> {
        let machine = Machine {
            hostname: "mx.example.org".to_owned(),
            data_directory: PathBuf::from("/var/lib/postern"),
        };
        Config::parse(Source::named("t.toml", text), machine, false).map_err(|e| e.to_string())
    }

    #[test]
    fn sections_read_into_settings() {
        let c = parse(
            "[plugins]\nmemory_limit = \"16M\"\ndeadline = \"100ms\"\nmax_failures = 2\n\
             [plugins.slow]\ndeadline = 2\n\
             [tables.access]\ntype = \"hash\"\npath = \"$data_directory/access\"\n\
             [dns]\nnameservers = [\"127.0.0.1:5353\", \"::1\"]\ntimeout = \"2s\"\n",
        )
        .unwrap();
        let p = &c.policy;
        assert_eq!(p.limits.memory_bytes, 16 << 20);
        assert_eq!(p.limits.deadline, Duration::from_millis(100));
        assert_eq!(p.max_failures, 2);
        let slow = p.plugin_limits["slow"];
        assert_eq!(slow.deadline, Duration::from_secs(2));
        assert_eq!(slow.memory_bytes, 16 << 20, "starts from [plugins]");
        assert_eq!(
            p.tables,
            [DeclaredTable {
                spec: TableSpec {
                    name: "access".to_owned(),
                    kind: Kind::Hash,
                    path: PathBuf::from("/var/lib/postern/access"),
                },
                line: 7,
            }]
        );
        assert_eq!(
            p.dns.nameservers,
            [
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(p.dns.timeout, Duration::from_secs(2));
    }

    #[test]
    fn mistakes_name_line_and_key() {
        let err = parse("[plugins]\ncolour = 1\n[tables.t]\npath = \"/x\"\n[dns]\nport = 53\n")
            .unwrap_err();
        assert_eq!(
            err,
            "t.toml:2: plugins.colour: unknown key (expected memory_limit, deadline, \
             concurrent_calls, log_lines, max_failures, or a [plugins.NAME] table)\n\
             t.toml:3: tables.t: missing type = \"hash\", \"cidr\" or \"regexp\"\n\
             t.toml:6: dns.port: unknown key (expected nameservers, timeout, budget)"
        );
    }

    #[test]
    fn nameservers() {
        assert_eq!(nameserver("127.0.0.1"), Ok("127.0.0.1:53".parse().unwrap()));
        assert!(nameserver("localhost:53").is_err());
    }
}
