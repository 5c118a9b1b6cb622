//! Start-up, listeners, signals and shutdown: Postfix's `master`.
//!
//! [`Parts::build`] makes everything a config describes without touching
//! the network or the queue, so `postern check` runs the same code as
//! start-up. [`run()`] then opens the queue (recovering what a crash left),
//! binds every listener before serving any (a port in use stops start-up
//! with its name), and serves until SIGTERM or SIGINT. SIGHUP reloads the
//! policy snapshot without dropping a connection. Started as root, it
//! runs as `mail_owner` once the listeners are bound, with a root helper
//! for what needs another uid ([`crate::privilege`]).
//!
//! Stopping (SIGTERM, `postern stop`) is graceful: the listeners close,
//! SMTP sessions between transactions get `421 4.3.2` and those in one
//! finish it, IMAP sessions get `* BYE Server shutting down.` and POP3
//! ones `-ERR [SYS/TEMP] Server shutting down.` once the command they are
//! in is answered (all within [`STOP_GRACE`]), then the delivery loop
//! finishes its attempts. SIGQUIT (`postern abort`) exits at once.
//!
//! # Layout
//! - this file: [`Parts`] and what building them reads (the runtime, the
//!   users file, the aliases), the queue's settings, the pid file.
//! - `policy`: the restriction lists and tables as a policy config.
//! - `run`: the run loop, from binding the listeners to the last clean-up.
//! - `process`: the commands that act on the daemon from outside
//!   (`postern start` detached, `stop`, `abort`, `status`).

mod policy;
mod process;
mod run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use postern_auth::UserDb;
use postern_delivery::LocalDelivery;
use postern_policy::{Policies, Runtime};
use postern_smtp::SessionSettings;

use crate::config::Config;
use crate::directory::ConfigDirectory;

pub(crate) use policy::load_table;
pub use policy::{load_tables, policy_config, policy_config_for};
pub use process::{abort, detach, status, stop};
pub use run::run;

/// Everything a config describes, built and checked, before any socket
/// is bound or any queue file touched.
pub struct Parts {
    /// The wasmtime engine and component cache, kept for reloads.
    pub runtime: Arc<Runtime>,
    /// The restriction chains, swappable on reload.
    pub policies: Arc<Policies>,
    /// The users file.
    pub users: Arc<UserDb>,
    /// The local delivery agent.
    pub delivery: Arc<LocalDelivery>,
    /// Domain classes and known recipients.
    pub directory: Arc<ConfigDirectory>,
    /// Local or remote delivery for each recipient: what the queue
    /// delivers through.
    pub router: Arc<postern_delivery::Router>,
    /// What every SMTP session runs with.
    pub settings: Arc<SessionSettings>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts").finish_non_exhaustive()
    }
}

impl Parts {
    /// Builds the policy snapshot (compiling every plugin), reads the users
    /// file and prepares delivery and sessions.
    pub fn build(config: &Config) -> anyhow::Result<Parts> {
        let runtime = Arc::new(runtime(config)?);
        let snapshot = runtime.load(&policy_config(config)?)?;
        let policies = Arc::new(Policies::new(snapshot));
        let users = Arc::new(load_users(config)?);
        let main = &config.main;
        let aliases = Arc::new(load_aliases(config)?);
        let delivery = Arc::new(LocalDelivery::new(local_settings(
            main,
            users.clone(),
            aliases,
        )));
        let directory = Arc::new(ConfigDirectory::new(main, delivery.clone()));
        let router = Arc::new(crate::remote::router(config, delivery.clone(), Vec::new())?);
        Ok(Parts {
            runtime,
            policies,
            users,
            delivery,
            directory,
            router,
            settings: Arc::new(session_settings(config)),
        })
    }
}

/// The local delivery agent's settings from main.cf's parameters, with
/// the users file and aliases as loaded: at start, and again at each
/// reload ([`LocalDelivery::reload_settings`] takes what may change).
pub fn local_settings(
    main: &crate::config::Main,
    users: Arc<UserDb>,
    aliases: Arc<postern_delivery::AliasMap>,
) -> postern_delivery::LocalSettings {
    postern_delivery::LocalSettings {
        virtual_mailbox_base: main.virtual_mailbox_base.clone(),
        home_mailbox: main.home_mailbox.clone(),
        mail_spool_directory: main.mail_spool_directory.clone(),
        mailbox_command: main.mailbox_command.clone(),
        forward_path: main.forward_path.clone(),
        myhostname: main.myhostname.clone(),
        local_domains: main.mydestination.clone(),
        users,
        recipient_delimiter: main.recipient_delimiter,
        aliases,
        allow_mail_to_files: main.allow_mail_to_files,
        allow_mail_to_commands: main.allow_mail_to_commands,
        default_privs: main.default_privs,
        command_time_limit: main.command_time_limit,
        system_accounts: main.system_accounts,
    }
}

