//! Log lines in the maillog shape that Postfix's tools (pflogsumm, grep
//! habits) expect: `postern/smtpd[1234]: 3F2A1B: client=unknown[127.0.0.1]`.
//!
//! Crates log with `tracing` and a target naming the Postfix program they
//! stand for (`postern/smtpd`, `postern/qmgr`, `postern/local`); this
//! formatter puts the process id after it, as syslog does, and a UTC
//! timestamp (RFC 3339) and the host name before it: syslog's own line
//! shape, which pflogsumm needs to read a line at all. Targets that are Rust module paths (from
//! dependencies) are shown as `postern/<crate>`. `syslog_name` replaces
//! the `postern` of every tag, as Postfix's does.
//!
//! Where the lines go ([`init_configured`]): stderr by default (the
//! journal under systemd, the terminal in the foreground); the file
//! `maillog_file` when it is set (as in Postfix, where setting it turns
//! syslog off); or the local syslog daemon with `log_output = "syslog"`
//! ([`syslog`]: `syslog_facility`, `syslog_socket`). Postfix logs to
//! syslog unless told otherwise; Postern's default is stderr because a
//! service manager keeps it, and syslog is one explicit key away.
//!
//! The POP3 and IMAP session processes of other uids' mailboxes
//! ([`init_session`]) send their lines to the daemon over a channel
//! ([`channel`]), and the daemon logs them wherever its own lines go,
//! tagged with the child's program and pid.

pub mod channel;
pub mod panic;
pub mod syslog;

use std::fmt;
use std::path::Path;

use anyhow::Context as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The maillog formatter.
#[derive(Debug)]
pub struct Maillog {
    /// The host name syslog would write: the machine's, up to its first
    /// dot. None for syslog itself, which stamps the line and adds it.
    host: Option<String>,
    /// What tags begin with: `syslog_name`, `postern` by default.
    name: String,
    /// This process's id, read once: glibc no longer caches getpid, and
    /// a system call per log line is measurable at a few lines per
    /// message (the daemon never forks after the log is set up; the
    /// helper and session processes are fresh execs with their own).
    pid: u32,
}

impl Default for Maillog {
    fn default() -> Maillog {
        Maillog::new()
    }
}

impl Maillog {
    /// A formatter naming this machine.
    pub fn new() -> Maillog {
        let name = gethostname::gethostname().to_string_lossy().into_owned();
        let short = name.split('.').next().unwrap_or_default();
        Maillog {
            host: Some(if short.is_empty() || short.contains(char::is_whitespace) {
                "localhost".to_owned()
            } else {
                short.to_owned()
            }),
            name: "postern".to_owned(),
            pid: std::process::id(),
        }
    }

    /// The same with tags beginning `name/` (syslog_name).
    pub fn named(mut self, name: &str) -> Maillog {
        self.name = name.to_owned();
        self
    }

    /// Without timestamp and host: what goes to syslog after `<PRI>TIME `.
    fn bare(mut self) -> Maillog {
        self.host = None;
        self
    }

    /// `name/program` for a target (`postern/smtpd` or a module path).
    fn program(&self, target: &str) -> String {
        match target.strip_prefix("postern/") {
            Some(program) => format!("{}/{program}", self.name),
            None => {
                let krate = target.split("::").next().unwrap_or(target);
                format!("{}/{}", self.name, krate.trim_start_matches("postern_"))
            }
        }
    }
}

struct Message<'a> {
    out: &'a mut String,
    /// A relayed line's own program and pid ([`channel`]): the session
    /// process's, not this process's.
    program: Option<String>,
    pid: Option<u64>,
    /// A severity the level does not name: `panic` ([`panic`]).
    severity: Option<String>,
}

impl Visit for Message<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "relayed_pid" {
            self.pid = Some(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "relayed_program" {
            self.program = Some(value.to_owned());
        } else if field.name() == "severity" {
            self.severity = Some(value.to_owned());
        } else if field.name() == "message" {
            self.out.insert_str(0, value);
        } else {
            self.out.push_str(&format!(", {}={}", field.name(), value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.out.insert_str(0, &format!("{value:?}"));
        } else {
            self.out
                .push_str(&format!(", {}={:?}", field.name(), value));
        }
    }
}

impl<S, N> FormatEvent<S, N> for Maillog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(host) = &self.host {
            SystemTime.format_time(&mut w)?;
            write!(w, " {host} ")?;
        }
        let meta = event.metadata();
        let mut text = String::new();
        let mut message = Message {
            out: &mut text,
            program: None,
            pid: None,
            severity: None,
        };
        event.record(&mut message);
        let level = match (message.severity.as_deref(), *meta.level()) {
            (Some("panic"), _) => "panic: ",
            (_, Level::ERROR) => "fatal: ",
            (_, Level::WARN) => "warning: ",
            _ => "",
        };
        let program = match message.program.take() {
            Some(relayed) => format!("{}/{relayed}", self.name),
            None => self.program(meta.target()),
        };
        let pid = message.pid.unwrap_or(u64::from(self.pid));
        writeln!(w, "{program}[{pid}]: {level}{text}")
    }
}

/// Installs the maillog formatter on stderr. `POSTERN_LOG` (an
/// `EnvFilter` directive such as `debug`) changes the level; the default
/// is `info`, as Postfix logs every transaction.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .event_format(Maillog::new())
        .try_init();
}

