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

mod registries;

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

    /// Declares a table for every `type:path` argument of a restriction
    /// entry (`"check_sender_access hash:/etc/postfix/access"`), named by
    /// that text, as Postfix opens the maps its restriction lists name:
    /// loaded and reloaded with the `[tables.NAME]` ones, so that a
    /// plugin's `tables.lookup("hash:/etc/postfix/access", key)` works
    /// without a declaration. `pcre:` is read as `regexp:` (the `regex`
    /// crate takes the common PCRE syntax); `texthash:`, `btree:` and
    /// `lmdb:` are read from their source file as `hash:` is.
    pub(super) fn declare_implicit<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a super::Restriction>,
    ) {
        for r in entries {
            let args: Vec<&str> = match &r.item {
                // Every word: a table named alone is an access check too.
                super::RestrictionItem::Line(l) => l.split_whitespace().collect(),
                super::RestrictionItem::Table(t) => t
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "plugin"
                                | "on_error"
                                | "mode"
                                | "deadline"
                                | "memory_limit"
                                | "data_dir"
                        )
                    })
                    .map(|(_, v)| v.as_str())
                    .collect(),
            };
            for arg in args {
                let Some(spec) = implicit_table(arg) else {
                    continue;
                };
                if self.tables.iter().all(|t| t.spec.name != spec.name) {
                    self.tables.push(DeclaredTable { spec, line: r.line });
                }
            }
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
        _ => Err("unknown key (expected memory_limit, deadline, concurrent_calls, log_lines, max_failures, trusted_keys, require_signatures, max_plugin_size, [plugins.registries], or a [plugins.NAME] table)".to_owned()),
    };
    match result {
        Ok(()) => true,
        Err(m) => {
            cx.error(at, path, m);
            false
        }
    }
}

/// The plugins that read access(5) maps.
pub const ACCESS_PLUGINS: &[&str] = &[
    "check_client_a_access",
    "check_client_access",
    "check_client_mx_access",
    "check_client_ns_access",
    "check_helo_a_access",
    "check_helo_access",
    "check_helo_mx_access",
    "check_helo_ns_access",
    "check_recipient_a_access",
    "check_recipient_access",
    "check_recipient_mx_access",
    "check_recipient_ns_access",
    "check_reverse_client_hostname_a_access",
    "check_reverse_client_hostname_access",
    "check_reverse_client_hostname_mx_access",
    "check_reverse_client_hostname_ns_access",
    "check_sasl_access",
    "check_sender_a_access",
    "check_sender_access",
    "check_sender_mx_access",
    "check_sender_ns_access",
];

/// The main.cf parameters the access map plugins read, as arguments for
/// them: those set to something else than Postfix's default (and
/// `recipient_delimiter` when set), so that an entry written as in
/// main.cf shows as written.
pub fn access_map_args(config: &super::Config) -> Vec<(&'static str, String)> {
    [
        "access_map_defer_code",
        "access_map_reject_code",
        "parent_domain_matches_subdomains",
        "recipient_delimiter",
        "smtpd_null_access_lookup_key",
    ]
    .into_iter()
    .filter_map(|name| {
        let value = config.value(name)?;
        (value != config.default_value(name)?).then_some((name, value))
    })
    .collect()
}

/// A table named alone in a list (`"hash:/etc/postfix/access"`) is
/// Postfix's short-hand for the list's own access check: the client list's
/// `check_client_access`, the HELO list's `check_helo_access`, and so on
/// (smtpd_check.c, `def_acl`). Other lines are returned as they are; so is
/// a table in the data lists, which have no such check (the plugin named
/// by the table's text then fails to load, naming it).
pub fn implicit_access(stage: postern_mail::Stage, line: &str) -> std::borrow::Cow<'_, str> {
    use postern_mail::Stage;
    let first = line.split_whitespace().next().unwrap_or_default();
    let check = match stage {
        Stage::Client => "check_client_access",
        Stage::Helo => "check_helo_access",
        Stage::Sender => "check_sender_access",
        Stage::Relay | Stage::Recipient => "check_recipient_access",
        _ => return line.into(),
    };
    if first.contains(':') && implicit_table(first).is_some() {
        format!("{check} {}", line.trim()).into()
    } else {
        line.into()
    }
}

