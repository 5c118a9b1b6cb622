//! `postern plugin list` and `postern plugin test`: tooling for plugin
//! authors and operators (the registry subcommands are in
//! [`crate::registry_cli`]).
//!
//! `list` shows every plugin the config makes available (embedded, and
//! the `*.wasm` files of `plugin_directory`) with its source, SHA-256,
//! size and the restriction lists that use it. `test` runs one plugin
//! against a made-up request, as Exim's `-bh` runs a session and
//! Postfix's `postmap -q` a lookup: through the same runtime, plugin
//! directory, tables, DNS and `[plugins]` limits as the server, and prints
//! the verdict as Postfix words an access(5) action, and the time it took.
//!
//! Call counters, verdict counts and latencies live in the running
//! server: when one answers on the control socket ([`crate::control`]),
//! `list` adds what each plugin of its running snapshot has done since
//! the last reload (calls, instances made, failures, p50 and p99 latency, verdicts by
//! kind); otherwise it shows what the config says, and says why the rest
//! is missing.

#![allow(clippy::print_stdout, reason = "the command answers on stdout")]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use postern_mail::{Address, DomainClass, PolicyRequest, Stage, Verdict};
use postern_policy::{Entry, PluginInfo, Runtime, TrialFailure};

use crate::config::Config;
use crate::control::{self, LiveStats};
use crate::daemon::policy_config;

/// What `postern plugin` does.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List every plugin the config makes available: name, source
    /// (embedded or the file), SHA-256, size in bytes, and the lists that
    /// use it; with a running server, also its calls, instances made, failures, p50/p99
    /// latency and verdicts since the last reload.
    List,
    /// Run one plugin against a made-up request and print its verdict as
    /// Postfix would say it, and the time taken; exit 1 if the plugin
    /// refuses its arguments, traps or runs out of time.
    Test(TestArgs),
    /// Registry plugins: publish, install, update, remove, verify, sign.
    #[command(flatten)]
    Registry(crate::registry_cli::RegistryCommand),
}

/// The plugin, its arguments and the request of `postern plugin test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The plugin (a standard one, NAME.wasm in plugin_directory, or an
    /// installed oci:// reference); a built-in (permit, reject, defer,
    /// dunno) answers its fixed verdict.
    plugin: String,
    /// The stage: client (connect), helo (ehlo), sender (mail), relay,
    /// recipient (rcpt), data, end_of_data (end-of-message).
    #[arg(long, default_value = "rcpt", value_parser = parse_stage)]
    stage: Stage,
    /// The client's IP address.
    #[arg(long, value_name = "IP")]
    client: Option<IpAddr>,
    /// The HELO/EHLO name.
    #[arg(long, value_name = "NAME", default_value = "")]
    helo: String,
    /// The MAIL FROM address (empty: the null sender).
    #[arg(long, value_name = "ADDRESS", default_value = "")]
    sender: String,
    /// The RCPT TO address; its domain's class (local, virtual, relay,
    /// other) comes from the config.
    #[arg(long, value_name = "ADDRESS", default_value = "")]
    recipient: String,
    /// Treat the client as in mynetworks (it also is when --client is in
    /// mynetworks).
    #[arg(long)]
    trusted: bool,
    /// The SASL user name, as if the client had authenticated.
    #[arg(long, value_name = "USER")]
    sasl_username: Option<String>,
    /// An argument for the plugin's init, as in a table entry
    /// ({ plugin = "NAME", KEY = "VALUE" }); repeat for more. A string
    /// entry's positional arguments are keys 1, 2, ...
    #[arg(long = "arg", value_name = "KEY=VALUE", value_parser = parse_arg)]
    args: Vec<(String, String)>,
    /// A message file (RFC 5322, LF or CRLF line ends) for an end_of_data
    /// plugin to read through the `message` import.
    #[arg(long, value_name = "FILE")]
    message: Option<std::path::PathBuf>,
}

