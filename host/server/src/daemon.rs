//! Start-up, listeners, signals and shutdown: Postfix's `master`.
//!
//! [`Parts::build`] makes everything a config describes without touching
//! the network or the queue, so `postern check` runs the same code as
//! start-up. [`run`] then opens the queue (recovering what a crash left),
//! binds every listener before serving any (a port in use stops start-up
//! with its name), and serves until SIGTERM or SIGINT. SIGHUP reloads the
//! policy snapshot without dropping a connection.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use postern_auth::UserDb;
use postern_delivery::LocalDelivery;
use postern_mail::{Directory, Enqueue, Policy, Stage};
use postern_policy::{Entry, Policies, PolicyConfig, Runtime};
use postern_queue::Queue;
use postern_smtp::SessionSettings;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

use crate::config::{Config, RestrictionItem};
use crate::directory::ConfigDirectory;

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
        let runtime = Arc::new(Runtime::new().context("cannot start the WebAssembly runtime")?);
        let snapshot = runtime.load(&policy_config(config)?)?;
        let policies = Arc::new(Policies::new(snapshot));
        let users = Arc::new(match &config.users_file {
            Some(path) => UserDb::load(path)?,
            None => UserDb::new(),
        });
        let main = &config.main;
        let delivery = Arc::new(LocalDelivery::new(postern_delivery::LocalSettings {
            virtual_mailbox_base: main.virtual_mailbox_base.clone(),
            home_mailbox: main.home_mailbox.clone(),
            myhostname: main.myhostname.clone(),
            local_domains: main.mydestination.clone(),
            users: users.clone(),
            recipient_delimiter: main.recipient_delimiter,
            aliases: Arc::new(load_aliases(config)?),
            allow_mail_to_files: main.allow_mail_to_files,
            allow_mail_to_commands: main.allow_mail_to_commands,
            default_privs: main.default_privs,
            command_time_limit: main.command_time_limit,
        }));
        let directory = Arc::new(ConfigDirectory::new(main, &users, delivery.clone()));
        Ok(Parts {
            runtime,
            policies,
            users,
            delivery,
            directory,
            settings: Arc::new(session_settings(config)),
        })
    }
}

/// Reads `alias_maps` into memory; every problem as `file:line: what`.
pub fn load_aliases(config: &Config) -> anyhow::Result<postern_delivery::AliasMap> {
    postern_delivery::AliasMap::load(&config.main.alias_maps).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("alias_maps:\n{}", lines.join("\n"))
    })
}

/// Swaps re-read aliases into the running agent; on any error the old
/// ones stay and the log says why.
fn reload_aliases(delivery: &LocalDelivery, config: &Config) {
    match load_aliases(config) {
        Ok(map) => {
            tracing::info!(target: "postern/local", "reload: {} aliases", map.len());
            delivery.replace_aliases(Arc::new(map));
        }
        Err(e) => {
            tracing::warn!(target: "postern/local", "reload failed, keeping the running aliases: {e:#}")
        }
    }
}

/// The restriction lists as policy entries; errors name the config line.
pub fn policy_config(config: &Config) -> anyhow::Result<PolicyConfig> {
    let mut policy = PolicyConfig::default();
    for stage in Stage::ALL {
        let list = config
            .restrictions
            .get(&stage)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut entries = Vec::with_capacity(list.len());
        for r in list {
            let entry = match &r.item {
                RestrictionItem::Line(l) => Entry::from_line(l),
                RestrictionItem::Table(t) => Entry::from_table(t.clone()),
            };
            match entry {
                Ok(e) => entries.push(e),
                Err(e) => bail!(
                    "{}:{}: smtpd.restrictions.{stage}: {e}",
                    config.source.file,
                    r.line
                ),
            }
        }
        policy.restrictions.insert(stage, entries);
    }
    policy.plugin_dir = config.main.plugin_directory.clone();
    let settings = &config.policy;
    policy.limits = settings.limits;
    policy.plugin_limits = settings.plugin_limits.clone();
    policy.max_failures = settings.max_failures;
    policy.dns = settings.dns.clone();
    policy.tables = Arc::new(load_tables(config)?);
    Ok(policy)
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
    postern_tables::Tables::load(&specs).map_err(|e| {
        let line = config
            .policy
            .tables
            .iter()
            .find(|t| t.spec.name == e.name)
            .map_or(0, |t| t.line);
        anyhow::anyhow!(
            "{}:{line}: tables.{}: {}",
            config.source.file,
            e.name,
            e.source
        )
    })
}

