//! Log lines in the maillog shape that Postfix's tools (pflogsumm, grep
//! habits) expect: `postern/smtpd[1234]: 3F2A1B: client=unknown[127.0.0.1]`.
//!
//! Crates log with `tracing` and a target naming the Postfix program they
//! stand for (`postern/smtpd`, `postern/qmgr`, `postern/local`); this
//! formatter puts the process id after it, as syslog does, and a UTC
//! timestamp (RFC 3339) and the host name before it: syslog's own line
//! shape, which pflogsumm needs to read a line at all. Targets that are Rust module paths (from
//! dependencies) are shown as `postern/<crate>`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The maillog formatter.
#[derive(Debug, Default)]
pub struct Maillog {
    /// The host name syslog would write: the machine's, up to its first dot.
    host: String,
}

impl Maillog {
    /// A formatter naming this machine.
    pub fn new() -> Maillog {
        let name = gethostname::gethostname().to_string_lossy().into_owned();
        let short = name.split('.').next().unwrap_or_default();
        Maillog {
            host: if short.is_empty() || short.contains(char::is_whitespace) {
                "localhost".to_owned()
            } else {
                short.to_owned()
            },
        }
    }
}

struct Message<'a> {
    out: &'a mut String,
}

impl Visit for Message<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
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
        SystemTime.format_time(&mut w)?;
        write!(w, " {}", self.host)?;
        let meta = event.metadata();
        let target = meta.target();
        let program = if target.starts_with("postern/") {
            target.to_owned()
        } else {
            let krate = target.split("::").next().unwrap_or(target);
            format!("postern/{}", krate.trim_start_matches("postern_"))
        };
        let level = match *meta.level() {
            Level::ERROR => "fatal: ",
            Level::WARN => "warning: ",
            _ => "",
        };
        let mut text = String::new();
        event.record(&mut Message { out: &mut text });
        writeln!(w, " {program}[{}]: {level}{text}", std::process::id())
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

/// Installs the maillog formatter appending to `maillog_file` (Postfix
/// 3.4's parameter), for a daemon whose stderr nobody keeps. Lines are
/// written whole, one `write` each, so `tail -f` and pflogsumm never see
/// half a line; rotate with copytruncate.
pub fn init_file(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::sync::Mutex::new(file))
        .event_format(Maillog::new())
        .try_init();
    Ok(())
}

/// `POSTERN_LOG`, else `info` without the compiler's chatter.
fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("POSTERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,cranelift=warn,wasmtime=warn"))
}
