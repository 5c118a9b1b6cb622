//! The daemon's reloadable state ([`Live`]) and the reload itself: what
//! `reload` on the control socket and SIGHUP both run. Apart from the
//! socket because it is the daemon's state, not the protocol that asks
//! for it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use postern_auth::Authenticator;
use postern_delivery::LocalDelivery;
use postern_policy::Runtime;
use postern_smtp::TlsConfig;

use super::LiveStats;
use crate::config::{Config, Machine};
use crate::services::SmtpPolicies;

/// What a reload swaps, and how to rebuild it: the daemon's reloadable
/// state, shared by the control socket and the SIGHUP handler.
pub struct Live {
    /// The engine and compile caches, kept across reloads.
    pub runtime: Arc<Runtime>,
    /// The restriction lists every SMTP service evaluates: the main ones
    /// and the services' own, swapped together.
    pub policies: Arc<SmtpPolicies>,
    /// Where the config comes from, as the daemon started.
    pub origin: Origin,
    /// The certificate every TLS service presents.
    pub tls: Arc<TlsConfig>,
    /// The local delivery agent, for its aliases and users; the SMTP
    /// server's recipient checks ask it too.
    pub delivery: Arc<LocalDelivery>,
    /// What every login (SMTP AUTH, POP3, IMAP) is checked against.
    pub auth: Arc<Authenticator>,
    /// What `postern status` reports.
    pub facts: Arc<crate::status::Facts>,
    /// One reload at a time: two would race to swap.
    reloading: Mutex<()>,
}

/// Where a reload reads the config from, and the defaults it reads it
/// with: those of the daemon's start.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The config file given at start (`None`: the default path, else the
    /// embedded default).
    pub path: Option<PathBuf>,
    /// `data_directory`'s default at start. It depends on who asks (root's
    /// `/var/lib/postern`, anyone else's own data directory), and a reload
    /// runs as `mail_owner`: detected again, it would be that user's
    /// directory, and a config that leaves `data_directory` unset would
    /// see every path under it move.
    pub data_directory: PathBuf,
}

impl Origin {
    /// The origin of a daemon started with config `path`, read as `config`.
    pub fn new(path: Option<PathBuf>, config: &Config) -> Origin {
        Origin {
            path,
            data_directory: config.machine().data_directory.clone(),
        }
    }
}

impl Origin {
    /// Reads the config again: with the start's data directory, and the
    /// host name as it is now.
    pub fn load(&self) -> Result<Config, crate::config::ConfigErrors> {
        let machine = Machine {
            data_directory: self.data_directory.clone(),
            ..Machine::detect()
        };
        match self.path.as_deref() {
            Some(p) => load_config(p, machine),
            None if Path::new(crate::config::DEFAULT_PATH).exists() => {
                load_config(Path::new(crate::config::DEFAULT_PATH), machine)
            }
            None => Config::embedded_on(machine),
        }
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// The reloadable state of a daemon started from `origin`.
    pub fn new(
        runtime: Arc<Runtime>,
        policies: Arc<SmtpPolicies>,
        origin: Origin,
        tls: Arc<TlsConfig>,
        delivery: Arc<LocalDelivery>,
        auth: Arc<Authenticator>,
        facts: Arc<crate::status::Facts>,
    ) -> Live {
        Live {
            runtime,
            policies,
            origin,
            tls,
            delivery,
            auth,
            facts,
            reloading: Mutex::new(()),
        }
    }

    /// Re-reads the config and everything it names (tables, plugins, the
    /// restriction lists of the main config and of every SMTP service,
    /// aliases, the TLS certificate, the users file), and swaps them in
    /// only if every one of them loads: on any error nothing changes and
    /// the error says why, naming file and line where there is one. Blocks
    /// while plugins compile; call it off the async workers.
    ///
    /// The users file swapped is the one logins (SMTP AUTH, POP3, IMAP),
    /// local delivery, and the SMTP server's domain classes and recipient
    /// checks all read: a user added is accepted at RCPT and delivered to
    /// from the next transaction on, a user removed is refused 5.1.1.
    ///
    /// Started as root, the daemon runs as `mail_owner`: files only root
    /// may read (the config, a TLS key, the users file, aliases, tables)
    /// are read by the root helper, and the helper refreshes its policy
    /// from the reloaded config ([`crate::privilege_files`]).
    ///
    /// systemd hears `RELOADING=1` before and `READY=1` after
    /// ([`crate::notify`]); `postern status` shows the outcome.
    pub fn reload(&self) -> anyhow::Result<()> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        crate::notify::reloading();
        let result = self.swap();
        match &result {
            Ok(set) => {
                self.facts.reloaded(Ok(set.clone()));
                crate::notify::reloaded("serving; last reload ok");
            }
            Err(e) => {
                self.facts.reloaded(Err(format!("{e:#}")));
                crate::notify::reloaded("serving; last reload failed, running set kept");
            }
        }
        result.map(drop)
    }

