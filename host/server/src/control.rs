//! The control socket: how the command line talks to the running daemon
//! (DESIGN §5), as Postfix's `postfix reload` talks to `master` and
//! `postqueue` to the queue manager through sockets under the queue
//! directory.
//!
//! A unix stream socket at `$queue_directory/private/control`, mode 0600 in
//! a 0700 directory: only the mail system's own user (and root) may ask.
//! One command per connection, a line protocol a human can type with
//! `socat`:
//!
//! ```text
//! client: reload\n              client: plugins\n
//! server: ok\n                  server: ok\n
//!         (closes)                      NAME calls=N failures=N p50_us=N p99_us=N verdicts=KIND:N,...\n
//!                                       ...(closes)
//! ```
//!
//! A failure answers `error\n` and then the whole message, every line of
//! it. Commands: `reload` (the daemon re-reads its config, tables, plugins,
//! every SMTP service's restriction lists, aliases, TLS certificate and
//! users file, compiles off the async workers, and swaps them in only if
//! all of them load; see [`Live::reload`]), `plugins`
//! (the live counters of the running snapshot's plugins) and `status`
//! (what `postern status` prints; [`crate::status`]).
//!
//! What this does not do: authenticate beyond the file mode, or stream;
//! every answer is small and the connection ends with it. What every
//! local user may ask (Postfix's public showq, flush and pickup: the
//! mailq listing, a queue run, a local submission) goes over the separate
//! `$queue_directory/public/pickup` socket
//! ([`postern_queue::pickup`], [`crate::queue_cli`]), so that this one
//! stays the owner's.

use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use postern_auth::Authenticator;
use postern_delivery::LocalDelivery;
use postern_policy::Runtime;
use postern_smtp::TlsConfig;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::config::Config;
use crate::services::SmtpPolicies;

/// The longest command line accepted: the commands are single words.
const MAX_COMMAND: u64 = 256;

/// How long a client may take to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the control socket of the daemon using `queue_directory` lives.
pub fn socket_path(queue_directory: &Path) -> PathBuf {
    queue_directory.join("private/control")
}