fn session_settings(config: &Config) -> SessionSettings {
    let m = &config.main;
    SessionSettings {
        hostname: m.myhostname.to_string(),
        banner: m.smtpd_banner.clone(),
        message_size_limit: m.message_size_limit,
        command_timeout: m.smtpd_timeout,
        recipient_limit: usize::try_from(m.smtpd_recipient_limit).unwrap_or(usize::MAX),
        helo_required: m.smtpd_helo_required,
        hard_error_limit: u32::try_from(m.smtpd_hard_error_limit).unwrap_or(u32::MAX),
        disable_vrfy_command: m.disable_vrfy_command,
        bare_newline: if m.smtpd_forbid_bare_newline == "reject" {
            postern_smtp::BareNewline::Reject
        } else {
            postern_smtp::BareNewline::Normalize
        },
        ..SessionSettings::default()
    }
}

/// The queue manager's settings from main.cf.
pub fn queue_settings(m: &crate::config::Main) -> postern_queue::QueueSettings {
    postern_queue::QueueSettings {
        minimal_backoff_time: m.minimal_backoff_time,
        maximal_backoff_time: m.maximal_backoff_time,
        maximal_queue_lifetime: m.maximal_queue_lifetime,
        bounce_queue_lifetime: m.bounce_queue_lifetime,
        queue_run_delay: m.queue_run_delay,
        myhostname: m.myhostname.clone(),
        ..postern_queue::QueueSettings::default()
    }
}

/// The pid file, where Postfix keeps it: `$queue_directory/pid/master.pid`.
pub fn pid_file(config: &Config) -> PathBuf {
    config.main.queue_directory.join("pid/master.pid")
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    let m = &config.main;
    if config.embedded {
        tracing::info!(target: "postern/master", "no config file at {}; running the embedded default", crate::config::DEFAULT_PATH);
    }
    tracing::info!(target: "postern/master", "data in {} (queue {}, mailboxes {})", m.data_directory.display(), m.queue_directory.display(), m.virtual_mailbox_base.display());
    let parts = Parts::build(&config)?;
    // STARTTLS, smtps and AUTH (host/server/src/tls.rs).
    let tls = Arc::new(crate::tls::load(&config)?);
    let auth = crate::tls::authenticator(m, parts.users.clone());
    let pop3 = crate::listener::pop3_settings(&auth, &parts.delivery, &tls);
    let queue = Arc::new(
        Queue::open_with(&m.queue_directory, queue_settings(m))
            .with_context(|| format!("cannot open the queue at {}", m.queue_directory.display()))?,
    );
    let mut listeners = Vec::new();
    for service in &config.services {
        for addr in &service.listen {
            let listener = TcpListener::bind(addr).await.with_context(|| {
                format!(
                    "{}:{}: service {}: cannot listen on {addr}",
                    config.source.file, service.line, service.name
                )
            })?;
            listeners.push((service.name.clone(), listener));
        }
    }
    let pid_path = pid_file(&config);
    if let Some(dir) = pid_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&pid_path, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", pid_path.display()))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let runner = tokio::spawn(
        queue
            .clone()
            .run(parts.delivery.clone(), shutdown_rx.clone()),
    );
    // `postern flush`, `queue release` and `queue requeue` wake the
    // delivery loop through $queue_directory/public/qmgr.
    // Without it (a path too long for a socket name, say) the daemon
    // still serves; those commands then wait for the next queue scan.
    let triggers = match queue.clone().listen_triggers(shutdown_rx.clone()) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::warn!(target: "postern/master", "cannot bind {}: {e}; `postern flush` will not reach this server", postern_queue::trigger::socket_path(&m.queue_directory).display());
            None
        }
    };
    let policy: Arc<dyn Policy> = parts.policies.clone();
    let directory: Arc<dyn Directory> = parts.directory.clone();
    let enqueue: Arc<dyn Enqueue> = queue.clone();
    let limit = usize::try_from(m.default_process_limit.max(1)).unwrap_or(usize::MAX);
    let mut acceptors = Vec::new();
    for (name, listener) in listeners {
        let addr = listener.local_addr()?;
        tracing::info!(target: "postern/master", "listening on {name} {addr}");
        let sessions = Arc::new(Semaphore::new(limit));
        if matches!(name.as_str(), "pop3" | "pop3s") {
            let settings = Arc::new(postern_pop3::Settings {
                implicit_tls: name == "pop3s",
                ..pop3.clone()
            });
            acceptors.push(tokio::spawn(crate::listener::serve_pop3(
                listener, settings, sessions,
            )));
            continue;
        }
        let settings = Arc::new(crate::tls::service_settings(
            &parts.settings,
            &name,
            m,
            &tls,
            &auth,
        ));
        let smtp = crate::listener::Smtp {
            name,
            settings,
            policy: policy.clone(),
            directory: directory.clone(),
            enqueue: enqueue.clone(),
            mynetworks: m.mynetworks.clone(),
        };
        acceptors.push(tokio::spawn(smtp.serve(listener, sessions)));
    }
    tracing::info!(target: "postern/master", "daemon started -- version {}, configuration {}", env!("CARGO_PKG_VERSION"), config.source.file);

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                // Compiling plugins blocks: off the async workers, so that
                // sessions go on while it runs.
                let (runtime, policies, path) = (parts.runtime.clone(), parts.policies.clone(), path.clone());
                let tls = tls.clone();
                let delivery = parts.delivery.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    reload(&runtime, &policies, path.as_deref());
                    let config = match path.as_deref() {
                        Some(p) => Config::load(p),
                        None => Config::embedded(),
                    };
                    if let Ok(config) = config {
                        crate::tls::reload(&tls, &config);
                        reload_aliases(&delivery, &config);
                    }
                }).await;
            }
        }
    }
    tracing::info!(target: "postern/master", "terminating on signal");
    for a in &acceptors {
        a.abort();
    }
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), runner).await;
    if let Some(triggers) = triggers {
        let _ = tokio::time::timeout(Duration::from_secs(1), triggers).await;
    }
    let _ = std::fs::remove_file(&pid_path);
    Ok(())
}