/// Runs `postern plugin ...`.
pub fn run(config: &Config, command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::List => list(config),
        PluginCommand::Test(args) => test(config, args),
        PluginCommand::Registry(command) => crate::registry_cli::run(config, command),
    }
}

fn runtime() -> anyhow::Result<Runtime> {
    Runtime::new().context("cannot start the WebAssembly runtime")
}

fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let policy = policy_config(config)?;
    let plugins = runtime()?.plugins(&policy)?;
    // What `postern check` would refuse, said here too.
    for stage in Stage::ALL {
        for entry in policy.restrictions.get(&stage).into_iter().flatten() {
            if entry.builtin().is_none() && !plugins.iter().any(|p| p.name == entry.name()) {
                eprintln!(
                    "postern: warning: the {stage} list names plugin {}, which is neither \
                     embedded nor in plugin_directory",
                    entry.name()
                );
            }
        }
    }
    match control::request(
        &config.main.queue_directory,
        "plugins",
        Duration::from_secs(10),
    ) {
        Ok(Ok(body)) => {
            let live: Vec<LiveStats> = body.lines().filter_map(LiveStats::parse).collect();
            print!("{}", table(&plugins, Some(&live)));
        }
        Ok(Err(message)) => {
            print!("{}", table(&plugins, None));
            eprintln!("postern: the server did not give its counters: {message}");
        }
        Err(e) => {
            print!("{}", table(&plugins, None));
            eprintln!(
                "postern: {e}; calls, verdict counts and latencies come from a running server"
            );
        }
    }
    let installed = crate::registry_cli::installed(config);
    if !installed.is_empty() {
        println!("\nINSTALLED (plugins.lock: reference, name, version, digest, signature)");
        for line in installed {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The listing: a header and one line per plugin, columns aligned; with
/// `live` counters, seven more columns (`-` for a plugin the running
/// snapshot does not have).
fn table(plugins: &[PluginInfo], live: Option<&[LiveStats]>) -> String {
    let mut header: Vec<String> = ["NAME", "SOURCE", "SHA256", "SIZE", "LISTS"]
        .map(str::to_owned)
        .to_vec();
    if live.is_some() {
        header.extend(
            [
                "CALLS",
                "CACHED",
                "INSTANCES",
                "FAILED",
                "P50",
                "P99",
                "VERDICTS",
            ]
            .map(str::to_owned),
        );
    }
    let mut rows = vec![header];
    for p in plugins {
        let lists: Vec<&str> = p.used_by.iter().map(|s| s.as_str()).collect();
        let mut row = vec![
            p.name.clone(),
            p.source.to_string(),
            p.sha256.clone(),
            p.size.to_string(),
            if lists.is_empty() {
                "-".to_owned()
            } else {
                lists.join(",")
            },
        ];
        if let Some(live) = live {
            row.extend(live_columns(live.iter().find(|s| s.name == p.name)));
        }
        rows.push(row);
    }
    let mut widths = vec![0; rows[0].len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The counter columns of one plugin: calls, requests answered with a
/// kept verdict, instances made, failures, p50, p99, verdicts as
/// `kind:n,...`.
fn live_columns(stats: Option<&LiveStats>) -> [String; 7] {
    let Some(s) = stats else {
        return ["-", "-", "-", "-", "-", "-", "-"].map(str::to_owned);
    };
    let count = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let latency = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), micros);
    let verdicts: Vec<String> = s.verdicts.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    [
        s.calls.to_string(),
        count(s.cached),
        count(s.instances),
        s.failures.to_string(),
        latency(s.p50),
        latency(s.p99),
        if verdicts.is_empty() {
            "-".to_owned()
        } else {
            verdicts.join(",")
        },
    ]
}

/// A latency as the histogram gives it: `64us`, `4ms`.
fn micros(d: Duration) -> String {
    let us = d.as_micros();
    if us >= 10_000 {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

fn test(config: &Config, t: TestArgs) -> anyhow::Result<ExitCode> {
    let mut table: BTreeMap<String, String> = t.args.iter().cloned().collect();
    let plugin = crate::registry_cli::resolve_name(config, &t.plugin)?;
    table.insert("plugin".to_owned(), plugin);
    let entry = Entry::from_table(table)?;
    let mut request = request(config, &t);
    if let Some(path) = &t.message {
        if t.stage != Stage::EndOfData {
            anyhow::bail!("--message is read at the end_of_data stage only (--stage end_of_data)");
        }
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the message {}", path.display()))?;
        let content = crlf(&bytes);
        request.size = content.len() as u64;
        request.message = Some(postern_mail::MessageContent::new(content));
    }
    let policy = policy_config(config)?;
    // The server's compile cache: a plugin tested twice is compiled once.
    let trial = crate::daemon::runtime(config)?.trial(&policy, &entry, &request)?;
    let stage = request.stage;
    match trial.outcome {
        Ok(verdict) => {
            for line in &trial.added {
                println!("prepend: {line}");
            }
            println!("{}", postfix_words(&verdict));
            println!("time: {}", millis(trial.took));
            if let Some((attributes, ttl)) = &trial.cache {
                let by = if attributes.is_empty() {
                    "the stage alone".to_owned()
                } else {
                    attributes.join(", ")
                };
                println!("cache: verdicts kept {} s by {by}", ttl.as_secs());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            let what = match failure {
                TrialFailure::Refused(_) => "refused its arguments",
                _ => "failed",
            };
            let detail = match &failure {
                TrialFailure::Refused(m) => m.clone(),
                other => other.to_string(),
            };
            eprintln!(
                "postern: plugin {} {what} at {stage} after {}: {detail}; the server would answer \
                 its entry's on_error ({})",
                t.plugin,
                millis(trial.took),
                entry.on_error()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The request the server would build at `t.stage` from these facts.
fn request(config: &Config, t: &TestArgs) -> PolicyRequest {
    let main = &config.main;
    let mut r = PolicyRequest::new(t.stage);
    r.protocol_name = "ESMTP".to_owned();
    r.instance = "postern-plugin-test".to_owned();
    r.client_address = t.client;
    r.helo_name = t.helo.clone();
    r.sender = bare(&t.sender).to_owned();
    r.recipient = bare(&t.recipient).to_owned();
    let in_mynetworks = t.client.is_some_and(|ip| {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        main.mynetworks.iter().any(|n| n.contains(&ip))
    });
    r.trusted = t.trusted || in_mynetworks;
    if let Some(user) = &t.sasl_username {
        r.sasl_method = "PLAIN".to_owned();
        r.sasl_username = user.clone();
    }
    if !r.recipient.is_empty() {
        r.recipient_class = Some(class(config, &r.recipient));
    }
    r
}

/// `bytes` with every line ending in CRLF, as the SMTP server hands a
/// message to the end-of-data list (files on disk usually end lines in LF).
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// `<a@b>` or `a@b`: the address without its angle brackets.
fn bare(address: &str) -> &str {
    let a = address.trim();
    a.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a)
}

/// The class of `recipient`'s domain, as the server's directory decides
/// it: mydestination, then virtual domains (with the users file's), then
/// relay_domains and their subdomains; anything else, or an address that
/// does not parse, is `other`.
fn class(config: &Config, recipient: &str) -> DomainClass {
    let Ok(address) = Address::parse(recipient) else {
        return DomainClass::Other;
    };
    let domain = address.domain();
    let main = &config.main;
    if main.mydestination.contains(domain) {
        return DomainClass::Local;
    }
    let users = config
        .users_file
        .as_deref()
        .and_then(|p| postern_auth::UserDb::load(p).ok());
    let virtual_domain = main.virtual_mailbox_domains.contains(domain)
        || users
            .iter()
            .flat_map(|u| u.iter())
            .any(|u| u.domain.as_ref() == Some(domain));
    if virtual_domain {
        DomainClass::Virtual
    } else if main.relay_domains.iter().any(|r| domain.is_within(r)) {
        DomainClass::Relay
    } else {
        DomainClass::Other
    }
}

/// A verdict in Postfix's words: the access(5) action, and its reply or
/// argument after a colon, as smtpd logs it (`reject: 554 5.7.1 ...`).
fn postfix_words(v: &Verdict) -> String {
    match v {
        Verdict::Dunno => "dunno".to_owned(),
        Verdict::Permit => "permit".to_owned(),
        Verdict::Reject(r) => format!("reject: {r}"),
        Verdict::Defer(r) => format!("defer: {r}"),
        Verdict::DeferIfPermit(r) => format!("defer_if_permit: {r}"),
        Verdict::DeferIfReject(r) => format!("defer_if_reject: {r}"),
        Verdict::Hold(t) => format!("hold: {t}"),
        Verdict::Discard(t) => format!("discard: {t}"),
        Verdict::Prepend(h) => format!("prepend: {h}"),
        Verdict::Redirect(a) => format!("redirect: {a}"),
        Verdict::Bcc(a) => format!("bcc: {a}"),
        Verdict::Warn(t) => format!("warn: {t}"),
        other => format!("{other:?}"),
    }
}

fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Our stage names and Postfix's protocol states, any case.
fn parse_stage(s: &str) -> Result<Stage, String> {
    Ok(match s.to_ascii_lowercase().replace('-', "_").as_str() {
        "client" | "connect" => Stage::Client,
        "helo" | "ehlo" => Stage::Helo,
        "sender" | "mail" => Stage::Sender,
        "relay" => Stage::Relay,
        "recipient" | "rcpt" => Stage::Recipient,
        "data" => Stage::Data,
        "end_of_data" | "end_of_message" => Stage::EndOfData,
        _ => {
            return Err(format!(
                "unknown stage {s:?} (expected client/connect, helo/ehlo, sender/mail, relay, \
                 recipient/rcpt, data, end_of_data/end-of-message)"
            ));
        }
    })
}

/// `KEY=VALUE`; the key may not be empty.
fn parse_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, found {s:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_mail::{EnhancedCode, Reply};

    #[test]
    fn message_files_get_crlf_line_ends() {
        assert_eq!(crlf(b"A: b\n\nbody\r\nx\n"), b"A: b\r\n\r\nbody\r\nx\r\n");
        assert_eq!(crlf(b"\n"), b"\r\n");
    }

    #[test]
    fn stages_by_either_name() {
        assert_eq!(parse_stage("rcpt"), Ok(Stage::Recipient));
        assert_eq!(parse_stage("MAIL"), Ok(Stage::Sender));
        assert_eq!(parse_stage("connect"), Ok(Stage::Client));
        assert_eq!(parse_stage("END-OF-MESSAGE"), Ok(Stage::EndOfData));
        assert_eq!(parse_stage("end_of_data"), Ok(Stage::EndOfData));
        assert!(parse_stage("quit").is_err());
    }

    #[test]
    fn arguments_need_a_key() {
        assert_eq!(parse_arg("a=b=c"), Ok(("a".to_owned(), "b=c".to_owned())));
        assert_eq!(parse_arg("a="), Ok(("a".to_owned(), String::new())));
        assert!(parse_arg("novalue").is_err());
        assert!(parse_arg("=x").is_err());
    }

    #[test]
    fn verdicts_in_postfix_words() {
        let r = Reply::new(
            554,
            EnhancedCode::new(5, 7, 1),
            "<x@example.com>: Relay access denied",
        );
        assert_eq!(
            postfix_words(&Verdict::Reject(r)),
            "reject: 554 5.7.1 <x@example.com>: Relay access denied"
        );
        assert_eq!(postfix_words(&Verdict::Dunno), "dunno");
        assert_eq!(bare("<a@b.example>"), "a@b.example");
    }
}