/// What a reload swaps, and how to rebuild it: the daemon's reloadable
/// state, shared by the control socket and the SIGHUP handler.
pub struct Live {
    /// The engine and compile caches, kept across reloads.
    pub runtime: Arc<Runtime>,
    /// The restriction lists every SMTP service evaluates: the main ones
    /// and the services' own, swapped together.
    pub policies: Arc<SmtpPolicies>,
    /// The config file given at start (`None`: the default path, else the
    /// embedded default).
    pub path: Option<PathBuf>,
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

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// The reloadable state of a daemon started with config `path`.
    pub fn new(
        runtime: Arc<Runtime>,
        policies: Arc<SmtpPolicies>,
        path: Option<PathBuf>,
        tls: Arc<TlsConfig>,
        delivery: Arc<LocalDelivery>,
        auth: Arc<Authenticator>,
        facts: Arc<crate::status::Facts>,
    ) -> Live {
        Live {
            runtime,
            policies,
            path,
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
        let config = match self.path.as_deref() {
            Some(p) => load_config(p),
            None if Path::new(crate::config::DEFAULT_PATH).exists() => {
                load_config(Path::new(crate::config::DEFAULT_PATH))
            }
            None => Config::embedded(),
        }
        .map_err(|errors| {
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
    fn plugins(&self) -> String {
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
fn load_config(path: &Path) -> Result<Config, crate::config::ConfigErrors> {
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
    Config::parse(
        crate::config::Source::new(path, &text),
        crate::config::Machine::detect(),
        false,
    )
}

/// Binds the control socket of `queue_directory`, replacing a stale one
/// left by a daemon that did not shut down.
pub fn bind(queue_directory: &Path) -> io::Result<UnixListener> {
    let path = socket_path(queue_directory);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers commands on `listener` until `shutdown`, one task per
/// connection, then removes the socket.
pub async fn serve(listener: UnixListener, live: Arc<Live>, mut shutdown: watch::Receiver<bool>) {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, live.clone()));
                }
                Err(e) => {
                    tracing::warn!(target: "postern/master", "control socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}

/// Reads one command and answers it.
async fn answer(stream: UnixStream, live: Arc<Live>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_COMMAND));
    let got = tokio::time::timeout(COMMAND_TIMEOUT, reader.read_line(&mut line)).await;
    let reply = match got {
        Ok(Ok(_)) if line.ends_with('\n') => match line.trim() {
            "reload" => {
                let live = live.clone();
                match tokio::task::spawn_blocking(move || live.reload()).await {
                    Ok(Ok(())) => "ok\n".to_owned(),
                    Ok(Err(e)) => {
                        tracing::warn!(target: "postern/master", "reload failed, keeping the running policy: {e:#}");
                        format!("error\n{e:#}\n")
                    }
                    Err(e) => format!("error\nthe reload task failed: {e}\n"),
                }
            }
            "plugins" => format!("ok\n{}", live.plugins()),
            "status" => {
                let live = live.clone();
                // Counting queue files reads directories: off the workers.
                match tokio::task::spawn_blocking(move || live.facts.render()).await {
                    Ok(text) => format!("ok\n{text}"),
                    Err(e) => format!("error\nthe status task failed: {e}\n"),
                }
            }
            other => format!(
                "error\nunknown command {:?} (expected reload, plugins or status)\n",
                other.chars().take(40).collect::<String>()
            ),
        },
        Ok(Ok(_)) => "error\nexpected one command line of at most 256 bytes\n".to_owned(),
        Ok(Err(e)) => format!("error\n{e}\n"),
        Err(_) => "error\nno command within 10 s\n".to_owned(),
    };
    let _ = write.write_all(reply.as_bytes()).await;
    let _ = write.shutdown().await;
}

/// Why the command line got no answer from a daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket: no daemon runs for this queue
    /// directory (or it is too old to have a control socket).
    #[error("the mail system is not running (no control socket at {}: {source})", path.display())]
    NotRunning {
        /// The socket path tried.
        path: PathBuf,
        /// Why the connection failed.
        source: io::Error,
    },
    /// The daemon accepted but the exchange failed or timed out.
    #[error("control socket {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The daemon answered something other than `ok` or `error`.
    #[error("control socket {}: unexpected answer {answer:?}", path.display())]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// The first line of the answer.
        answer: String,
    },
}

/// Sends `command` to the daemon of `queue_directory` and waits up to
/// `timeout` for its answer: `Ok(Ok(body))` for `ok`, `Ok(Err(message))`
/// for `error`.
pub fn request(
    queue_directory: &Path,
    command: &str,
    timeout: Duration,
) -> Result<Result<String, String>, ClientError> {
    let path = socket_path(queue_directory);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|source| {
        ClientError::NotRunning {
            path: path.clone(),
            source,
        }
    })?;
    let io = |source| ClientError::Io {
        path: path.clone(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(io)?;
    let mut answer = String::new();
    // The answers are small; a daemon gone mad cannot fill memory.
    stream
        .take(16 << 20)
        .read_to_string(&mut answer)
        .map_err(io)?;
    let (status, body) = answer.split_once('\n').unwrap_or((answer.as_str(), ""));
    match status {
        "ok" => Ok(Ok(body.to_owned())),
        "error" => Ok(Err(body.trim_end().to_owned())),
        other => Err(ClientError::Protocol {
            path: path.clone(),
            answer: other.chars().take(80).collect(),
        }),
    }
}

/// One line of the `plugins` answer: what a plugin of the running
/// snapshot has done since the last reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStats {
    /// The plugin's name.
    pub name: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed (the entry's `on_error` answered).
    pub failures: u64,
    /// Verdicts by kind, those that occurred.
    pub verdicts: Vec<(String, u64)>,
    /// Median call time (upper bound of its histogram bucket).
    pub p50: Option<Duration>,
    /// 99th percentile call time, likewise.
    pub p99: Option<Duration>,
}

impl std::fmt::Display for LiveStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = |d: Option<Duration>| match d {
            Some(d) => d.as_micros().to_string(),
            None => "-".to_owned(),
        };
        let verdicts: Vec<String> = self
            .verdicts
            .iter()
            .map(|(k, n)| format!("{k}:{n}"))
            .collect();
        write!(
            f,
            "{} calls={} failures={} p50_us={} p99_us={} verdicts={}",
            self.name,
            self.calls,
            self.failures,
            micros(self.p50),
            micros(self.p99),
            if verdicts.is_empty() {
                "-".to_owned()
            } else {
                verdicts.join(",")
            }
        )
    }
}

impl LiveStats {
    /// Reads a line written by [`LiveStats`]'s `Display`.
    pub fn parse(line: &str) -> Option<LiveStats> {
        let mut words = line.split_whitespace();
        let name = words.next()?.to_owned();
        let mut stats = LiveStats {
            name,
            calls: 0,
            failures: 0,
            verdicts: Vec::new(),
            p50: None,
            p99: None,
        };
        let micros = |v: &str| match v {
            "-" => Some(None),
            v => v.parse().ok().map(|n| Some(Duration::from_micros(n))),
        };
        for word in words {
            let (key, value) = word.split_once('=')?;
            match key {
                "calls" => stats.calls = value.parse().ok()?,
                "failures" => stats.failures = value.parse().ok()?,
                "p50_us" => stats.p50 = micros(value)?,
                "p99_us" => stats.p99 = micros(value)?,
                "verdicts" if value == "-" => {}
                "verdicts" => {
                    for pair in value.split(',') {
                        let (k, n) = pair.split_once(':')?;
                        stats.verdicts.push((k.to_owned(), n.parse().ok()?));
                    }
                }
                // A later daemon may say more; this client shows what it knows.
                _ => {}
            }
        }
        Some(stats)
    }
}

/// `postern reload`: asks the daemon to reload and prints why it did not.
pub fn reload_command(config: &Config) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    // Compiling changed plugins takes seconds in a debug build.
    match request(
        &config.main.queue_directory,
        "reload",
        Duration::from_secs(300),
    ) {
        Ok(Ok(_)) => {
            eprintln!("postern: refreshing the mail system");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(message)) => {
            eprintln!("postern: reload failed, the running configuration is kept:");
            for line in message.lines() {
                eprintln!("postern: {line}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e @ ClientError::NotRunning { .. }) => {
            eprintln!("postern: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("cannot ask the server to reload"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_round_trip() {
        let s = LiveStats {
            name: "rbl".to_owned(),
            calls: 12,
            failures: 1,
            verdicts: vec![("dunno".to_owned(), 10), ("reject".to_owned(), 1)],
            p50: Some(Duration::from_micros(64)),
            p99: Some(Duration::from_micros(4096)),
        };
        let line = s.to_string();
        assert_eq!(
            line,
            "rbl calls=12 failures=1 p50_us=64 p99_us=4096 verdicts=dunno:10,reject:1"
        );
        assert_eq!(LiveStats::parse(&line), Some(s));
        let idle = LiveStats::parse("x calls=0 failures=0 p50_us=- p99_us=- verdicts=-").unwrap();
        assert_eq!((idle.p50, idle.verdicts.len()), (None, 0));
        assert_eq!(LiveStats::parse("x calls=lots"), None);
    }

    #[test]
    fn no_daemon_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let e = request(dir.path(), "plugins", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ClientError::NotRunning { .. }), "{e}");
        assert!(e.to_string().contains("not running"), "{e}");
    }

    #[tokio::test]
    async fn the_socket_is_for_the_owner_only_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        drop(bind(dir.path()).unwrap());
        let _listener = bind(dir.path()).unwrap();
        let path = socket_path(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o700);
    }
}