/// A session process's log (host/server/src/mail_session.rs): into the
/// daemon's log channel when its standard error is one ([`channel`]),
/// the lines bare (the daemon adds time and host, and its own
/// `syslog_name`); else on stderr as [`init`] does. `log_filter` is the
/// daemon's ([`session_filter`]; its environment does not reach here),
/// the default when empty or not one.
pub fn init_session(log_filter: &str) {
    use std::os::fd::AsFd as _;
    let filter = session_env_filter(log_filter);
    let stderr = std::io::stderr();
    let channel = Some(stderr.as_fd())
        .filter(|fd| channel::is_channel(*fd))
        .and_then(|fd| fd.try_clone_to_owned().ok());
    let Some(channel) = channel else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .event_format(Maillog::new())
            .try_init();
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(channel::SessionWriter::new(channel))
        .event_format(Maillog::new().bare())
        .try_init();
}

/// Installs the maillog formatter appending to `maillog_file` (Postfix
/// 3.4's parameter), for a daemon whose stderr nobody keeps. Lines are
/// written whole, one `write` each, so `tail -f` and pflogsumm never see
/// half a line; rotate with copytruncate.
pub fn init_file(path: &Path) -> std::io::Result<()> {
    init_file_named(path, "postern")
}

fn init_file_named(path: &Path, name: &str) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::sync::Mutex::new(file))
        .event_format(Maillog::new().named(name))
        .try_init();
    Ok(())
}

/// Installs the maillog formatter where `config` sends the log (see the
/// module's documentation), with `syslog_name` in every tag.
pub fn init_configured(config: &crate::config::Config) -> anyhow::Result<()> {
    let value = |name: &str| config.value(name).unwrap_or_default();
    let name = value("syslog_name");
    let name = if name.trim().is_empty() {
        "postern".to_owned()
    } else {
        name.trim().to_owned()
    };
    let file = value("maillog_file");
    if !file.trim().is_empty() {
        let file = file.trim();
        return init_file_named(Path::new(file), &name)
            .with_context(|| format!("maillog_file: cannot open {file}"));
    }
    if value("log_output").trim() != "syslog" {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .event_format(Maillog::new().named(&name))
            .try_init();
        return Ok(());
    }
    let facility_name = value("syslog_facility");
    let facility = syslog::facility(&facility_name)
        .with_context(|| format!("syslog_facility: unknown facility {facility_name:?}"))?;
    let socket = value("syslog_socket");
    let writer = syslog::Syslog::start(Path::new(socket.trim()), facility, &name)
        .context("cannot start the syslog writer")?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(writer)
        .event_format(Maillog::new().named(&name).bare())
        .try_init();
    Ok(())
}

/// The filter without `POSTERN_LOG`: `info` without the compiler's chatter.
const DEFAULT_FILTER: &str = "info,cranelift=warn,wasmtime=warn";

/// `POSTERN_LOG`, else [`DEFAULT_FILTER`].
fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("POSTERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER))
}

/// The daemon's log filter as a session process is given it
/// ([`postern_privsep::MailSession::log_filter`]): `POSTERN_LOG` when it is
/// one the helper takes ([`postern_privsep::session::log_filter_ok`]:
/// levels and targets, short) and the daemon itself uses (it parses), else
/// empty: the default, as the daemon's own when the variable is unset or
/// bad. Read once: the daemon's filter is fixed at start.
pub fn session_filter() -> &'static str {
    static FILTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FILTER.get_or_init(|| {
        let value = std::env::var("POSTERN_LOG").unwrap_or_default();
        let value = value.trim();
        let usable = postern_privsep::session::log_filter_ok(value)
            && tracing_subscriber::EnvFilter::try_new(value).is_ok();
        if usable {
            value.to_owned()
        } else {
            String::new()
        }
    })
}

/// A session process's filter from its `--log-filter` (checked by the
/// helper; parsed again here, the default if it does not parse).
fn session_env_filter(log_filter: &str) -> tracing_subscriber::EnvFilter {
    let wanted = Some(log_filter.trim())
        .filter(|f| !f.is_empty())
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok());
    wanted.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER))
}

/// A subscriber that formats as syslog receives lines (tags named
/// `name/`), into memory: the lines and the subscriber, for tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn captured(
    name: &str,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    impl Subscriber + Send + Sync,
) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = Buf(Arc::clone(&lines));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .event_format(Maillog::new().named(name).bare())
        .finish();
    (lines, subscriber)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracing_subscriber::filter::LevelFilter;

    use super::*;

    /// A session process logs at the level the daemon passed it, and at
    /// the default one when it passed none or a filter that is not one.
    #[test]
    fn a_session_process_takes_the_daemons_filter() {
        let hint = |f: &str| session_env_filter(f).max_level_hint();
        assert_eq!(hint("debug"), Some(LevelFilter::DEBUG));
        assert_eq!(
            hint("info,postern/mail-session=trace"),
            Some(LevelFilter::TRACE)
        );
        assert_eq!(hint(""), Some(LevelFilter::INFO));
        assert_eq!(hint("x[{"), Some(LevelFilter::INFO));
    }
}
