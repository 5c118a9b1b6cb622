//! The configuration: one TOML file with Postfix's parameter names.
//!
//! Top-level keys are main.cf parameters ([`params::PARAMS`]); `[[service]]`
//! entries are master.cf lines; `[auth]`, `[smtpd.restrictions]` hold what
//! Postfix spreads over other files and parameters. Values are `$name`
//! expanded ([`expand`]). Every problem is reported as
//! `file:line: key: what is wrong`, all of them at once.
//!
//! # Layout
//! - [`params`]: the parameter table with defaults and kinds.
//! - [`expand`]: `$name` expansion.
//! - [`value`]: reading expanded strings into kinds.
//! - [`sections`]: `[[service]]`, `[auth]`, `[smtpd.restrictions]`.
//! - [`classes`]: restriction classes (`smtpd_restriction_classes`).
//! - [`socket`]: a service's UNIX socket (`listen = "unix:/path"`).
//! - [`policy`]: `[plugins]`, `[tables.NAME]`, `[dns]`.
//! - [`main_cf`]: the typed parameter values the server runs on.
//! - [`master_cf`]: the services as `postern config -M` and `-P` list them.
//! - [`smtp_client`]: the outbound SMTP client's parameters.
//! - [`machine`]: [`Machine`], the defaults that depend on the machine
//!   and on who reads the config.
//! - [`error`]: errors that name the place.

pub mod classes;
pub mod error;
pub mod expand;
pub mod machine;
pub mod main_cf;
pub mod master_cf;
pub mod params;
pub mod policy;
pub mod sections;
pub mod smtp_client;
pub mod socket;
pub mod toml_value;
pub mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use postern_mail::Stage;
use toml::de::DeTable;

pub use error::{ConfigError, ConfigErrors, Source};
pub use machine::Machine;
pub use main_cf::Main;
pub use sections::{Restriction, RestrictionItem, Service};
pub use socket::UnixListen;
use toml_value::Raw;

/// Where the configuration is read from when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/postern/postern.toml";

/// The configuration Postern runs on when there is no config file: loopback
/// only, unprivileged ports, the standard restriction chain.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../../examples/postern.toml");

/// The name errors give the embedded default.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (or the embedded default's name and text).
    pub source: Source,
    /// Whether this is the embedded default.
    pub embedded: bool,
    /// Parameters the file sets, unexpanded, with their positions.
    set: BTreeMap<&'static str, Raw>,
    /// The machine-dependent defaults in force.
    machine: Machine,
    /// The typed main.cf parameters.
    pub main: Main,
    /// Listeners.
    pub services: Vec<Service>,
    /// `[auth] users_file`.
    pub users_file: Option<PathBuf>,
    /// `[auth] system_accounts`: the system's accounts log in to POP3,
    /// IMAP and SMTP AUTH with their own passwords.
    pub system_accounts: bool,
    /// `[metrics] listen`: where the Prometheus endpoint answers (none by
    /// default).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The restriction lists, every stage present (empty = permit).
    pub restrictions: BTreeMap<Stage, Vec<Restriction>>,
    /// Lists the file set (for `postern config -n`).
    restrictions_set: Vec<Stage>,
    /// Restriction classes (`smtpd_restriction_classes`), by name.
    pub restriction_classes: BTreeMap<String, Vec<Restriction>>,
    /// `[plugins]`, `[tables.NAME]` and `[dns]`.
    pub policy: policy::PolicySettings,
}