    /// The body of [`Live::reload`]: loads everything, swaps it in, and
    /// says which plugin set now runs.
    fn swap(&self) -> anyhow::Result<crate::status::PluginSet> {
        let config = self.origin.load().map_err(|errors| {
            let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{}", lines.join("\n"))
        })?;
        let policy_config = crate::daemon::policy_config(&config)?;
        let main = self.runtime.load(&policy_config)?;
        let plugin_set = crate::status::plugin_set(&self.runtime, &policy_config)?;
        let policies = self.policies.prepare(&config, &self.runtime, main)?;
        // The aliases and certificate keep their own log lines, in their
        // own log targets, beside the summary the caller logs.
        let aliases = crate::daemon::load_aliases(&config).inspect_err(|e| {
            tracing::warn!(target: "postern/local", "reload failed, keeping the running aliases: {e:#}");
        })?;
        let users = Arc::new(crate::daemon::load_users(&config)?);
        // Only checked here; `tls::reload` reads the files again to swap.
        crate::tls::load(&config).inspect_err(|e| {
            tracing::warn!(target: "postern/master", "TLS reload failed, keeping the running certificate: {e:#}");
        })?;

        self.policies.swap(policies);
        crate::tls::reload(&self.tls, &config);
        tracing::info!(target: "postern/local", "reload: {} aliases", aliases.len());
        self.delivery.replace_aliases(Arc::new(aliases));
        tracing::info!(target: "postern/local", "reload: {} users", users.len());
        self.auth.replace_users(Arc::clone(&users));
        self.delivery.replace_users(users);
        tracing::info!(target: "postern/master", "reload -- version {}", env!("CARGO_PKG_VERSION"));
        // The root helper's uids, homes and mail roots follow the config
        // (a users-file user added with a uid gets mail), read by the
        // helper itself from the root-owned file.
        crate::privilege_files::refresh_helper();
        Ok(plugin_set)
    }

    /// [`Live::reload`] from the SIGHUP handler: a failure is logged.
    pub fn reload_and_log(&self) {
        if let Err(e) = self.reload() {
            tracing::warn!(target: "postern/master", "reload failed, keeping the running policy: {e:#}");
        }
    }

    /// The `plugins` answer: one line per plugin of the running snapshot.
    pub(super) fn plugins(&self) -> String {
        self.policies
            .main()
            .stats()
            .iter()
            .map(|s| {
                let line = LiveStats {
                    name: s.name.clone(),
                    calls: s.calls,
                    failures: s.failures,
                    verdicts: s
                        .verdicts
                        .iter()
                        .map(|(k, n)| ((*k).to_owned(), *n))
                        .collect(),
                    p50: s.p50,
                    p99: s.p99,
                };
                format!("{line}\n")
            })
            .collect()
    }
}

/// [`Config::load`], but a config file only root may read is read by the
/// root helper once the daemon runs as `mail_owner`
/// ([`crate::privilege_files`]).
fn load_config(path: &Path, machine: Machine) -> Result<Config, crate::config::ConfigErrors> {
    let text = postern_privsep::read_file_or_ask(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned()))
        .map_err(|why| {
            crate::config::ConfigErrors(vec![crate::config::ConfigError {
                file: path.display().to_string(),
                line: 0,
                key: String::new(),
                message: format!("cannot read config file: {why}"),
            }])
        })?;
    Config::parse(crate::config::Source::new(path, &text), machine, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daemon started as root runs as `mail_owner` when it reloads:
    /// the reload keeps the data directory of the start instead of the one
    /// `mail_owner` would be given (its own, under `$HOME`), so that a
    /// config leaving `data_directory` unset keeps every path under it.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_reload_keeps_the_data_directory_of_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("postern.toml");
        std::fs::write(&file, "myhostname = \"mx.example.org\"\n").unwrap();
        let started = Machine {
            hostname: "mx.example.org".to_owned(),
            data_directory: PathBuf::from("/srv/mail-data"),
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let config =
            Config::parse(crate::config::Source::new(&file, &text), started, false).unwrap();
        assert_eq!(
            config.main.queue_directory,
            Path::new("/srv/mail-data/queue")
        );
        let origin = Origin::new(Some(file), &config);
        let reloaded = origin.load().unwrap();
        assert_eq!(
            reloaded.main.queue_directory,
            Path::new("/srv/mail-data/queue")
        );
        assert_eq!(
            reloaded.value("data_directory").as_deref(),
            Some("/srv/mail-data")
        );
        // The embedded default too.
        let origin = Origin {
            path: None,
            ..origin
        };
        if !Path::new(crate::config::DEFAULT_PATH).exists() {
            let embedded = origin.load().unwrap();
            assert_eq!(
                embedded.main.queue_directory,
                Path::new("/srv/mail-data/queue")
            );
        }
    }
}
