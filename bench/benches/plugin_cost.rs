//! The cost of one call of each standard plugin (issue 6): every plugin
//! embedded in the server (`STANDARD_PLUGINS`) loaded alone into the real
//! wasmtime runtime, as a one-entry list at the stage where sites use it,
//! and called through [`Snapshot::check`] with a realistic request (see
//! `plugin_cost_world.rs`): a fresh instance from the pool, `init` with
//! the entry's arguments, `check`, its host calls (tables, kv, DNS), the
//! verdict back. That is what the first request of a transaction reaching
//! the plugin pays when no idle instance waits (`max_use` is 1 here, so
//! every call makes one); later ones in the transaction, and later
//! transactions once the plugin asked for reuse, call `check` on an
//! instance already made (`benches/policy.rs` measures that part).
//!
//! DNS: the `dns` import's real resolver (hickory-resolver, as the
//! server configures it) asking a hickory-server on 127.0.0.1. Measured
//! twice for the plugins that look names up: with the resolver's cache
//! warm (records kept an hour: the plugin's own cost), and uncached
//! (every record and negative answer kept 0 s: each lookup a loopback
//! round trip, so the figure counts the name server's time too, but no
//! network).
//!
//! Run: `cargo bench -p postern-bench --bench plugin_cost` (criterion's
//! report, with its usual options; 1 s of measurement per benchmark by
//! default), or with `-- --save` to write the table to
//! `docs/PLUGIN_COSTS.md` (fixed settings, criterion options ignored).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "plugin_cost_world.rs"]
mod world;

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::Criterion;
use postern_mail::{Decision, PolicyRequest, Verdict};
use postern_policy::{DnsConfig, PolicyConfig, Runtime, STANDARD_PLUGINS, Snapshot};

/// The command that writes the table, as the table names it.
const SAVE_COMMAND: &str = "cargo bench -p postern-bench --bench plugin_cost -- --save";

/// Measurement per benchmark: the table of some 50 plugins, about 70
/// benchmarks with the uncached DNS ones, then takes 2 to 3 minutes.
const MEASUREMENT: Duration = Duration::from_secs(1);
const WARM_UP: Duration = Duration::from_millis(300);
const SAMPLES: usize = 50;

/// One plugin, set up twice: against the caching and the uncached name
/// server.
struct Subject {
    name: &'static str,
    stage: &'static str,
    request: PolicyRequest,
    cached: Snapshot,
    uncached: Snapshot,
    /// The answer of one call, for the table.
    answer: String,
    /// DNS queries one uncached call makes.
    queries: u64,
}

/// A measured median, per call.
#[derive(Default, Clone, Copy)]
struct Row {
    cached: Duration,
    uncached: Option<Duration>,
}

fn snapshot(runtime: &Runtime, name: &str, nameserver: std::net::SocketAddr) -> Snapshot {
    let plan = world::plan(name);
    let mut config = PolicyConfig::default().with(plan.stage, vec![plan.entry]);
    config.tables = world::tables();
    // A fresh instance for every call, and a call for every request
    // (no verdict kept): the cost this table reports.
    config.limits.max_use = 1;
    config.limits.verdict_cache = 0;
    config.dns = DnsConfig {
        nameservers: vec![nameserver],
        timeout: Duration::from_secs(2),
        ..DnsConfig::default()
    };
    runtime
        .load(&config)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What a one-entry list answered, in access(5) words.
fn answer(d: &Decision) -> String {
    let verdict = match (&d.verdict, &d.decided_by) {
        (Verdict::Permit, None) => "dunno".to_owned(),
        (Verdict::Permit, Some(_)) => "permit".to_owned(),
        (Verdict::Reject(r), _) => format!("reject {}", r.code),
        (Verdict::Defer(r), _) => format!("defer {}", r.code),
        (v, _) => format!("{v:?}").to_lowercase(),
    };
    let actions: Vec<String> = d
        .actions
        .iter()
        .map(|a| {
            let a = format!("{a:?}");
            a.split('(').next().unwrap_or_default().to_lowercase()
        })
        .collect();
    if actions.is_empty() {
        verdict
    } else {
        format!("{verdict}, {}", actions.join(", "))
    }
}

fn subjects(rt: &tokio::runtime::Runtime, runtime: &Runtime) -> Vec<Subject> {
    let (cached_ns, _) = world::name_server(3600);
    let (uncached_ns, queries) = world::name_server(0);
    let mut out = Vec::new();
    for &(name, _) in STANDARD_PLUGINS {
        let plan = world::plan(name);
        let request = world::request(name, plan.stage);
        let cached = snapshot(runtime, name, cached_ns);
        let uncached = snapshot(runtime, name, uncached_ns);
        let decision = rt.block_on(cached.check(&request));
        let before = queries.load(Ordering::Relaxed);
        rt.block_on(uncached.check(&request));
        let after = queries.load(Ordering::Relaxed);
        out.push(Subject {
            name,
            stage: plan.stage.command(),
            answer: answer(&decision),
            request,
            cached,
            uncached,
            queries: after - before,
        });
    }
    out
}

/// Benchmarks `s` under `id`; the median of its samples' mean time per
/// call, computed from the same samples as criterion's median.
fn measure(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    id: &str,
    snapshot: &Snapshot,
    request: &PolicyRequest,
) -> Duration {
    let mut samples: Vec<(u64, Duration)> = Vec::new();
    c.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                black_box(rt.block_on(snapshot.check(black_box(request))));
            }
            let took = started.elapsed();
            samples.push((iters, took));
            took
        })
    });
    let mut per_call: Vec<f64> = measurement(&samples)
        .iter()
        .map(|(n, t)| t.as_secs_f64() / (*n).max(1) as f64)
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call
        .get(per_call.len() / 2)
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(*s))
}

