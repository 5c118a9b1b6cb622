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
//! trusted_keys = ["ed25519:BASE64"]   # who may sign registry plugins
//! require_signatures = true            # refuse unsigned ones
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
//!
//! This file reads `[plugins]`; beside it, `tables.rs` reads `[tables]`
//! (and the tables the restriction lists name), `dns.rs` reads `[dns]`,
//! `registries.rs` the registry keys of `[plugins]`, and `access.rs`
//! holds what the daemon needs of the access(5) map restrictions.

use std::collections::BTreeMap;

use postern_policy::limits::{parse_duration as duration, parse_size as size};
use postern_policy::{DEFAULT_MAX_FAILURES, DnsConfig, Limits};
use postern_tables::TableSpec;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Source};
use super::toml_value;

mod access;
mod dns;
mod registries;
mod tables;

pub use access::{ACCESS_PLUGINS, access_map_args, check_access_table, implicit_access};

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
    /// Public keys (`ed25519:BASE64`) whose signatures on registry plugins
    /// the operator trusts (`postern plugin install`, `oci://` entries).
    pub trusted_keys: Vec<String>,
    /// Whether a registry plugin without a signature by a trusted key is
    /// refused.
    pub require_signatures: bool,
    /// `max_plugin_size` and `[plugins.registries."HOST"]`: credentials
    /// and timeouts of registries.
    pub registry_access: postern_registry::Access,
}

impl Default for PolicySettings {
    fn default() -> PolicySettings {
        PolicySettings {
            limits: Limits::default(),
            plugin_limits: BTreeMap::new(),
            max_failures: DEFAULT_MAX_FAILURES,
            tables: Vec::new(),
            dns: DnsConfig::default(),
            trusted_keys: Vec::new(),
            require_signatures: false,
            registry_access: postern_registry::Access::default(),
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
            if k == "registries" {
                self.read_registries(v, cx);
                continue;
            }
            if k == "max_plugin_size" {
                self.read_max_plugin_size(v, &path, cx);
                continue;
            }
            if v.get_ref().as_table().is_some() {
                per_plugin.push((k.to_owned(), v));
                continue;
            }
            if k == "require_signatures" {
                match v.get_ref() {
                    DeValue::Boolean(b) => self.require_signatures = *b,
                    _ => cx.error(v.span().start, &path, "expected true or false"),
                }
                continue;
            }
            if k == "trusted_keys" {
                self.read_trusted_keys(v, &path, cx);
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

    /// `trusted_keys = ["ed25519:BASE64", ...]`, each key checked here so
    /// that a typo shows at `postern check`, not at the first install.
    fn read_trusted_keys(&mut self, v: &Spanned<DeValue<'_>>, path: &str, cx: &mut Ctx<'_>) {
        let DeValue::Array(items) = v.get_ref() else {
            cx.error(
                v.span().start,
                path,
                "expected a list of \"ed25519:BASE64\" keys",
            );
            return;
        };
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(key) => match postern_registry::signature::parse_public_key(key) {
                    Ok(_) => self.trusted_keys.push(key.to_string()),
                    Err(e) => cx.error(item.span().start, path, e.to_string()),
                },
                _ => cx.error(
                    item.span().start,
                    path,
                    "expected a string \"ed25519:BASE64\"",
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
        "max_use" => parse_count(&s).map(|n| limits.max_use = n.max(1)),
        "max_idle" => duration(&s).map(|d| limits.max_idle = d),
        "verdict_cache_size" => parse_count(&s).map(|n| limits.verdict_cache = n as usize),
        _ => Err("unknown key (expected memory_limit, deadline, concurrent_calls, log_lines, max_use, max_idle, verdict_cache_size, max_failures, trusted_keys, require_signatures, max_plugin_size, [plugins.registries], or a [plugins.NAME] table)".to_owned()),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::time::Duration;

    use postern_tables::Kind;

    use super::*;
    use crate::config::{Config, Machine};

    /// A config from `text`, or its errors as `postern check` prints them;
    /// the sibling modules' tests read through it too.
    pub(super) fn parse(text: &str) -> Result<Config, String> {
        let machine = Machine {
            hostname: "mx.example.org".to_owned(),
            data_directory: PathBuf::from("/var/lib/postern"),
        };
        Config::parse(Source::named("t.toml", text), machine, false).map_err(|e| e.to_string())
    }

    #[test]
    fn registry_trust_keys() {
        let key = "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
        let c = parse(&format!(
            "[plugins]\ntrusted_keys = [\"{key}\"]\nrequire_signatures = true\n"
        ))
        .unwrap();
        assert_eq!(c.policy.trusted_keys, [key]);
        assert!(c.policy.require_signatures);
        let err =
            parse("[plugins]\ntrusted_keys = [\"rsa:x\"]\nrequire_signatures = 1\n").unwrap_err();
        assert!(
            err.contains("t.toml:2: plugins.trusted_keys: bad key rsa:x")
                && err.contains("t.toml:3: plugins.require_signatures: expected true or false"),
            "{err}"
        );
    }

    #[test]
    fn sections_read_into_settings() {
        let c = parse(
            "[plugins]\nmemory_limit = \"16M\"\ndeadline = \"100ms\"\nmax_failures = 2\n\
             max_use = 50\nmax_idle = \"10s\"\nverdict_cache_size = 4096\n\
             [plugins.slow]\ndeadline = 2\nmax_use = 0\nverdict_cache_size = 0\n\
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
        assert_eq!(p.limits.max_use, 50);
        assert_eq!(p.limits.max_idle, Duration::from_secs(10));
        assert_eq!(slow.max_use, 1, "0 means no reuse, as 1");
        assert_eq!((p.limits.verdict_cache, slow.verdict_cache), (4096, 0));
        assert_eq!(
            p.tables,
            [DeclaredTable {
                spec: TableSpec {
                    name: "access".to_owned(),
                    kind: Kind::Hash,
                    path: PathBuf::from("/var/lib/postern/access"),
                },
                line: 12,
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
    fn bad_reuse_limits_name_line_and_key() {
        let err =
            parse("[plugins]\nmax_use = \"many\"\n[plugins.x]\nmax_idle = \"soon\"\n").unwrap_err();
        assert!(
            err.contains("t.toml:2: plugins.max_use: expected a whole number, found \"many\"")
                && err.contains("t.toml:4: plugins.x.max_idle: "),
            "{err}"
        );
    }

    #[test]
    fn mistakes_name_line_and_key() {
        let err = parse("[plugins]\ncolour = 1\n[tables.t]\npath = \"/x\"\n[dns]\nport = 53\n")
            .unwrap_err();
        assert_eq!(
            err,
            "t.toml:2: plugins.colour: unknown key (expected memory_limit, deadline, \
             concurrent_calls, log_lines, max_use, max_idle, verdict_cache_size, max_failures, \
             trusted_keys, require_signatures, max_plugin_size, [plugins.registries], or a [plugins.NAME] \
             table)\n\
             t.toml:3: tables.t: missing type = \"hash\", \"cidr\" or \"regexp\"\n\
             t.toml:6: dns.port: unknown key (expected nameservers, timeout, budget)"
        );
    }
}
