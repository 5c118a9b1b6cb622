//! A few seconds of fuzzing per target on stable Rust (CI's fuzz smoke
//! test, issue 8): inputs made by mutating the committed corpora, run
//! through the same functions libFuzzer calls. Not coverage-guided, so no
//! match for `cargo +nightly fuzz run` (README.md), but it runs where CI
//! runs, every time, on inputs no one has replayed before: a parser change
//! that panics on a near neighbour of a known input fails here.
//!
//! `FUZZ_SMOKE_SECONDS` (default 2) bounds each target; `FUZZ_SMOKE_SEED`
//! repeats a run (the seed is printed). An input that panics is written to
//! `artifacts/TARGET/smoke-SEED-N`, and the test fails naming it: replay
//! it with `cargo +nightly fuzz run TARGET FILE`, or add it to the corpus
//! once fixed. A stack overflow aborts the process before anything can be
//! written; CI runs with `--nocapture`, so its log shows the seed and the
//! target that was running. Each target's inputs follow from the seed
//! alone, so the same seed with `FUZZ_SMOKE_TRACE=FILE` (each input
//! written to FILE before it runs, a quarter of the speed) and a longer
//! `FUZZ_SMOKE_SECONDS` aborts on the same input and leaves it in FILE.
//!
//! The mutator is a few lines of xorshift instead of a crate: libFuzzer's
//! own (`libfuzzer-sys`) needs nightly and its runtime, and `arbitrary`
//! builds values, not the raw bytes these targets parse.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic from the seed, good enough to pick
/// mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

/// Bytes the protocols and files give meaning to: line ends, the DATA
/// terminator and its look-alikes, literals, table and alias syntax.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b".",
    b"\0",
    b"{5}\r\n",
    b"{4294967296+}\r\n",
    b"\"",
    b"\\",
    b":",
    b"@",
    b"<>",
    b"[",
    b"]",
    b"=",
    b"#",
    b"$",
    b"/",
    b" ",
    b"\t",
    b"\xff",
    b"\xc3\xa9",
];

/// The largest input made: past every line limit the targets test.
const MAX_LEN: usize = 16 << 10;

/// One to four mutations of `input`: flip a bit, set a byte, insert or
/// remove bytes, insert a token, repeat a slice, or splice in part of
/// `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = rng.next().to_le_bytes()[0];
            }
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next().to_le_bytes()[0]).collect();
                out.splice(at..at, bytes);
            }
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            5 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(64)).min(out.len());
                let slice = out[start..end].to_vec();
                for _ in 0..=rng.below(8) {
                    out.splice(at..at, slice.iter().copied());
                }
            }
            _ if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(256)).min(other.len());
                out.splice(at..at, other[start..end].iter().copied());
            }
            _ => {}
        }
        out.truncate(MAX_LEN);
    }
    out
}

/// The committed inputs of `name`, read whole.
fn corpus(name: &str) -> Vec<Vec<u8>> {
    postern_fuzz::corpus_files(name)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn mutated_corpora_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seconds = std::env::var("FUZZ_SMOKE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0_f64);
    let seed = std::env::var("FUZZ_SMOKE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    eprintln!("fuzz smoke: seed {seed} (FUZZ_SMOKE_SEED={seed} repeats it), {seconds} s a target");
    // The targets' own checks panic on a bug; keep the panic messages
    // short in the log, the input is what matters.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| eprintln!("fuzz smoke: {info}")));
    let mut failures = Vec::new();
    let trace = std::env::var_os("FUZZ_SMOKE_TRACE").map(PathBuf::from);
    for (name, target) in postern_fuzz::TARGETS {
        eprintln!("fuzz smoke: {name} ...");
        let inputs = corpus(name);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        let mut runs = 0_u64;
        while Instant::now() < until {
            let input = &inputs[rng.below(inputs.len())];
            let other = &inputs[rng.below(inputs.len())];
            let data = mutate(&mut rng, input, other);
            runs += 1;
            if let Some(trace) = &trace {
                std::fs::write(trace, &data).unwrap();
            }
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                let dir = root.join("artifacts").join(name);
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(format!("smoke-{seed}-{runs}"));
                std::fs::write(&path, &data).unwrap();
                failures.push(format!("{name}: {}", path.display()));
                break;
            }
        }
        eprintln!("fuzz smoke: {name}: {runs} inputs");
    }
    std::panic::set_hook(quiet);
    // What the aliases and Maildir targets keep for this process.
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let _ = std::fs::remove_file(tmp.join(format!("postern-fuzz-aliases.{pid}")));
    let _ = std::fs::remove_dir_all(tmp.join(format!("postern-fuzz-maildir.{pid}")));
    assert!(
        failures.is_empty(),
        "inputs that panic (seed {seed}):\n{}",
        failures.join("\n")
    );
}
