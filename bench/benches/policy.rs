//! The policy runtime's benchmarks (issue 3): one plugin call including
//! instantiation, and a chain of 8 plugins at RCPT, each through
//! [`Snapshot::check`] as an SMTP session calls it. A built-in `permit`
//! is the baseline: what the chain costs without WebAssembly. Both plugin
//! benchmarks run twice: with the instance pool (the default runtime) and
//! on demand (`Pool { instances: 0 }`), the cost without the pool and of a
//! call that finds it full.
//!
//! Criterion reports means and medians; the p50 and p99 of single calls
//! that issue 3 asks for are measured here too, over 20 000 timed calls
//! each, and printed before criterion's own output.
//!
//! Run: `cargo bench -p postern-bench` (figures in bench/README.md).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use postern_mail::{DomainClass, Policy, PolicyRequest, PolicySession, Stage, Verdict};
use postern_policy::{Entry, PolicyConfig, Pool, Runtime, STANDARD_PLUGINS, Snapshot};

/// Where `host/policy/build.rs` puts the plugins it builds, test guests
/// included.
fn guest(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/wasm32-wasip2/release")
        .join(format!("{name}.wasm"))
}

fn table(pairs: &[(&str, &str)]) -> Entry {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Entry::from_table(map).unwrap()
}

/// A RCPT TO request from an untrusted client to a local recipient: the
/// standard plugins all answer `dunno` to it, so a chain runs to its end.
fn rcpt() -> PolicyRequest {
    let mut r = PolicyRequest::new(Stage::Recipient);
    r.protocol_name = "ESMTP".to_owned();
    r.client_address = Some(IpAddr::from([192, 0, 2, 1]));
    r.client_port = 40000;
    r.helo_name = "client.example.net".to_owned();
    r.sender = "a@example.net".to_owned();
    r.recipient = "x@example.org".to_owned();
    r.recipient_class = Some(DomainClass::Local);
    r
}

/// The benchmarked snapshots, built once.
struct Setup {
    runtime: Runtime,
    /// The same with `Pool { instances: 0 }`: every instance allocated on
    /// demand, as before the pool (and as a call does when it is full).
    on_demand: Runtime,
    _plugins: tempfile::TempDir,
    plugin_dir: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let plugins = tempfile::tempdir().unwrap();
        std::fs::copy(
            guest("test_answer"),
            plugins.path().join("test_answer.wasm"),
        )
        .expect("build the plugins first: cargo build -p postern-policy");
        Setup {
            runtime: Runtime::new().unwrap(),
            on_demand: Runtime::with_pool(
                STANDARD_PLUGINS,
                None,
                Pool {
                    instances: 0,
                    ..Pool::default()
                },
            )
            .unwrap(),
            plugin_dir: plugins.path().to_path_buf(),
            _plugins: plugins,
        }
    }

    /// A snapshot of `entries` whose instances serve one transaction
    /// each (`max_use` 1): what these rows measure is a call with a
    /// fresh instance, as before the standard plugins asked for reuse.
    fn snapshot(&self, runtime: &Runtime, entries: Vec<Entry>) -> Snapshot {
        self.snapshot_with(runtime, entries, 1)
    }

    /// Every row but "kept verdict" measures calls: no verdict is kept
    /// (`verdict_cache` 0), although the standard plugins declare what
    /// theirs depend on.
    fn snapshot_with(&self, runtime: &Runtime, entries: Vec<Entry>, max_use: u32) -> Snapshot {
        self.snapshot_keeping(runtime, entries, max_use, 0)
    }

    fn snapshot_keeping(
        &self,
        runtime: &Runtime,
        entries: Vec<Entry>,
        max_use: u32,
        verdict_cache: usize,
    ) -> Snapshot {
        let mut config = PolicyConfig::default().with(Stage::Recipient, entries);
        config.plugin_dir = Some(self.plugin_dir.clone());
        config.limits.max_use = max_use;
        config.limits.verdict_cache = verdict_cache;
        runtime.load(&config).unwrap()
    }

    /// The same plugin, its verdict kept (`host.cache-verdicts`, the
    /// default `verdict_cache`): a request like the last one is answered
    /// without a call.
    fn one_kept(&self) -> Snapshot {
        self.snapshot_keeping(
            &self.runtime,
            vec![Entry::from_line("permit_mynetworks").unwrap()],
            100,
            postern_policy::Limits::default().verdict_cache,
        )
    }

    /// `permit` alone: no plugin, the chain's own cost.
    fn builtin(&self) -> Snapshot {
        self.snapshot(&self.runtime, vec![Entry::from_line("permit").unwrap()])
    }

    /// One standard plugin answering `permit`.
    fn one(&self, runtime: &Runtime) -> Snapshot {
        self.snapshot(
            runtime,
            vec![Entry::from_line("permit_mynetworks").unwrap()],
        )
    }

    /// The same, its instance serving one transaction after another
    /// (the standard plugins ask for reuse; `max_use` 100, the default).
    fn one_reused(&self) -> Snapshot {
        self.snapshot_with(
            &self.runtime,
            vec![Entry::from_line("permit_mynetworks").unwrap()],
            100,
        )
    }

    /// Eight plugins, all answering `dunno`, so that every one runs: the
    /// three standard ones and five test_answer entries.
    fn chain8(&self, runtime: &Runtime) -> Snapshot {
        let mut entries = vec![
            Entry::from_line("permit_mynetworks").unwrap(),
            Entry::from_line("permit_sasl_authenticated").unwrap(),
            Entry::from_line("reject_unauth_destination").unwrap(),
        ];
        // Different arguments, so that each entry has an instance of its
        // own (entries that would make the same instance share one).
        for i in 0..5 {
            let text = i.to_string();
            entries.push(table(&[
                ("plugin", "test_answer"),
                ("verdict", "dunno"),
                ("text", &text),
            ]));
        }
        self.snapshot(runtime, entries)
    }
}

