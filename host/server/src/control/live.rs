//! The daemon's reloadable state ([`Live`]) and the reload itself: what
//! `reload` on the control socket and SIGHUP both run. Apart from the
//! socket because it is the daemon's state, not the protocol that asks
//! for it.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use postern_policy::Runtime;
use postern_queue::Queue;

use super::LiveStats;
use super::running::Running;
use crate::remote::Routes;
use crate::services::{ServiceLimits, SmtpPolicies};

/// What a reload swaps, and how to rebuild it: the daemon's reloadable
/// state, shared by the control socket and the SIGHUP handler.
pub struct Live {
    /// The engine and compile caches, kept across reloads.
    pub runtime: Arc<Runtime>,
    /// The restriction lists every SMTP service evaluates: the main ones
    /// and the services' own, swapped together.
    pub policies: Arc<SmtpPolicies>,
    /// The config in force, and where a reload reads it again.
    pub running: Running,
    /// The router the queue delivers through, rebuilt by a reload, and
    /// its local agent, for its aliases and users (the SMTP server's
    /// recipient checks ask it too).
    pub routes: Arc<Routes>,
    /// The LMTP, IMAP and pickup services' limits.
    pub limits: Arc<ServiceLimits>,
    /// The queue, whose timers follow a reload.
    pub queue: Arc<Queue>,
    /// What `postern status` reports.
    pub facts: Arc<crate::status::Facts>,
    /// One reload at a time: two would race to swap.
    reloading: Mutex<()>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// The reloadable state of a daemon running on `running`.
    pub fn new(
        runtime: Arc<Runtime>,
        policies: Arc<SmtpPolicies>,
        running: Running,
        routes: Arc<Routes>,
        limits: Arc<ServiceLimits>,
        queue: Arc<Queue>,
        facts: Arc<crate::status::Facts>,
    ) -> Live {
        Live {
            runtime,
            policies,
            running,
            routes,
            limits,
            queue,
            facts,
            reloading: Mutex::new(()),
        }
    }

    /// Re-reads the config and everything it names (tables, plugins, the
    /// restriction lists of the main config and of every SMTP service,
    /// each service's settings and networks, aliases, the TLS certificate,
    /// the users file, the routes of delivery with `transport_maps`, the
    /// LMTP, IMAP and pickup services' limits, the queue's timers, the
    /// local delivery agent's rules), and
    /// swaps them in
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
    ///
    /// Returns the changed main.cf parameters the reload could not apply
    /// ([`Running::restart_needed`]), which it also logs.
    pub fn reload(&self) -> anyhow::Result<Vec<String>> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        crate::notify::reloading();
        let result = self.swap();
        match &result {
            Ok((set, _)) => {
                self.facts.reloaded(Ok(set.clone()));
                crate::notify::reloaded("serving; last reload ok");
            }
            Err(e) => {
                self.facts.reloaded(Err(format!("{e:#}")));
                crate::notify::reloaded("serving; last reload failed, running set kept");
            }
        }
        result.map(|(_, restart)| restart)
    }

    /// The body of [`Live::reload`]: loads everything, swaps it in, and
    /// says which plugin set now runs and what is left for a restart.
    fn swap(&self) -> anyhow::Result<(crate::status::PluginSet, Vec<String>)> {
        let config = self.running.read_again().map_err(|errors| {
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
        let router = self.routes.prepare(&config)?;

        self.policies.swap(policies);
        // The certificate every TLS service presents, and what every
        // login (SMTP AUTH, POP3, IMAP) is checked against.
        let crate::tls::Shared { tls, auth, .. } = self.policies.shared();
        crate::tls::reload(tls, &config);
        tracing::info!(target: "postern/local", "reload: {} aliases", aliases.len());
        let aliases = Arc::new(aliases);
        let local = self.routes.local();
        local.replace_aliases(Arc::clone(&aliases));
        tracing::info!(target: "postern/local", "reload: {} users", users.len());
        auth.replace_users(Arc::clone(&users));
        auth.replace_failure_policy(crate::tls::failure_policy(&config.main));
        auth.ledger()
            .set_timeout(config.main.pop_before_smtp_timeout);
        local.replace_users(Arc::clone(&users));
        local.reload_settings(&crate::daemon::local_settings(&config.main, users, aliases));
        auth.replace_local_domains(config.main.mydestination.clone());
        self.routes.swap(router, &config);
        self.limits.apply(&config);
        self.queue
            .reload_settings(&crate::daemon::queue_settings(&config.main));
        tracing::info!(target: "postern/master", "reload -- version {}", env!("CARGO_PKG_VERSION"));
        // The root helper's uids, homes and mail roots follow the config
        // (a users-file user added with a uid gets mail), read by the
        // helper itself from the root-owned file.
        crate::privilege_files::refresh_helper();
        let restart = self.running.restart_needed(&config);
        for line in &restart {
            tracing::warn!(target: "postern/master", "reload: {line}: takes effect at the next start");
        }
        self.running.replace(config);
        Ok((plugin_set, restart))
    }

    /// Re-reads the users file of the config in force, and only that,
    /// swapping it in where [`Live::reload`] does (logins, local delivery,
    /// the SMTP server's recipient checks and virtual domains): what
    /// `postern user add|passwd|del` asks for once it has rewritten the
    /// file, so that a user added logs in and gets mail at once, without
    /// the operator's unfinished edits of the config going live with it.
    /// On an error the users in force stay. Returns how many users the
    /// file holds. Blocking (the root helper may read the file).
    ///
    /// Kept verdicts stay valid: whether a recipient or sender is known
    /// is an attribute of the request (`recipient-known`,
    /// `sender-known`), so a plugin that depends on it keys on it.
    pub fn reload_users(&self) -> anyhow::Result<usize> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let config = self.running.current();
        let users = Arc::new(crate::daemon::load_users(&config)?);
        let crate::tls::Shared { auth, .. } = self.policies.shared();
        auth.replace_users(Arc::clone(&users));
        self.routes.local().replace_users(Arc::clone(&users));
        let path = config.users_file.as_deref().unwrap_or(Path::new("none"));
        tracing::info!(target: "postern/master", "users file {} re-read: {} users", path.display(), users.len());
        // A user added with a uid gets mail delivered as that uid.
        crate::privilege_files::refresh_helper();
        Ok(users.len())
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
                    cached: Some(s.cached),
                    instances: Some(s.instances),
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
