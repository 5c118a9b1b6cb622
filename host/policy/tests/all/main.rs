//! The policy runtime against real components: the embedded standard
//! plugins and the test guests `build.rs` builds from `plugins/test_*`.
//! One binary, a module per area (wasmtime's `tests/all` layout), sharing
//! one runtime so that each component is compiled once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod access;
mod answer;
mod builtins;
mod classes;
mod dns_checks;
mod dns_server;
mod hostile;
mod identity_checks;
mod inspect;
mod kv_plugins;
mod load;
mod lookup;
mod pool;
mod reuse;
mod sandbox;
mod session;
mod standard;
mod verdicts;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use postern_mail::{DomainClass, PolicyRequest, Stage};
use postern_policy::{Entry, PolicyConfig, Runtime, Snapshot};

/// One runtime for the whole binary: its compile cache is shared.
pub static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());

/// The built component of plugin crate `name` (test guests included).
pub fn wasm(name: &str) -> PathBuf {
    Path::new(env!("POSTERN_PLUGIN_WASM_DIR")).join(format!("{name}.wasm"))
}

/// Entries from string lines.
pub fn lines(lines: &[&str]) -> Vec<Entry> {
    lines.iter().map(|l| Entry::from_line(l).unwrap()).collect()
}

/// An entry from table pairs.
pub fn table(pairs: &[(&str, &str)]) -> Entry {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Entry::from_table(map).unwrap()
}

/// A plugin directory with the test guests, which are not embedded.
pub static GUESTS: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let guests: Vec<(String, Vec<u8>)> = [
        "test_hostile",
        "test_answer",
        "test_sandbox",
        "test_lookup",
        "test_session",
    ]
    .into_iter()
    .map(|name| (format!("{name}.wasm"), std::fs::read(wasm(name)).unwrap()))
    .collect();
    let files: Vec<(&str, &[u8])> = guests
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    plugin_dir(&files)
});

/// A config with `entries` as the recipient list and the test guests'
/// plugin directory.
pub fn config(entries: Vec<Entry>) -> PolicyConfig {
    let mut config = PolicyConfig::default().with(Stage::Recipient, entries);
    config.plugin_dir = Some(GUESTS.path().to_path_buf());
    config
}

/// Loads `entries` as the recipient list, test guests available.
pub fn recipient_list(entries: Vec<Entry>) -> Snapshot {
    RUNTIME.load(&config(entries)).unwrap()
}

/// [`rcpt`] with a queue id, which every log line about it carries.
pub fn rcpt_id(id: &str, trusted: bool, class: Option<DomainClass>) -> PolicyRequest {
    let mut r = rcpt(trusted, class);
    r.queue_id = id.to_owned();
    r
}

/// A RCPT TO request for `x@example.com` from 192.0.2.1.
pub fn rcpt(trusted: bool, class: Option<DomainClass>) -> PolicyRequest {
    let mut r = PolicyRequest::new(Stage::Recipient);
    r.protocol_name = "ESMTP".to_owned();
    r.client_address = Some(IpAddr::from([192, 0, 2, 1]));
    r.client_port = 40000;
    r.helo_name = "client.example.net".to_owned();
    r.sender = "a@example.net".to_owned();
    r.recipient = "x@example.com".to_owned();
    r.trusted = trusted;
    r.recipient_class = class;
    r
}

/// A temporary plugin directory holding copies of built guests under the
/// given file names.
pub fn plugin_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// Everything logged under the `postern/policy` target by any test of
/// this binary. One global subscriber: thread-local ones miss events when
/// tests run in parallel (tracing caches each callsite's interest).
static LOG: LazyLock<Logs> = LazyLock::new(|| {
    use tracing_subscriber::layer::SubscriberExt;
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || sink.clone()),
        )
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("postern/policy", tracing::Level::TRACE),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    logs
});

/// The shared log buffer, seen through one test's marker: a queue id the
/// test put in its requests, or a text only it logs.
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>, String);

impl Logs {
    /// Starts capturing (once per binary) and returns the view of the lines
    /// that contain `marker`.
    pub fn capture(marker: &str) -> Logs {
        Logs(LOG.0.clone(), marker.to_owned())
    }

    /// The lines logged so far that contain the marker.
    pub fn text(&self) -> String {
        let all = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        all.lines()
            .filter(|l| l.contains(&self.1))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