/// p50 and p99 of `n` single calls of `snapshot` for `request`; with
/// `session`, in one SMTP session whose transaction never ends (the
/// instances are made by the first call and kept).
fn percentiles(
    rt: &tokio::runtime::Runtime,
    snapshot: &Snapshot,
    request: &PolicyRequest,
    n: usize,
    session: bool,
) -> (Duration, Duration) {
    let mut held = PolicySession::new();
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            if session {
                black_box(rt.block_on(snapshot.check_in(&mut held, request)));
            } else {
                black_box(rt.block_on(snapshot.check(request)));
            }
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n * 99 / 100])
}

fn policy(c: &mut Criterion) {
    let setup = Setup::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut trusted = rcpt();
    trusted.trusted = true;
    let untrusted = rcpt();
    let builtin = setup.builtin();
    let one = setup.one(&setup.runtime);
    let chain8 = setup.chain8(&setup.runtime);
    let one_reused = setup.one_reused();
    let one_kept = setup.one_kept();
    let one_on_demand = setup.one(&setup.on_demand);
    let chain8_on_demand = setup.chain8(&setup.on_demand);
    assert_eq!(
        rt.block_on(one.check(&trusted)).verdict,
        Verdict::Permit,
        "permit_mynetworks must answer"
    );
    let d = rt.block_on(chain8.check(&untrusted));
    assert_eq!((d.verdict, d.decided_by), (Verdict::Permit, None));

    for (name, snapshot, request, session) in [
        ("builtin permit", &builtin, &trusted, false),
        ("one plugin call", &one, &trusted, false),
        ("chain of 8 plugins at RCPT", &chain8, &untrusted, false),
        (
            "one plugin call, instance reused across transactions",
            &one_reused,
            &trusted,
            false,
        ),
        ("one plugin, kept verdict", &one_kept, &trusted, false),
        (
            "one plugin call, on demand",
            &one_on_demand,
            &trusted,
            false,
        ),
        (
            "chain of 8, on demand",
            &chain8_on_demand,
            &untrusted,
            false,
        ),
        (
            "one plugin call, instance kept by the session",
            &one,
            &trusted,
            true,
        ),
        (
            "chain of 8 at RCPT, instances kept by the session",
            &chain8,
            &untrusted,
            true,
        ),
    ] {
        let (p50, p99) = percentiles(&rt, snapshot, request, 20_000, session);
        eprintln!("{name}: p50 {p50:?}, p99 {p99:?} (20000 calls)");
    }

    let mut group = c.benchmark_group("policy");
    group.bench_function("builtin permit", |b| {
        b.iter(|| rt.block_on(builtin.check(black_box(&trusted))))
    });
    group.bench_function("one plugin call incl. instantiation", |b| {
        b.iter(|| rt.block_on(one.check(black_box(&trusted))))
    });
    group.bench_function("chain of 8 plugins at RCPT", |b| {
        b.iter(|| rt.block_on(chain8.check(black_box(&untrusted))))
    });
    group.bench_function("one plugin, kept verdict", |b| {
        b.iter(|| rt.block_on(one_kept.check(black_box(&trusted))))
    });
    group.bench_function("one plugin call, on demand (no pool)", |b| {
        b.iter(|| rt.block_on(one_on_demand.check(black_box(&trusted))))
    });
    group.bench_function("chain of 8 plugins at RCPT, on demand (no pool)", |b| {
        b.iter(|| rt.block_on(chain8_on_demand.check(black_box(&untrusted))))
    });
    let mut held = PolicySession::new();
    group.bench_function("one plugin call, instance kept by the session", |b| {
        b.iter(|| rt.block_on(one.check_in(&mut held, black_box(&trusted))))
    });
    let mut held = PolicySession::new();
    group.bench_function(
        "chain of 8 plugins at RCPT, instances kept by the session",
        |b| b.iter(|| rt.block_on(chain8.check_in(&mut held, black_box(&untrusted)))),
    );
    group.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
