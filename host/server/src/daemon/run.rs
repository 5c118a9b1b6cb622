//! The run loop: binds every listener, drops root, starts the queue's
//! tasks and the services, then serves until a signal and shuts down in
//! order. Apart because it is one long sequence that reads best whole.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use postern_mail::{Directory, Enqueue};
use postern_queue::Queue;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

use super::{Parts, STOP_GRACE, pid_file, policy_config, queue_settings};
use crate::config::Config;

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
    // The Prometheus recorder first, when there is an endpoint: every
    // counter from here on (recovery, the first sessions) reaches it.
    let recorder = match config.metrics_listen {
        Some(_) => Some(crate::metrics::install()?),
        None => None,
    };
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
    let routes = Arc::new(crate::remote::Routes::new(
        &config,
        parts.delivery.clone(),
        own,
        parts.directory.clone(),
    )?);
    let runner = tokio::spawn(queue.clone().run(routes.clone(), shutdown_rx.clone()));
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
    // The limits of the LMTP, IMAP and pickup services, which a reload
    // changes (host/server/src/services/limits.rs).
    let limits = Arc::new(crate::services::ServiceLimits::new(&config));
    let pickup = match queue
        .clone()
        .start_pickup(limits.pickup(), shutdown_rx.clone())
    {
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
    // Sessions are told to stop before the queue is: what they accept
    // while they drain still gets queued.
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = crate::tls::Shared {
        tls: tls.clone(),
        auth: auth.clone(),
        shutdown: postern_smtp::Shutdown::new(stop_rx.clone()),
    };
    // Every SMTP service asks its restriction lists, and takes its
    // settings, through this: the main lists and the services' own,
    // swapped together by a reload.
    let policies = Arc::new(crate::services::SmtpPolicies::new(
        parts.policies.current(),
        shared,
    ));
    let directory: Arc<dyn Directory> = parts.directory.clone();
    let enqueue: Arc<dyn Enqueue> = queue.clone();
    let limit = usize::try_from(m.default_process_limit.max(1)).unwrap_or(usize::MAX);
    let mut acceptors = Vec::new();
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
            let settings = limits.imap(postern_imap::Settings {
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
            let settings = limits.lmtp(&config, service, settings);
            mailbox_sessions.add(&sessions, limit);
            acceptors.push(tokio::spawn(crate::lmtp::serve_tcp(
                listener, settings, sessions,
            )));
            continue;
        }
        let smtp = smtp_services.service(
            &config,
            service,
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
        let settings = limits.lmtp(&config, service, settings);
        mailbox_sessions.add(&sessions, limit);
        // Stopping aborts this task, which closes the socket and removes
        // its file.
        acceptors.push(tokio::spawn(crate::lmtp::serve_unix(
            socket, settings, sessions,
        )));
    }
    // The optional Prometheus endpoint (host/server/src/metrics.rs).
    let metrics = match metrics_listener.zip(recorder) {
        Some((listener, recorder)) => {
            let exporter =
                crate::metrics::exporter(recorder, m.queue_directory.clone(), policies.clone());
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
        crate::control::Running::new(path.clone(), config.clone()),
        routes,
        limits,
        queue.clone(),
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
