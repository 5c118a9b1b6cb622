//! The restriction lists and `[tables.NAME]` as the policy config the
//! runtime loads: apart from [`super::Parts`] because a reload, a service
//! with lists of its own and `postern plugin` build it too, and because
//! each entry is checked here where its config line is known.

use std::path::Path;
use std::sync::Arc;

use anyhow::bail;
use postern_mail::Stage;
use postern_policy::{Entry, PolicyConfig};

use crate::config::{Config, RestrictionItem};

/// The restriction lists as policy entries; errors name the config line.
pub fn policy_config(config: &Config) -> anyhow::Result<PolicyConfig> {
    policy_config_for(config, &config.restrictions)
}

/// [`policy_config`] with `lists` for the restriction lists: those of a
/// `[[service]]` that overrides some.
pub fn policy_config_for(
    config: &Config,
    lists: &std::collections::BTreeMap<Stage, Vec<crate::config::Restriction>>,
) -> anyhow::Result<PolicyConfig> {
    let mut policy = PolicyConfig::default();
    let access_args = crate::config::policy::access_map_args(config);
    let tables = load_tables(config)?;
    let classes: Vec<&str> = config
        .restriction_classes
        .keys()
        .map(String::as_str)
        .collect();
    let cx = EntryContext {
        config,
        tables: &tables,
        access_args: &access_args,
        classes: &classes,
    };
    for stage in Stage::ALL {
        let list = lists.get(&stage).map(Vec::as_slice).unwrap_or_default();
        let mut entries = Vec::with_capacity(list.len());
        for r in list {
            let key = format!("smtpd.restrictions.{stage}");
            entries.push(cx.entry(&key, Some(stage), r)?);
        }
        policy.restrictions.insert(stage, entries);
    }
    // Restriction classes: a table alone is no access check there (the
    // class has no list of its own to take it from).
    for (name, list) in &config.restriction_classes {
        let mut entries = Vec::with_capacity(list.len());
        for r in list {
            entries.push(cx.entry(&format!("restriction class {name}"), None, r)?);
        }
        policy.classes.insert(name.clone(), entries);
    }
    policy.plugin_dir = config.main.plugin_directory.clone();
    let settings = &config.policy;
    policy.limits = settings.limits;
    policy.plugin_limits = settings.plugin_limits.clone();
    policy.max_failures = settings.max_failures;
    policy.dns = settings.dns.clone();
    policy.tables = Arc::new(tables);
    Ok(policy)
}

/// What turning a config entry into a policy entry needs.
struct EntryContext<'a> {
    config: &'a Config,
    tables: &'a postern_tables::Tables,
    /// The main.cf settings the access map plugins read.
    access_args: &'a [(&'static str, String)],
    /// The restriction classes' names, which access maps may answer.
    classes: &'a [&'a str],
}

impl EntryContext<'_> {
    /// The policy entry of `r`, written under `key` (the list of `stage`,
    /// or a class); errors name the config line.
    fn entry(
        &self,
        key: &str,
        stage: Option<Stage>,
        r: &crate::config::Restriction,
    ) -> anyhow::Result<Entry> {
        let (config, line) = (self.config, r.line);
        // `{ plugin = "oci://..." }`: the installed plugin plugins.lock
        // names, from local files only (start-up works offline).
        let item = crate::registry_cli::resolve(config, &r.item)
            .map_err(|e| anyhow::anyhow!("{}:{line}: {key}: {e:#}", config.source.file))?;
        let entry = match (&item, stage) {
            (RestrictionItem::Line(l), Some(stage)) => {
                Entry::from_line(&crate::config::policy::implicit_access(stage, l))
            }
            (RestrictionItem::Line(l), None) => Entry::from_line(l),
            (RestrictionItem::Table(t), _) => Entry::from_table(t.clone()),
        };
        let mut e =
            entry.map_err(|e| anyhow::anyhow!("{}:{line}: {key}: {e}", config.source.file))?;
        // The access map plugins get the main.cf settings they read.
        if crate::config::policy::ACCESS_PLUGINS.contains(&e.name()) {
            for (k, v) in self.access_args {
                e = e.with_default_arg(k, v);
            }
        }
        // A data_dir is checked here too, where the line is known.
        if let Some(Err(why)) = e.data_dir().map(std::fs::read_dir) {
            bail!(
                "{}:{line}: {key}: entry {e}: data_dir {}: {why}",
                config.source.file,
                e.data_dir()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            );
        }
        if let Err(why) = crate::config::policy::check_access_table(self.tables, &e, self.classes) {
            bail!("{}:{line}: {key}: entry {e}: {why}", config.source.file);
        }
        Ok(e)
    }
}

/// Reads every `[tables.NAME]` source; an error names the config line and
/// the table file's `file:line`.
pub fn load_tables(config: &Config) -> anyhow::Result<postern_tables::Tables> {
    let specs: Vec<_> = config
        .policy
        .tables
        .iter()
        .map(|t| t.spec.clone())
        .collect();
    load_table_set(&specs).map_err(|e| {
        let line = config
            .policy
            .tables
            .iter()
            .find(|t| t.spec.name == e.name)
            .map_or(0, |t| t.line);
        // A table named in a restriction list (`hash:/path`) rather than
        // declared under [tables]: the line is the entry's.
        let key = if e.name.contains(':') {
            format!("table {}", e.name)
        } else {
            format!("tables.{}", e.name)
        };
        anyhow::anyhow!("{}:{line}: {key}: {}", config.source.file, e.source)
    })
}

/// [`postern_tables::Tables::load`], but a table only root may read is
/// read by the root helper once the daemon runs as `mail_owner` (a
/// reload; [`crate::privilege_files`]).
fn load_table_set(
    specs: &[postern_tables::TableSpec],
) -> Result<postern_tables::Tables, postern_tables::LoadError> {
    let mut tables = postern_tables::Tables::default();
    for spec in specs {
        let table =
            load_table(spec.kind, &spec.path).map_err(|source| postern_tables::LoadError {
                name: spec.name.clone(),
                source,
            })?;
        tables.insert(spec.name.clone(), table);
    }
    Ok(tables)
}

/// [`postern_tables::Table::load`], but a table only root may read is
/// read by the root helper once the daemon runs as `mail_owner`.
pub(crate) fn load_table(
    kind: postern_tables::Kind,
    path: &Path,
) -> Result<postern_tables::Table, postern_tables::Error> {
    match postern_tables::Table::load(kind, path) {
        Err(postern_tables::Error::Read { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            table_through_helper(kind, path)
        }
        other => other,
    }
}

/// The table of `kind` at `path`, its file read with the helper's help.
fn table_through_helper(
    kind: postern_tables::Kind,
    path: &Path,
) -> Result<postern_tables::Table, postern_tables::Error> {
    use postern_tables::{CidrTable, Error, HashTable, Kind, RegexpTable, Table};
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = postern_privsep::read_file_or_ask(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })?;
    match kind {
        Kind::Hash => HashTable::parse(path, &text).map(Table::Hash),
        Kind::Cidr => CidrTable::parse(path, &text).map(Table::Cidr),
        Kind::Regexp => RegexpTable::parse(path, &text).map(Table::Regexp),
        _ => Table::load(kind, path),
    }
}
