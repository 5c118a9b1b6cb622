//! The config a daemon runs on: where a reload reads it again, with which
//! machine defaults, and which of its changes a reload cannot apply.
//!
//! Postfix's `postfix reload` restarts its daemons, so every main.cf change
//! takes effect. A reload here swaps what is built to be swapped (the
//! restriction lists and plugins, tables, aliases, the users file, the
//! TLS certificate, the services' settings and limits;
//! [`super::Live::reload`]); the rest is made once at
//! start. A changed parameter of that rest is named at the reload (in the
//! log and in `postern reload`'s output) as taking effect at the next
//! start, rather than silently left as it was.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::params::PARAMS;
use crate::config::{Config, ConfigErrors, Machine};

/// The main.cf parameters a reload applies: those the policy config, the
/// aliases, the TLS certificate, the SMTP services' settings and networks
/// ([`crate::services::ServiceState`]) and the routes of delivery
/// ([`crate::remote::Routes`]), the LMTP, IMAP and pickup services'
/// limits ([`crate::services::ServiceLimits`]), the queue's timers
/// ([`postern_queue::Queue::reload_settings`]), the local delivery
/// agent's rules ([`postern_delivery::LocalDelivery::reload_settings`])
/// and the privileged helper's policy are built from, and nothing else. The restriction
/// lists, `[tables.NAME]`, `[plugins]` and the users file are not main.cf
/// parameters.
const RELOADED: &[&str] = &[
    "access_map_defer_code",
    "access_map_reject_code",
    "alias_maps",
    "allow_mail_to_commands",
    "allow_mail_to_files",
    "auth_failure_delay",
    "auth_failure_limit",
    "bounce_queue_lifetime",
    "command_time_limit",
    "default_destination_recipient_limit",
    "delay_warning_time",
    "disable_vrfy_command",
    "forward_path",
    "header_size_limit",
    "line_length_limit",
    "mailbox_command",
    "maximal_backoff_time",
    "maximal_queue_lifetime",
    "message_size_limit",
    "minimal_backoff_time",
    "mydestination",
    "mynetworks",
    "parent_domain_matches_subdomains",
    "plugin_directory",
    "pop_before_smtp_timeout",
    "queue_minfree",
    "queue_run_delay",
    "recipient_delimiter",
    "relay_domains",
    "relayhost",
    "smtp_connect_timeout",
    "smtp_connection_cache_time_limit",
    "smtp_connection_reuse_count_limit",
    "smtp_connection_reuse_time_limit",
    "smtp_data_done_timeout",
    "smtp_data_init_timeout",
    "smtp_data_xfer_timeout",
    "smtp_helo_name",
    "smtp_helo_timeout",
    "smtp_mail_timeout",
    "smtp_quit_timeout",
    "smtp_rcpt_timeout",
    "smtp_rset_timeout",
    "smtp_sasl_auth_enable",
    "smtp_sasl_password_maps",
    "smtp_starttls_timeout",
    "smtp_tcp_port",
    "smtp_tls_CAfile",
    "smtp_tls_security_level",
    "smtpd_banner",
    "smtpd_client_connection_count_limit",
    "smtpd_client_connection_rate_limit",
    "smtpd_client_event_limit_exceptions",
    "smtpd_client_message_rate_limit",
    "smtpd_delay_reject",
    "smtpd_error_sleep_time",
    "smtpd_forbid_bare_newline",
    "smtpd_hard_error_limit",
    "smtpd_helo_required",
    "smtpd_null_access_lookup_key",
    "smtpd_recipient_limit",
    "smtpd_restriction_classes",
    "smtpd_sasl_auth_enable",
    "smtpd_sasl_authenticated_header",
    "smtpd_soft_error_limit",
    "smtpd_timeout",
    "smtpd_tls_auth_only",
    "smtpd_tls_cert_file",
    "smtpd_tls_key_file",
    "smtpd_tls_security_level",
    "transport_maps",
    "virtual_mailbox_domains",
];

/// The config in force, and how to read it again.
#[derive(Debug)]
pub struct Running {
    /// The config file given at start (`None`: the default path, else the
    /// embedded default).
    path: Option<PathBuf>,
    /// `data_directory`'s default at start. It depends on who asks (root's
    /// `/var/lib/postern`, anyone else's own data directory), and a reload
    /// runs as `mail_owner`: detected again, it would be that user's
    /// directory, and a config that leaves `data_directory` unset would
    /// see every path under it move.
    data_directory: PathBuf,
    /// The config in force: the start's, then each reload's.
    config: Mutex<Arc<Config>>,
}

impl Running {
    /// A daemon started with config `path`, read as `config`.
    pub fn new(path: Option<PathBuf>, config: Config) -> Running {
        Running {
            path,
            data_directory: config.machine().data_directory.clone(),
            config: Mutex::new(Arc::new(config)),
        }
    }

