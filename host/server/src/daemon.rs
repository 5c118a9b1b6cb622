//! Start-up, listeners, signals and shutdown: Postfix's `master`.
//!
//! [`Parts::build`] makes everything a config describes without touching
//! the network or the queue, so `postern check` runs the same code as
//! start-up. [`run`] then opens the queue (recovering what a crash left),
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

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use postern_auth::UserDb;
use postern_delivery::LocalDelivery;
use postern_mail::{Directory, Enqueue, Stage};
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
        let delivery = Arc::new(LocalDelivery::new(postern_delivery::LocalSettings {
            virtual_mailbox_base: main.virtual_mailbox_base.clone(),
            home_mailbox: main.home_mailbox.clone(),
            mail_spool_directory: main.mail_spool_directory.clone(),
            mailbox_command: main.mailbox_command.clone(),
            forward_path: main.forward_path.clone(),
            myhostname: main.myhostname.clone(),
            local_domains: main.mydestination.clone(),
            users: users.clone(),
            recipient_delimiter: main.recipient_delimiter,
            aliases: Arc::new(load_aliases(config)?),
            allow_mail_to_files: main.allow_mail_to_files,
            allow_mail_to_commands: main.allow_mail_to_commands,
            default_privs: main.default_privs,
            command_time_limit: main.command_time_limit,
            system_accounts: main.system_accounts,
        }));
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
        let table = match postern_tables::Table::load(spec.kind, &spec.path) {
            Err(postern_tables::Error::Read { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                table_through_helper(spec)
            }
            other => other,
        };
        let table = table.map_err(|source| postern_tables::LoadError {
            name: spec.name.clone(),
            source,
        })?;
        tables.insert(spec.name.clone(), table);
    }
    Ok(tables)
}

