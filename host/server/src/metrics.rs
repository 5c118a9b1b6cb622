//! The Prometheus endpoint (`[metrics] listen = "127.0.0.1:9154"`), off
//! by default, as postfix_exporter and dovecot's `stats` listener are
//! separate opt-ins for Postfix and Dovecot.
//!
//! Two kinds of figures, in the Prometheus text format (version 0.0.4):
//! - **Counted where they happen**, through the `metrics` facade the
//!   libraries call (no registry to pass around): SMTP connections,
//!   messages queued or discarded, rejections by stage, deciding plugin
//!   and class (`postern_smtpd_*`), deliveries by transport and status
//!   (`postern_deliveries_total`), IMAP and POP3 sessions. The recorder
//!   is installed only when the endpoint is configured: without it the
//!   facade's calls cost a load and a branch.
//! - **Read at scrape time**: messages in each queue directory
//!   (`postern_queue_messages`, counting files, so it agrees with `ls`),
//!   and each plugin's calls, failures, verdicts and latency histogram
//!   from the running snapshot (`postern_plugin_*`). Those start from
//!   zero at every reload, as the snapshot's counters do; Prometheus'
//!   `rate()` treats that as a counter reset. And the log lines syslog
//!   could not take (`postern_log_lines_dropped_total`).
//!
//! The port is bound with the other listeners, before a root start drops
//! to `mail_owner` ([`bind`]): a port below 1024 works, and one in use
//! stops start-up naming `[metrics] listen`.
//!
//! What this does not do: TLS or authentication on the endpoint (bind it
//! to loopback or a management network), push, or keep history. The HTTP
//! side is one `GET` answered and the connection closed: written here on
//! tokio in a few lines rather than pulling in hyper for it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use postern_queue::QueueName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::services::SmtpPolicies;

/// The most of a request read: the request line and headers of any
/// scraper fit; more is not a scrape.
const MAX_REQUEST: usize = 8 * 1024;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a scrape reads besides the facade's counters.
pub struct Exporter {
    handle: PrometheusHandle,
    queue_directory: PathBuf,
    policies: Arc<SmtpPolicies>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("queue_directory", &self.queue_directory)
            .finish_non_exhaustive()
    }
}

/// Binds `listen` for the endpoint, with the other listeners and before
/// the privilege drop (so a port below 1024 works, and a port in use
/// stops start-up before anything serves). `file` is the config file, for
/// the error.
pub async fn bind(listen: SocketAddr, file: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("{file}: [metrics] listen: cannot listen on {listen}"))
}

/// Installs the process-wide recorder for the endpoint bound by
/// [`bind`]. Call once, at start-up (a reload does not move the
/// endpoint), before anything counts: a counter touched before the
/// recorder is in place is lost (the `metrics` facade drops it), so this
/// comes before the queue's recovery and before any service serves.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")
}

/// The endpoint's exporter over the recorder [`install`] put in place.
pub fn exporter(
    handle: PrometheusHandle,
    queue_directory: PathBuf,
    policies: Arc<SmtpPolicies>,
) -> Arc<Exporter> {
    Arc::new(Exporter {
        handle,
        queue_directory,
        policies,
    })
}