impl Config {
    /// Reads and checks `path`, for a command run against a mail server
    /// ([`Machine::detect`]).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_on(path, Machine::detect())
    }

    /// Reads and checks `path` with `machine`'s defaults.
    pub fn load_on(path: &Path, machine: Machine) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.display().to_string(),
                line: 0,
                key: String::new(),
                message: format!("cannot read config file: {e}"),
            }])
        })?;
        Config::parse(Source::new(path, &text), machine, false)
    }

    /// The embedded default, for a command run against a mail server
    /// ([`Machine::detect`]).
    pub fn embedded() -> Result<Config, ConfigErrors> {
        Config::embedded_on(Machine::detect())
    }

    /// The embedded default with `machine`'s defaults.
    pub fn embedded_on(machine: Machine) -> Result<Config, ConfigErrors> {
        Config::parse(
            Source::named(EMBEDDED_NAME, EMBEDDED_DEFAULT),
            machine,
            true,
        )
    }

    /// The machine-dependent defaults this config was read with.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Parses and checks a config text.
    pub fn parse(source: Source, machine: Machine, embedded: bool) -> Result<Config, ConfigErrors> {
        let text = source.text().to_owned();
        let doc = DeTable::parse(&text).map_err(|e| {
            let offset = e.span().map(|s| s.start);
            ConfigErrors(vec![source.error(
                offset,
                "",
                format!("TOML syntax: {}", e.message()),
            )])
        })?;
        let mut errors = Vec::new();
        let mut set = BTreeMap::new();
        let mut sections = sections::Sections::default();
        let mut policy_sections = Vec::new();
        // Keys that are no parameter: restriction classes if
        // smtpd_restriction_classes names them, wherever it is written.
        let mut unknown = Vec::new();
        for (key, value) in doc.get_ref().iter() {
            let name = key.get_ref().as_ref();
            let at = Some(key.span().start);
            if let Some(param) = params::find(name) {
                match toml_value::scalar(value) {
                    Ok(raw) => {
                        set.insert(param.name, raw);
                    }
                    Err(msg) => errors.push(source.error(at, name, msg)),
                }
            } else if sections::is_section(name) {
                sections.read(name, value, &source, &mut errors);
            } else if policy::SECTIONS.contains(&name) {
                policy_sections.push((name, value));
            } else if params::LATER.contains(&name) {
                errors.push(source.error(
                    at,
                    name,
                    "this Postfix parameter is not supported by this version of Postern yet",
                ));
            } else {
                unknown.push((name, value, at));
            }
        }
        let classes: Vec<&str> = set
            .get(classes::PARAM)
            .map(|raw| classes::listed(&raw.value).collect())
            .unwrap_or_default();
        for (name, value, at) in unknown {
            if classes.contains(&name) {
                sections.classes.read_top(name, value, &source, &mut errors);
            } else {
                errors.push(source.error(at, name, "unknown parameter"));
            }
        }
        let lookup_set = set.clone();
        let machine2 = machine.clone();
        let lookup = move |name: &str| raw_value(&lookup_set, &machine2, name);
        let main = Main::read(&lookup, &set, &source, &mut errors);
        let ctx = sections::Context {
            source: &source,
            lookup: &lookup,
            set: &set,
        };
        let resolved = sections.resolve(&ctx, &main, &mut errors);
        let mut policy = policy::PolicySettings::default();
        for (name, value) in policy_sections {
            policy.read(name, value, &source, &lookup, &mut errors);
        }
        // Tables named in restriction lists (`check_*_access hash:/path`),
        // the global lists and every service's own.
        policy.declare_implicit(
            resolved
                .restrictions
                .values()
                .chain(
                    resolved
                        .services
                        .iter()
                        .flat_map(|s| s.restrictions.iter().flat_map(|l| l.values())),
                )
                .chain(resolved.classes.values())
                .flatten(),
        );
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            source,
            embedded,
            set,
            machine,
            main,
            services: resolved.services,
            users_file: resolved.users_file,
            system_accounts: resolved.system_accounts,
            metrics_listen: resolved.metrics_listen,
            restrictions: resolved.restrictions,
            restrictions_set: resolved.restrictions_set,
            restriction_classes: resolved.classes,
            policy,
        })
    }

    /// The expanded value of parameter `name`, or `None` if there is none.
    pub fn value(&self, name: &str) -> Option<String> {
        params::find(name)?;
        let lookup = |n: &str| raw_value(&self.set, &self.machine, n);
        if params::DELIVERY_TIME.contains(&name) {
            return lookup(name);
        }
        expand::expand(&lookup(name)?, &lookup).ok()
    }

    /// The expanded default of parameter `name` on this machine.
    pub fn default_value(&self, name: &str) -> Option<String> {
        params::find(name)?;
        let none = BTreeMap::new();
        let lookup = |n: &str| raw_value(&none, &self.machine, n);
        if params::DELIVERY_TIME.contains(&name) {
            return lookup(name);
        }
        expand::expand(&lookup(name)?, &lookup).ok()
    }

    /// `name = value` lines for the parameters the file sets to something
    /// else than their default text (`postern config -n`), expanded.
    pub fn non_default(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .set
            .iter()
            .filter(|(name, raw)| {
                // Set to the default text itself (as the embedded default
                // file does for clarity) is not a change.
                params::find(name).is_some_and(|p| p.default != raw.value)
            })
            .filter_map(|(name, _)| Some(((*name).to_owned(), self.value(name)?)))
            .collect();
        for stage in &self.restrictions_set {
            let list = self
                .restrictions
                .get(stage)
                .map(|l| sections::describe(l))
                .unwrap_or_default();
            if list != sections::describe(&sections::default_list(*stage)) {
                out.push((format!("smtpd.restrictions.{stage}"), list));
            }
        }
        out
    }

    /// `name = value` for every parameter's default (`postern config -d`).
    pub fn defaults(&self) -> Vec<(String, String)> {
        params::PARAMS
            .iter()
            .map(|p| {
                (
                    p.name.to_owned(),
                    self.default_value(p.name).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// `name = value` for every parameter in force (`postern config`).
    pub fn all(&self) -> Vec<(String, String)> {
        params::PARAMS
            .iter()
            .map(|p| (p.name.to_owned(), self.value(p.name).unwrap_or_default()))
            .collect()
    }
}

/// The raw (unexpanded) value of `name`: as set, else its default.
fn raw_value(set: &BTreeMap<&'static str, Raw>, machine: &Machine, name: &str) -> Option<String> {
    let param = params::find(name)?;
    if let Some(raw) = set.get(param.name) {
        return Some(raw.value.clone());
    }
    if param.default != params::COMPUTED {
        return Some(param.default.to_owned());
    }
    Some(match param.name {
        "myhostname" => machine.hostname.clone(),
        // Postfix's default: `$myhostname` minus its first label, the
        // configured host name's, not the machine's.
        "mydomain" => {
            let host = match set.get("myhostname") {
                Some(raw) if !raw.value.contains('$') => raw.value.as_str(),
                _ => machine.hostname.as_str(),
            };
            match host.split_once('.') {
                Some((_, rest)) if !rest.is_empty() => rest.to_owned(),
                _ => "localdomain".to_owned(),
            }
        }
        "data_directory" => machine.data_directory.display().to_string(),
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests;