/// The table of `spec`, its file read with the helper's help.
fn table_through_helper(
    spec: &postern_tables::TableSpec,
) -> Result<postern_tables::Table, postern_tables::Error> {
    use postern_tables::{CidrTable, Error, HashTable, Kind, RegexpTable, Table};
    let path = &spec.path;
    let read = |source| Error::Read {
        path: path.clone(),
        source,
    };
    let bytes = postern_privsep::read_file_or_ask(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })?;
    match spec.kind {
        Kind::Hash => HashTable::parse(path, &text).map(Table::Hash),
        Kind::Cidr => CidrTable::parse(path, &text).map(Table::Cidr),
        Kind::Regexp => RegexpTable::parse(path, &text).map(Table::Regexp),
        _ => Table::load(spec.kind, path),
    }
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

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    // The handlers first: a stop that arrives while the server is still
    // starting (it announces its listeners before it is done) waits in
    // these streams instead of killing the process without its clean-up.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let m = &config.main;
    if config.embedded {
        tracing::info!(target: "postern/master", "no config file at {}; running the embedded default", crate::config::DEFAULT_PATH);
    }
    tracing::info!(target: "postern/master", "data in {} (queue {}, mailboxes {})", m.data_directory.display(), m.queue_directory.display(), m.virtual_mailbox_base.display());
    let parts = Parts::build(&config)?;
    // What the mailbox store fsyncs (Dovecot's `mail_fsync`).
    let fsync = config.value("mail_fsync").unwrap_or_default();
    postern_mailbox::fsync::set_mode(fsync.parse().map_err(anyhow::Error::msg)?);
    // STARTTLS, smtps and AUTH (host/server/src/tls.rs).
    let tls = Arc::new(crate::tls::load(&config)?);
    let auth = crate::tls::authenticator(m, parts.users.clone(), config.system_accounts);
    let pop3 = crate::listener::pop3_settings(&auth, &parts.delivery, &tls);
    let imap = crate::listener::imap_settings(&auth, &parts.delivery, &tls, m.message_size_limit);
    let queue = Arc::new(
        Queue::open_with(&m.queue_directory, queue_settings(m))
            .with_context(|| format!("cannot open the queue at {}", m.queue_directory.display()))?,
    );
    // Aliases and .forward files that name other domains send the mail
    // on as a new message through the queue.
    parts.delivery.set_forwarder(queue.clone());
    // Who the daemon becomes (a missing mail_owner stops start-up here):
    // the UNIX sockets made below are that user's.
    let plan = crate::privilege::plan(&config)?;
    let mut listeners = Vec::new();
    for service in &config.services {
        for addr in &service.listen {
            let listener = TcpListener::bind(addr).await.with_context(|| {
                format!(
                    "{}:{}: service {}: cannot listen on {addr}",
                    config.source.file, service.line, service.name
                )
            })?;
            listeners.push((service.name.clone(), listener, service));
        }
    }
    // `lmtp` on a UNIX socket (host/server/src/lmtp.rs).
    let mut unix_sockets = Vec::new();
    for service in &config.services {
        if let Some(unix) = &service.unix {
            let socket = crate::lmtp::bind_unix(unix, plan.owner()).with_context(|| {
                format!(
                    "{}:{}: service {}",
                    config.source.file, service.line, service.name
                )
            })?;
            unix_sockets.push((socket, service));
        }
    }
    // The Prometheus endpoint's port too (host/server/src/metrics.rs).
    let metrics_listener = match config.metrics_listen {
        Some(listen) => Some(crate::metrics::bind(listen, &config.source.file).await?),
        None => None,
    };
    let pid_path = pid_file(&config);
    if let Some(dir) = pid_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&pid_path, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", pid_path.display()))?;
    // Root's work is done (ports bound, keys read, queue open): run as
    // mail_owner from here on, with a root helper for the steps that need
    // another uid (host/server/src/privilege.rs).
    let privileges = crate::privilege::apply(&plan, &config, &parts);
    if let Err(e) = privileges {
        let _ = std::fs::remove_file(&pid_path);
        return Err(e);
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // The router again, now that the listeners' addresses are known: a
    // next hop that is one of them is this server (a mail loop).
    let own = listeners
        .iter()
        .filter_map(|(_, l, _)| l.local_addr().ok())
        .collect();
    let router = crate::remote::router(&config, parts.delivery.clone(), own)?;
    let runner = tokio::spawn(queue.clone().run(Arc::new(router), shutdown_rx.clone()));
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
    // `postern sendmail` hands mail over public/pickup, or leaves it in
    // $queue_directory/maildrop when no daemon runs (host/queue/src/
    // pickup.rs). The envelope adds a little to the message: allow for it.
    let pickup = match queue.clone().start_pickup(
        m.message_size_limit.saturating_add(64 * 1024),
        shutdown_rx.clone(),
    ) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::warn!(target: "postern/master", "cannot start the pickup service: {e}; `postern sendmail` mail waits in {}", postern_queue::pickup::maildrop_dir(&m.queue_directory).display());
            None
        }
    };
    // `postern reload` and `postern plugin list` ask through
    // $queue_directory/private/control (host/server/src/control.rs). Bound
    // here, answered once every service is made (a reload must find them
    // all); a command sent meanwhile waits in the socket's backlog.
    let control = match crate::control::bind(&m.queue_directory) {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(target: "postern/master", "cannot bind {}: {e}; `postern reload` will not reach this server (SIGHUP still reloads)", crate::control::socket_path(&m.queue_directory).display());
            None
        }
    };
    // Every SMTP service asks its restriction lists through this: the
    // main ones and the services' own, swapped together by a reload.
    let policies = Arc::new(crate::services::SmtpPolicies::new(parts.policies.current()));
    let directory: Arc<dyn Directory> = parts.directory.clone();
    let enqueue: Arc<dyn Enqueue> = queue.clone();
    let limit = usize::try_from(m.default_process_limit.max(1)).unwrap_or(usize::MAX);
    let mut acceptors = Vec::new();
    // Sessions are told to stop before the queue is: what they accept
    // while they drain still gets queued.
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = crate::tls::Shared {
        tls: tls.clone(),
        auth: auth.clone(),
        shutdown: postern_smtp::Shutdown::new(stop_rx.clone()),
    };
    let mut smtp_services = crate::services::SmtpServices::default();
    let mut mailbox_sessions = crate::listener::MailboxSessions::default();
    // `NAME ADDRESS` per listener, for `postern status`.
    let mut bound = Vec::new();
    for (name, listener, service) in listeners {
        let addr = listener.local_addr()?;
        tracing::info!(target: "postern/master", "listening on {name} {addr}");
        bound.push(format!("{name} {addr}"));
        let sessions = Arc::new(Semaphore::new(limit));
        if matches!(name.as_str(), "imap" | "imaps") {
            let settings = Arc::new(postern_imap::Settings {
                implicit_tls: name == "imaps",
                stop: Some(stop_rx.clone()),
                ..imap.clone()
            });
            mailbox_sessions.add(&sessions, limit);
            acceptors.push(tokio::spawn(crate::listener::serve_imap(
                listener, settings, sessions,
            )));
            continue;
        }
        if matches!(name.as_str(), "pop3" | "pop3s") {
            let settings = Arc::new(postern_pop3::Settings {
                implicit_tls: name == "pop3s",
                stop: Some(stop_rx.clone()),
                ..pop3.clone()
            });
            mailbox_sessions.add(&sessions, limit);
            acceptors.push(tokio::spawn(crate::listener::serve_pop3(
                listener, settings, sessions,
            )));
            continue;
        }
        if name == "lmtp" {
            let limit =
                usize::try_from(service.main.default_process_limit.max(1)).unwrap_or(usize::MAX);
            let sessions = Arc::new(Semaphore::new(limit));
            let settings = crate::lmtp::settings(service, &parts.delivery, stop_rx.clone());
            mailbox_sessions.add(&sessions, limit);
            acceptors.push(tokio::spawn(crate::lmtp::serve_tcp(
                listener,
                Arc::new(settings),
                sessions,
            )));
            continue;
        }
        let smtp = smtp_services.service(
            &config,
            service,
            &shared,
            &parts.runtime,
            &policies,
            (&directory, &enqueue),
        )?;
        let sessions = smtp_services.sessions(service, sessions);
        acceptors.push(tokio::spawn(smtp.serve(listener, sessions)));
    }
    for (socket, service) in unix_sockets {
        let (name, path) = (&service.name, socket.path().display());
        tracing::info!(target: "postern/master", "listening on {name} unix:{path}");
        bound.push(format!("{name} unix:{path}"));
        let limit =
            usize::try_from(service.main.default_process_limit.max(1)).unwrap_or(usize::MAX);
        let sessions = Arc::new(Semaphore::new(limit));
        let settings = crate::lmtp::settings(service, &parts.delivery, stop_rx.clone());
        mailbox_sessions.add(&sessions, limit);
        // Stopping aborts this task, which closes the socket and removes
        // its file.
        acceptors.push(tokio::spawn(crate::lmtp::serve_unix(
            socket,
            Arc::new(settings),
            sessions,
        )));
    }
    // The optional Prometheus endpoint (host/server/src/metrics.rs).
    let metrics = match metrics_listener {
        Some(listener) => {
            let exporter = crate::metrics::start(m.queue_directory.clone(), policies.clone())?;
            let addr = listener.local_addr()?;
            tracing::info!(target: "postern/master", "listening on metrics http://{addr}/metrics");
            bound.push(format!("metrics http://{addr}/metrics"));
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                exporter,
                shutdown_rx.clone(),
            )))
        }
        None => None,
    };
    let plugin_set = policy_config(&config)
        .and_then(|c| crate::status::plugin_set(&parts.runtime, &c))
        .unwrap_or_else(|e| {
            tracing::warn!(target: "postern/master", "cannot digest the plugin set for `postern status`: {e:#}");
            crate::status::PluginSet::default()
        });
    let facts = Arc::new(crate::status::Facts::new(
        &config.source.file,
        &m.queue_directory,
        bound,
        plugin_set,
    ));
    let live = Arc::new(crate::control::Live::new(
        parts.runtime.clone(),
        policies.clone(),
        path.clone(),
        tls.clone(),
        parts.delivery.clone(),
        auth.clone(),
        facts,
    ));
    let control = control.map(|listener| {
        tokio::spawn(crate::control::serve(
            listener,
            live.clone(),
            shutdown_rx.clone(),
        ))
    });
    tracing::info!(target: "postern/master", "daemon started -- version {}, configuration {}", env!("CARGO_PKG_VERSION"), config.source.file);
    crate::notify::ready("serving");

    let graceful = loop {
        tokio::select! {
            _ = term.recv() => break true,
            _ = int.recv() => break true,
            // `postern abort`.
            _ = quit.recv() => break false,
            _ = hup.recv() => {
                // Compiling plugins blocks: off the async workers, so that
                // sessions go on while it runs.
                let live = live.clone();
                let _ = tokio::task::spawn_blocking(move || live.reload_and_log()).await;
            }
        }
    };
    tracing::info!(target: "postern/master", "terminating on signal");
    crate::notify::stopping();
    // Stop accepting: the listening sockets close with their tasks.
    for a in &acceptors {
        a.abort();
    }
    if !graceful {
        // `postern abort`: what was acknowledged is on disk already; a
        // delivery cut short is tried again at the next start.
        let _ = std::fs::remove_file(&pid_path);
        tracing::info!(target: "postern/master", "abort: exiting at once");
        std::process::exit(0);
    }
    // Wait for the acceptors to be gone: their listening sockets are
    // closed then, and the session slots they held are free.
    for a in acceptors {
        let _ = tokio::time::timeout(Duration::from_secs(1), a).await;
    }
    let _ = stop_tx.send(true);
    smtp_services.drain(&mailbox_sessions, STOP_GRACE).await;
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), runner).await;
    if let Some(triggers) = triggers {
        let _ = tokio::time::timeout(Duration::from_secs(1), triggers).await;
    }
    if let Some(pickup) = pickup {
        let _ = tokio::time::timeout(Duration::from_secs(1), pickup).await;
    }
    if let Some(control) = control {
        let _ = tokio::time::timeout(Duration::from_secs(1), control).await;
    }
    if let Some(metrics) = metrics {
        let _ = tokio::time::timeout(Duration::from_secs(1), metrics).await;
    }
    let _ = std::fs::remove_file(&pid_path);
    Ok(())
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
/// The server stops accepting, lets sessions finish their transaction
/// (up to [`STOP_GRACE`]) and the delivery loop its attempts (10 s).
pub fn stop(config: &Config) -> anyhow::Result<ExitCode> {
    signal_and_wait(
        config,
        rustix::process::Signal::TERM,
        STOP_GRACE + Duration::from_secs(20),
    )
}