/// Checks every answer of the table an access map plugin's `entry` names
/// ([`postern_tables::access::check_value`]): a restriction the plugin
/// cannot evaluate, nor `classes` name, is refused at load, not met by a
/// client.
pub fn check_access_table(
    tables: &postern_tables::Tables,
    entry: &postern_policy::Entry,
    classes: &[&str],
) -> Result<(), String> {
    if !ACCESS_PLUGINS.contains(&entry.name()) {
        return Ok(());
    }
    let Some((_, name)) = entry.args().iter().find(|(k, _)| k == "1" || k == "table") else {
        return Ok(());
    };
    let mut answers: Vec<(String, &str)> = match tables.get(name) {
        Some(postern_tables::Table::Hash(t)) => t
            .entries()
            .map(|(k, v)| (format!("key {k:?}"), v))
            .collect(),
        Some(postern_tables::Table::Cidr(t)) => t
            .results()
            .enumerate()
            .map(|(i, v)| (format!("result {}", i + 1), v))
            .collect(),
        // Regexp results may be built from `$1`: known only at lookup.
        _ => Vec::new(),
    };
    answers.sort();
    for (what, value) in answers {
        postern_tables::access::check_value_with(value, classes)
            .map_err(|e| format!("table {name}: {what}: {e}"))?;
    }
    Ok(())
}

/// The table an argument such as `hash:/etc/postfix/access` names, if it
/// names one of the types Postern reads.
fn implicit_table(arg: &str) -> Option<TableSpec> {
    let (kind, path) = arg.split_once(':')?;
    let kind = match kind {
        "hash" | "texthash" | "btree" | "lmdb" => Kind::Hash,
        "cidr" => Kind::Cidr,
        "regexp" | "pcre" => Kind::Regexp,
        _ => return None,
    };
    (!path.is_empty()).then(|| TableSpec {
        name: arg.to_owned(),
        kind,
        path: PathBuf::from(path),
    })
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
             concurrent_calls, log_lines, max_failures, trusted_keys, require_signatures, \
             max_plugin_size, [plugins.registries], or a [plugins.NAME] table)\n\
             t.toml:3: tables.t: missing type = \"hash\", \"cidr\" or \"regexp\"\n\
             t.toml:6: dns.port: unknown key (expected nameservers, timeout, budget)"
        );
    }

    #[test]
    fn tables_named_in_lists_are_declared_at_the_entry_line() {
        let c = parse(
            "[tables.access]\ntype = \"hash\"\npath = \"/etc/postern/access\"\n\
             [smtpd.restrictions]\n\
             client = \"permit_mynetworks, check_client_access cidr:/etc/postfix/nets\"\n\
             sender = \"\"\"\n  permit_mynetworks\n  check_sender_access hash:/etc/postfix/access\n  check_recipient_access pcre:/etc/postfix/re\n\"\"\"\n\
             recipient = [\"check_recipient_access hash:/etc/postfix/access\", \
             { plugin = \"check_helo_access\", table = \"regexp:/etc/postfix/helo\" }, \
             \"check_policy_service inet:127.0.0.1:9998\", \"reject_unauth_destination\"]\n",
        )
        .unwrap();
        let got: Vec<(String, &str, usize)> = c
            .policy
            .tables
            .iter()
            .map(|t| (t.spec.name.clone(), t.spec.kind.as_str(), t.line))
            .collect();
        let want = [
            ("access", "hash", 1),
            ("cidr:/etc/postfix/nets", "cidr", 5),
            ("hash:/etc/postfix/access", "hash", 8),
            ("pcre:/etc/postfix/re", "regexp", 9),
            ("regexp:/etc/postfix/helo", "regexp", 11),
        ];
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want: Vec<(String, &str, usize)> = want
            .iter()
            .map(|(n, k, l)| ((*n).to_owned(), *k, *l))
            .collect();
        want.sort();
        assert_eq!(got_sorted, want);
        let re = &c
            .policy
            .tables
            .iter()
            .find(|t| t.spec.name == "pcre:/etc/postfix/re");
        assert_eq!(
            re.map(|t| t.spec.path.clone()),
            Some(PathBuf::from("/etc/postfix/re"))
        );
        // Each entry of a multi-line string sits on its own line.
        let sender: Vec<usize> = c.restrictions[&postern_mail::Stage::Sender]
            .iter()
            .map(|r| r.line)
            .collect();
        assert_eq!(sender, [7, 8, 9]);
    }

    #[test]
    fn a_table_alone_is_the_lists_own_access_check() {
        use postern_mail::Stage;
        assert_eq!(
            implicit_access(Stage::Sender, "hash:/etc/postfix/access"),
            "check_sender_access hash:/etc/postfix/access"
        );
        assert_eq!(
            implicit_access(Stage::Relay, "cidr:/x"),
            "check_recipient_access cidr:/x"
        );
        assert_eq!(
            implicit_access(Stage::Client, "permit_mynetworks"),
            "permit_mynetworks"
        );
        assert_eq!(implicit_access(Stage::Data, "hash:/x"), "hash:/x");
    }

    #[test]
    fn nameservers() {
        assert_eq!(nameserver("127.0.0.1"), Ok("127.0.0.1:53".parse().unwrap()));
        assert!(nameserver("localhost:53").is_err());
    }
}