    /// Reads the config again: with the start's data directory, and the
    /// host name as it is now.
    pub fn read_again(&self) -> Result<Config, ConfigErrors> {
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

    /// One line per main.cf parameter whose value differs in `new` and
    /// that a reload does not apply: `relayhost = [10.0.0.1]:25 (was
    /// empty)`.
    pub fn restart_needed(&self, new: &Config) -> Vec<String> {
        let now = self.current();
        PARAMS
            .iter()
            .map(|p| p.name)
            .filter(|name| !RELOADED.contains(name))
            .filter_map(|name| {
                let (was, is) = (now.value(name)?, new.value(name)?);
                (was != is).then(|| format!("{name} = {} (was {})", shown(&is), shown(&was)))
            })
            .collect()
    }

    /// Puts `config` in force: the one later reloads compare with.
    pub fn replace(&self, config: Config) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }

    /// The config in force.
    pub fn current(&self) -> Arc<Config> {
        Arc::clone(&self.config.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A value as a log line shows it: `empty` for nothing.
fn shown(value: &str) -> &str {
    if value.is_empty() { "empty" } else { value }
}

/// [`Config::load`], but a config file only root may read is read by the
/// root helper once the daemon runs as `mail_owner`
/// ([`crate::privilege_files`]).
fn load_config(path: &Path, machine: Machine) -> Result<Config, ConfigErrors> {
    let text = postern_privsep::read_file_or_ask(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned()))
        .map_err(|why| {
            ConfigErrors(vec![crate::config::ConfigError {
                file: path.display().to_string(),
                line: 0,
                key: String::new(),
                message: format!("cannot read config file: {why}"),
            }])
        })?;
    Config::parse(crate::config::Source::new(path, &text), machine, false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn started(dir: &Path, text: &str) -> Running {
        let file = dir.join("postern.toml");
        std::fs::write(&file, text).unwrap();
        let machine = Machine {
            hostname: "mx.example.org".to_owned(),
            data_directory: PathBuf::from("/srv/mail-data"),
        };
        let config =
            Config::parse(crate::config::Source::new(&file, text), machine, false).unwrap();
        Running::new(Some(file), config)
    }

    /// A daemon started as root runs as `mail_owner` when it reloads:
    /// the reload keeps the data directory of the start instead of the one
    /// `mail_owner` would be given (its own, under `$HOME`), so that a
    /// config leaving `data_directory` unset keeps every path under it.
    #[test]
    fn a_reload_keeps_the_data_directory_of_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let running = started(dir.path(), "myhostname = \"mx.example.org\"\n");
        let data = Path::new("/srv/mail-data/queue");
        assert_eq!(running.current().main.queue_directory, data);
        let reloaded = running.read_again().unwrap();
        assert_eq!(reloaded.main.queue_directory, data);
        assert_eq!(
            reloaded.value("data_directory").as_deref(),
            Some("/srv/mail-data")
        );
        assert!(running.restart_needed(&reloaded).is_empty());
        // The embedded default too.
        if !Path::new(crate::config::DEFAULT_PATH).exists() {
            let embedded = Running {
                path: None,
                ..running
            };
            assert_eq!(embedded.read_again().unwrap().main.queue_directory, data);
        }
    }

    #[test]
    fn every_parameter_a_reload_applies_is_one() {
        for name in RELOADED {
            assert!(
                crate::config::params::find(name).is_some(),
                "{name} is no parameter"
            );
        }
    }

    /// What a reload does not apply is named, with the new and the old
    /// value; what it applies is not.
    #[test]
    fn changes_a_reload_cannot_apply_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let running = started(dir.path(), "myhostname = \"mx.example.org\"\n");
        std::fs::write(
            dir.path().join("postern.toml"),
            "myhostname = \"mx.example.org\"\nrelayhost = \"[192.0.2.25]:2525\"\n\
             mynetworks = \"127.0.0.0/8, 192.0.2.0/24\"\naccess_map_reject_code = \"550\"\n\
             smtpd_hard_error_limit = 5\nmydestination = \"$myhostname, example.net\"\n\
             message_size_limit = 1000\nmaximal_backoff_time = \"3000s\"\n\
             qmgr_message_active_limit = 1000\n",
        )
        .unwrap();
        let new = running.read_again().unwrap();
        assert_eq!(
            running.restart_needed(&new),
            [
                // What the delivery loop sized itself by at start.
                "qmgr_message_active_limit = 1000 (was 20000)",
            ]
        );
        running.replace(new);
        let again = running.read_again().unwrap();
        assert!(running.restart_needed(&again).is_empty());
    }
}