/// `postern abort`: SIGQUIT, and the server exits at once, cutting
/// sessions and deliveries short (nothing acknowledged is lost: it is on
/// disk, and a delivery cut short is tried again).
pub fn abort(config: &Config) -> anyhow::Result<ExitCode> {
    signal_and_wait(
        config,
        rustix::process::Signal::QUIT,
        Duration::from_secs(10),
    )
}

fn signal_and_wait(
    config: &Config,
    signal: rustix::process::Signal,
    bound: Duration,
) -> anyhow::Result<ExitCode> {
    let Some(pid) = running_pid(config) else {
        eprintln!("postern: the mail system is not running");
        return Ok(ExitCode::FAILURE);
    };
    rustix::process::kill_process(pid, signal).context("cannot signal the server")?;
    eprintln!("postern: stopping the mail system");
    let start = std::time::Instant::now();
    let pid_path = pid_file(config);
    while start.elapsed() < bound {
        // The server removes its pid file last thing before it exits (a
        // process that is gone but not yet reaped still answers kill 0).
        if rustix::process::test_kill_process(pid).is_err() || !pid_path.exists() {
            eprintln!(
                "postern: the mail system is stopped ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "postern: the server (pid {}) did not stop within {} s",
        pid.as_raw_nonzero(),
        bound.as_secs()
    );
    Ok(ExitCode::FAILURE)
}

/// `postern status`: Postfix's line on stderr, then what the daemon says
/// of itself on stdout ([`crate::status`]): listeners, uptime, queue
/// sizes, plugin set digest, last reload.
#[allow(clippy::print_stdout, reason = "the command answers on stdout")]
pub fn status(config: &Config) -> anyhow::Result<ExitCode> {
    match running_pid(config) {
        Some(pid) => {
            eprintln!(
                "postern: the mail system is running: PID: {}",
                pid.as_raw_nonzero()
            );
            match crate::control::request(
                &config.main.queue_directory,
                "status",
                Duration::from_secs(10),
            ) {
                Ok(Ok(text)) => print!("{text}"),
                Ok(Err(e)) => eprintln!("postern: the daemon gave no status: {e}"),
                Err(e) => eprintln!("postern: no details: {e}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("postern: the mail system is not running");
            Ok(ExitCode::FAILURE)
        }
    }
}