/// Answers scrapes on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, exporter.clone()));
                }
                Err(e) => {
                    tracing::warn!(target: "postern/master", "metrics endpoint: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// Reads one request and answers it.
async fn answer(mut stream: TcpStream, exporter: Arc<Exporter>) {
    let mut request = Vec::new();
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => {
            let exporter = exporter.clone();
            // Counting queue files reads directories: off the workers.
            match tokio::task::spawn_blocking(move || exporter.render()).await {
                Ok(text) => ("200 OK", text),
                Err(e) => ("500 Internal Server Error", format!("{e}\n")),
            }
        }
        (Some("GET"), Some(_)) => ("404 Not Found", "try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

impl Exporter {
    /// The whole scrape: the facade's counters, then the queue and the
    /// plugins as they are now.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        let mut out = self.handle.render();
        out.push_str(&queue_section(&self.queue_directory));
        out.push_str(&plugin_section(&self.policies.main().stats()));
        out.push_str(&log_section(crate::log::syslog::dropped()));
        out
    }
}

/// `postern_log_lines_dropped_total`: log lines lost because syslog was
/// slow, stuck or gone (`log_output = "syslog"`; always 0 otherwise). The
/// log says so too, but only once syslog takes lines again: a counter
/// that climbs is how a stuck syslog daemon is noticed meanwhile.
fn log_section(dropped: u64) -> String {
    format!(
        "# HELP postern_log_lines_dropped_total Log lines dropped because syslog was slow or unavailable.\n\
         # TYPE postern_log_lines_dropped_total counter\n\
         postern_log_lines_dropped_total {dropped}\n"
    )
}

/// `postern_queue_messages{queue=...}`: files in each queue directory and
/// the maildrop.
fn queue_section(queue_directory: &std::path::Path) -> String {
    let mut out = String::from(
        "# HELP postern_queue_messages Messages in each queue directory.\n# TYPE postern_queue_messages gauge\n",
    );
    let dirs = QueueName::ALL
        .iter()
        .map(|q| (q.as_str(), queue_directory.join(q.as_str())))
        .chain([(
            "maildrop",
            postern_queue::pickup::maildrop_dir(queue_directory),
        )]);
    for (name, dir) in dirs {
        let _ = writeln!(
            out,
            "postern_queue_messages{{queue=\"{name}\"}} {}",
            count_files(&dir)
        );
    }
    out
}

/// Regular files in `dir`; 0 when it cannot be read (not made yet).
pub fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .count()
    })
}

/// One of a plugin's counters.
type PluginCount = fn(&postern_policy::PluginStats) -> u64;

/// The running snapshot's per-plugin counters and latency histograms.
fn plugin_section(stats: &[postern_policy::PluginStats]) -> String {
    let mut out = String::new();
    let counters: [(&str, &str, PluginCount); 4] = [
        ("calls", "Plugin calls since the last reload.", |s| s.calls),
        (
            "cached",
            "Requests answered with a verdict a plugin's earlier call left (host.cache-verdicts), without a call, since the last reload.",
            |s| s.cached,
        ),
        (
            "instances",
            "Plugin instances made (instantiation and init) since the last reload; the other calls reused one.",
            |s| s.instances,
        ),
        (
            "failures",
            "Plugin calls that trapped, timed out or hit a limit (on_error answered).",
            |s| s.failures,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP postern_plugin_{name}_total {help}\n# TYPE postern_plugin_{name}_total counter"
        );
        for s in stats {
            let _ = writeln!(
                out,
                "postern_plugin_{name}_total{{plugin=\"{}\"}} {}",
                s.name,
                value(s)
            );
        }
    }
    out.push_str("# HELP postern_plugin_verdicts_total Plugin verdicts by kind since the last reload.\n# TYPE postern_plugin_verdicts_total counter\n");
    for s in stats {
        for (kind, n) in &s.verdicts {
            let _ = writeln!(
                out,
                "postern_plugin_verdicts_total{{plugin=\"{}\",verdict=\"{kind}\"}} {n}",
                s.name
            );
        }
    }
    out.push_str("# HELP postern_plugin_duration_seconds Plugin call time (check, with instantiation and init when no instance was at hand).\n# TYPE postern_plugin_duration_seconds histogram\n");
    for s in stats {
        let mut cumulative = 0u64;
        let last = s.latency.len().saturating_sub(1);
        for (i, n) in s.latency.iter().enumerate() {
            cumulative += n;
            // Bucket i holds calls under 2^i µs; the last one everything
            // slower too, so it is +Inf.
            if i < last {
                let le = f64::from(1u32 << i.min(31)) / 1e6;
                let _ = writeln!(
                    out,
                    "postern_plugin_duration_seconds_bucket{{plugin=\"{}\",le=\"{le}\"}} {cumulative}",
                    s.name
                );
            }
        }
        let _ = writeln!(
            out,
            "postern_plugin_duration_seconds_bucket{{plugin=\"{}\",le=\"+Inf\"}} {cumulative}",
            s.name
        );
        let _ = writeln!(
            out,
            "postern_plugin_duration_seconds_sum{{plugin=\"{}\"}} {}",
            s.name,
            s.total.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "postern_plugin_duration_seconds_count{{plugin=\"{}\"}} {cumulative}",
            s.name
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_syslog_drop_count_is_a_prometheus_counter() {
        let text = log_section(42);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "# TYPE postern_log_lines_dropped_total counter");
        assert_eq!(lines[2], "postern_log_lines_dropped_total 42");
        assert!(lines[0].starts_with("# HELP postern_log_lines_dropped_total "));
    }
}