/// The samples of the measurement, without the warm-up's: criterion
/// warms up with doubling iteration counts, then takes its samples with
/// counts d, 2d, 3d ... (or all d): the longest tail of the calls whose
/// counts grow by one step.
fn measurement(samples: &[(u64, Duration)]) -> &[(u64, Duration)] {
    let count = |i: usize| i128::from(samples[i].0);
    let n = samples.len();
    if n < 2 {
        return samples;
    }
    let step = count(n - 1) - count(n - 2);
    let mut start = n - 1;
    while start > 0 && count(start) - count(start - 1) == step {
        start -= 1;
    }
    &samples[start..]
}

fn main() {
    let save = std::env::args().any(|a| a == "--save");
    let criterion = Criterion::default()
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .sample_size(SAMPLES)
        .without_plots();
    // Criterion refuses arguments it does not know, `--save` among them.
    let mut c = if save {
        criterion
    } else {
        criterion.configure_from_args()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new().unwrap();
    let load_before = load_average();
    let subjects = subjects(&rt, &runtime);
    let mut rows = Vec::new();
    for s in &subjects {
        let cached = measure(&mut c, &rt, s.name, &s.cached, &s.request);
        let uncached = (s.queries > 0).then(|| {
            let id = format!("{} (uncached DNS)", s.name);
            measure(&mut c, &rt, &id, &s.uncached, &s.request)
        });
        rows.push(Row { cached, uncached });
    }
    let table = table(&subjects, &rows, &load_before, &load_average());
    if save {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PLUGIN_COSTS.md");
        std::fs::write(path, &table).unwrap();
        eprintln!("wrote {path}");
    } else {
        eprintln!("{table}");
    }
}

/// The first line of /proc/loadavg's three figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The machine, as /proc names it.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let kb: u64 = t
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(format!("{} GiB RAM", kb / (1024 * 1024)))
        })
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory}")
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 100.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.0} µs")
    }
}

/// docs/PLUGIN_COSTS.md: one row per plugin, cheapest first.
fn table(subjects: &[Subject], rows: &[Row], before: &str, after: &str) -> String {
    let mut order: Vec<usize> = (0..subjects.len()).collect();
    order.sort_by_key(|&i| rows[i].cached);
    // A benchmark a filter left out has no figure (zero).
    let cheapest = order
        .iter()
        .map(|&i| rows[i].cached)
        .find(|d| !d.is_zero())
        .unwrap_or(Duration::from_nanos(1));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Standard plugins: cost of one call\n\n\
         Written by `{SAVE_COMMAND}` (bench/benches/plugin_cost.rs); do not edit by hand.\n\n\
         Each standard plugin alone in a one-entry restriction list at its usual stage, called \
         through `Snapshot::check` in the real wasmtime runtime with a realistic request (client \
         `mail.test` [192.0.2.10] with FCrDNS, HELO `mail.test`, `a@mail.test` to the local \
         `x@dest.test`, listed nowhere): a fresh instance from the pool, `init`, `check` with \
         its host calls, the verdict back, i.e. the first call of a transaction. Access maps \
         look up a 10-line `hash:` table that has no entry for the request (every key tried). \
         DNS goes through the host's resolver (hickory-resolver) to a hickory-server on \
         127.0.0.1: *cached* with the resolver's cache warm, *uncached* with every answer \
         kept 0 s, so each lookup is a loopback round trip (name server time included). \
         Median of {SAMPLES} criterion samples over {} s per benchmark; ratio to the cheapest \
         plugin's cached median.\n",
        MEASUREMENT.as_secs()
    );
    let _ = writeln!(
        out,
        "- Machine: {}; release (`bench`) profile, wasmtime 48, Cranelift.\n\
         - Load average (1/5/15 min) before: {before}; after: {after}. The machine is shared: \
         compare rows of one run with each other.\n",
        machine()
    );
    let _ = writeln!(
        out,
        "| plugin | stage | answer | median | × cheapest | DNS queries | median, uncached DNS |\n\
         |---|---|---|---:|---:|---:|---:|"
    );
    for i in order {
        let (s, r) = (&subjects[i], rows[i]);
        let ratio = r.cached.as_secs_f64() / cheapest.as_secs_f64();
        let figure = |d: Duration| {
            if d.is_zero() {
                "–".to_owned()
            } else {
                micros(d)
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            s.name,
            s.stage,
            s.answer,
            figure(r.cached),
            if r.cached.is_zero() {
                "–".to_owned()
            } else {
                format!("{ratio:.1}")
            },
            s.queries,
            r.uncached.map_or_else(|| "–".to_owned(), figure),
        );
    }
    out
}