/// The WebAssembly runtime, keeping compiled plugins on disk in
/// `plugin_cache_directory` (`$data_directory/cache`) so that a restart or
/// reload does not compile unchanged components again. Where that
/// directory cannot be made (a `postern check` by a user who cannot write
/// there), or when it is set empty, compiled code is kept in memory only.
pub fn runtime(config: &Config) -> anyhow::Result<Runtime> {
    let dir = &config.main.plugin_cache_directory;
    if dir.as_os_str().is_empty() {
        return Runtime::new().context("cannot start the WebAssembly runtime");
    }
    let dir = std::path::absolute(dir);
    match dir.map(|d| Runtime::with_cache(&d)) {
        Ok(Ok(runtime)) => return Ok(runtime),
        Ok(Err(e)) => {
            tracing::warn!(target: "postern/master", "no on-disk compile cache: {e}");
        }
        Err(e) => {
            tracing::warn!(target: "postern/master", "no on-disk compile cache: {e}");
        }
    }
    Runtime::new().context("cannot start the WebAssembly runtime")
}

/// Reads the users file (`[auth] users_file`); errors name `file:line`.
/// After the drop to `mail_owner` a file only root may read is read by
/// the root helper ([`crate::privilege_files`]).
pub fn load_users(config: &Config) -> anyhow::Result<UserDb> {
    let Some(path) = &config.users_file else {
        return Ok(UserDb::new());
    };
    let io = |source| postern_auth::UsersFileError::Io {
        path: path.clone(),
        source,
    };
    let bytes = postern_privsep::read_file_or_ask(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })?;
    Ok(UserDb::parse(&text, &path.display().to_string())?)
}

/// Reads `alias_maps` into memory; every problem as `file:line: what`.
pub fn load_aliases(config: &Config) -> anyhow::Result<postern_delivery::AliasMap> {
    postern_delivery::AliasMap::load(&config.main.alias_maps).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("alias_maps:\n{}", lines.join("\n"))
    })
}

fn session_settings(config: &Config) -> SessionSettings {
    crate::tls::smtpd_settings(&config.main)
}

/// The queue manager's settings from main.cf.
pub fn queue_settings(m: &crate::config::Main) -> postern_queue::QueueSettings {
    postern_queue::QueueSettings {
        minimal_backoff_time: m.minimal_backoff_time,
        maximal_backoff_time: m.maximal_backoff_time,
        maximal_queue_lifetime: m.maximal_queue_lifetime,
        bounce_queue_lifetime: m.bounce_queue_lifetime,
        delay_warning_time: m.delay_warning_time,
        queue_run_delay: m.queue_run_delay,
        myhostname: m.myhostname.clone(),
        queue_minfree: m.queue_minfree,
        immediate_local_delivery: m.immediate_local_delivery,
        process_limit: count(m.default_process_limit),
        destination_concurrency_limit: count(m.default_destination_concurrency_limit),
        transport_concurrency_limits: vec![
            (
                "smtp".to_owned(),
                count(m.smtp.smtp_concurrency.limit.into()),
            ),
            (
                "lmtp".to_owned(),
                count(m.smtp.lmtp_concurrency.limit.into()),
            ),
        ],
        message_active_limit: count(m.qmgr_message_active_limit),
        message_recipient_limit: count(m.qmgr_message_recipient_limit),
        content_filter: m.content_filter.clone(),
    }
}

/// A count parameter as a `usize` (saturating on 32-bit hosts).
fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// How long a stop waits for SMTP sessions to finish the transaction they
/// are in, and POP3 and IMAP sessions the command they are in; those
/// still open then are closed with the process.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The pid file, where Postfix keeps it: `$queue_directory/pid/master.pid`.
pub fn pid_file(config: &Config) -> PathBuf {
    config.main.queue_directory.join("pid/master.pid")
}
