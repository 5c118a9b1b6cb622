//! `[plugins] max_plugin_size` and `[plugins.registries."HOST[:PORT]"]`:
//! how `postern plugin install|update|publish|sign` reach registries.
//!
//! ```toml
//! [plugins]
//! max_plugin_size = "64M"            # the largest component an install takes
//!
//! [plugins.registries."registry.example:5000"]
//! username = "postern"
//! password_file = "/etc/postern/registry.password"   # first line
//! timeout = "5m"                     # one whole pull or push
//! ```
//!
//! A password is never written in the config itself nor given on the
//! command line: it sits in a file only its owner reads. A host without
//! a table here falls back to the `docker login` / `podman login` auth
//! files (postern_registry::access).

use std::path::PathBuf;

use postern_registry::access::RegistryConfig;
use toml::Spanned;
use toml::de::DeValue;

use super::{Ctx, PolicySettings, duration};

impl PolicySettings {
    /// `max_plugin_size = "64M"`.
    pub(super) fn read_max_plugin_size(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        path: &str,
        cx: &mut Ctx<'_>,
    ) {
        match cx.scalar(path, v).map(|s| plugin_size(&s)) {
            Some(Ok(n)) => self.registry_access.max_plugin_size = n,
            Some(Err(m)) => cx.error(v.span().start, path, m),
            None => {}
        }
    }

    /// `[plugins.registries."HOST[:PORT]"]` tables.
    pub(super) fn read_registries(&mut self, v: &Spanned<DeValue<'_>>, cx: &mut Ctx<'_>) {
        let Some(hosts) = cx.table("plugins.registries", v) else {
            return;
        };
        for (host, v) in hosts.iter() {
            let name = host.get_ref().as_ref();
            let prefix = format!("plugins.registries.\"{name}\"");
            if name.is_empty() || name.contains(['/', ' ']) {
                cx.error(
                    host.span().start,
                    &prefix,
                    "expected a registry HOST or HOST:PORT",
                );
                continue;
            }
            let Some(t) = cx.table(&prefix, v) else {
                continue;
            };
            let mut r = RegistryConfig::default();
            for (key, v) in t.iter() {
                let k = key.get_ref().as_ref();
                let path = format!("{prefix}.{k}");
                let Some(s) = cx.scalar(&path, v) else {
                    continue;
                };
                match k {
                    "username" => r.username = Some(s),
                    "password_file" => r.password_file = Some(PathBuf::from(s)),
                    "timeout" => match duration(&s) {
                        Ok(d) if !d.is_zero() => r.timeout = Some(d),
                        Ok(_) => cx.error(v.span().start, &path, "must be more than 0"),
                        Err(m) => cx.error(v.span().start, &path, m),
                    },
                    "password" => cx.error(
                        key.span().start,
                        &path,
                        "a password is not written in the config: put it in a file \
                         only postern's user reads and name it with password_file",
                    ),
                    _ => cx.error(
                        key.span().start,
                        &path,
                        "unknown key (expected username, password_file, timeout)",
                    ),
                }
            }
            if r.username.is_some() != r.password_file.is_some() {
                cx.error(
                    host.span().start,
                    &prefix,
                    "username and password_file go together",
                );
            }
            self.registry_access.registries.insert(name.to_owned(), r);
        }
    }
}

/// A size as `memory_limit` writes it (`64M`, `512k`, bytes), from one
/// byte up to the largest component the registry crate handles.
fn plugin_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(i);
    let scale: usize = match unit.trim() {
        "" => 1,
        "k" | "K" | "KiB" | "kB" => 1 << 10,
        "M" | "MiB" | "MB" => 1 << 20,
        "G" | "GiB" | "GB" => 1 << 30,
        _ => return Err(format!("expected a size such as 64M, found {s:?}")),
    };
    let max = postern_registry::artifact::MAX_COMPONENT;
    match digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
    {
        Some(0) => Err("must be more than 0".to_owned()),
        Some(n) if n <= max => Ok(n),
        Some(_) => Err(format!("at most {}M", max >> 20)),
        None => Err(format!("expected a size such as 64M, found {s:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::config::error::Source;
    use crate::config::{Config, Machine};

    fn parse(text: &str) -> Result<Config, String> {
        let machine = Machine {
            hostname: "mx.example.org".to_owned(),
            data_directory: PathBuf::from("/var/lib/postern"),
        };
        Config::parse(Source::named("t.toml", text), machine, false).map_err(|e| e.to_string())
    }

    #[test]
    fn registries_and_the_size_bound() {
        let c = parse(
            "[plugins]\nmax_plugin_size = \"8M\"\n\
             [plugins.registries.\"reg.example:5000\"]\nusername = \"u\"\n\
             password_file = \"/etc/postern/pw\"\ntimeout = \"30s\"\n",
        )
        .unwrap();
        let a = &c.policy.registry_access;
        assert_eq!(a.max_plugin_size, 8 << 20);
        let r = &a.registries["reg.example:5000"];
        assert_eq!(r.username.as_deref(), Some("u"));
        assert_eq!(r.password_file, Some(PathBuf::from("/etc/postern/pw")));
        assert_eq!(r.timeout, Some(Duration::from_secs(30)));
        // Not a plugin named "registries".
        assert!(c.policy.plugin_limits.is_empty());
    }

    #[test]
    fn registry_mistakes_name_line_and_key() {
        let err = parse(
            "[plugins]\nmax_plugin_size = \"lots\"\n\
             [plugins.registries.\"r:1\"]\nusername = \"u\"\npassword = \"hunter2\"\n\
             [plugins.registries.\"a/b\"]\n",
        )
        .unwrap_err();
        assert!(err.contains("t.toml:2: plugins.max_plugin_size"), "{err}");
        assert!(
            err.contains(
                "t.toml:5: plugins.registries.\"r:1\".password: a password is not written"
            ),
            "{err}"
        );
        assert!(
            err.contains("username and password_file go together"),
            "{err}"
        );
        assert!(err.contains("expected a registry HOST"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
