//! Runs one plugin call many times in a loop and nothing else: a target
//! for a profiler, where criterion's own machinery would be noise.
//!
//! ```sh
//! cargo build --release -p postern-bench --example calls
//! valgrind --tool=callgrind target/release/examples/calls 2000
//! perf record -g target/release/examples/calls 200000
//! ```
//!
//! A second argument sets `max_use`: 1 (the default) makes a fresh
//! instance for every call, as before plugins could ask for reuse; 100
//! (the server's default) has the standard plugin's instance serve call
//! after call (`host.reuse-instances`).
//!
//! With `PLUGIN_DIR=DIR`, `permit_mynetworks` is loaded from
//! `DIR/permit_mynetworks.wasm` instead of the embedded build: an A/B of
//! two builds of one plugin (bench/README.md, "Standard plugins without
//! WASI").

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use postern_mail::{DomainClass, PolicyRequest, Stage, Verdict};
use postern_policy::{Entry, PolicyConfig, Runtime};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let max_use: u32 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let runtime = Runtime::new().unwrap();
    let mut config = PolicyConfig::default().with(
        Stage::Recipient,
        vec![Entry::from_line("permit_mynetworks").unwrap()],
    );
    config.plugin_dir = std::env::var_os("PLUGIN_DIR").map(Into::into);
    config.limits.max_use = max_use;
    // Calls, not kept verdicts (`host.cache-verdicts`).
    config.limits.verdict_cache = 0;
    let snapshot = runtime.load(&config).unwrap();
    let mut request = PolicyRequest::new(Stage::Recipient);
    request.protocol_name = "ESMTP".to_owned();
    request.client_address = Some(IpAddr::from([192, 0, 2, 1]));
    request.client_port = 40000;
    request.helo_name = "client.example.net".to_owned();
    request.sender = "a@example.net".to_owned();
    request.recipient = "x@example.org".to_owned();
    request.recipient_class = Some(DomainClass::Local);
    request.trusted = true;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    for _ in 0..n {
        let d = rt.block_on(snapshot.check(black_box(&request)));
        assert_eq!(d.verdict, Verdict::Permit);
    }
    let took = started.elapsed();
    eprintln!("{n} calls in {took:?}: {:?} each", took / n as u32);
}