/// Re-reads the config and swaps in a new policy snapshot; on any error
/// the old one stays and the log says why.
fn reload(runtime: &Runtime, policies: &Policies, path: Option<&Path>) {
    let config = match path {
        Some(p) => Config::load(p),
        None => Config::embedded(),
    };
    let result = config
        .map_err(|e| anyhow::anyhow!("{e}"))
        .and_then(|c| policy_config(&c))
        .and_then(|pc| runtime.load(&pc).map_err(anyhow::Error::from));
    match result {
        Ok(snapshot) => {
            policies.replace(snapshot);
            tracing::info!(target: "postern/master", "reload -- version {}", env!("CARGO_PKG_VERSION"));
        }
        Err(e) => {
            tracing::warn!(target: "postern/master", "reload failed, keeping the running policy: {e:#}")
        }
    }
}

/// `postern start` without `--foreground`: runs this binary again in the
/// foreground in its own process group, logging to
/// `$data_directory/postern.log`, and waits until it serves or fails.
pub fn detach(config: &Config, path: Option<&Path>) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let log_path = config.main.data_directory.join("postern.log");
    std::fs::create_dir_all(&config.main.data_directory)
        .with_context(|| format!("cannot create {}", config.main.data_directory.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let pid_path = pid_file(config);
    let _ = std::fs::remove_file(&pid_path);
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["start", "--foreground"]);
    if let Some(p) = path {
        cmd.arg("--config").arg(p);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the server process")?;
    for _ in 0..200 {
        if let Some(status) = child.try_wait()? {
            eprintln!(
                "postern: the server exited ({status}); see {}",
                log_path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        if pid_path.exists() {
            eprintln!(
                "postern: started, pid {}, logging to {}",
                child.id(),
                log_path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "postern: the server has not started after 10 s; see {}",
        log_path.display()
    );
    Ok(ExitCode::FAILURE)
}

fn running_pid(config: &Config) -> Option<rustix::process::Pid> {
    let text = std::fs::read_to_string(pid_file(config)).ok()?;
    let pid = rustix::process::Pid::from_raw(text.trim().parse().ok()?)?;
    rustix::process::test_kill_process(pid).ok().map(|()| pid)
}

/// `postern stop`: SIGTERM, then wait (bounded) until the server is gone.
pub fn stop(config: &Config) -> anyhow::Result<ExitCode> {
    let Some(pid) = running_pid(config) else {
        eprintln!("postern: the mail system is not running");
        return Ok(ExitCode::FAILURE);
    };
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .context("cannot signal the server")?;
    for _ in 0..300 {
        if rustix::process::test_kill_process(pid).is_err() {
            eprintln!("postern: stopping the mail system");
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "postern: the server (pid {}) did not stop within 15 s",
        pid.as_raw_nonzero()
    );
    Ok(ExitCode::FAILURE)
}

/// `postern reload`: SIGHUP to the running server, which re-reads its
/// config and logs `reload` (or why it kept the running policy).
pub fn reload_signal(config: &Config) -> anyhow::Result<ExitCode> {
    let Some(pid) = running_pid(config) else {
        eprintln!("postern: the mail system is not running");
        return Ok(ExitCode::FAILURE);
    };
    rustix::process::kill_process(pid, rustix::process::Signal::HUP)
        .context("cannot signal the server")?;
    eprintln!("postern: refreshing the mail system");
    Ok(ExitCode::SUCCESS)
}

/// `postern status`.
pub fn status(config: &Config) -> anyhow::Result<ExitCode> {
    match running_pid(config) {
        Some(pid) => {
            eprintln!(
                "postern: the mail system is running: PID: {}",
                pid.as_raw_nonzero()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("postern: the mail system is not running");
            Ok(ExitCode::FAILURE)
        }
    }
}
