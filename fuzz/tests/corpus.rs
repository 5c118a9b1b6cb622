//! The stable-Rust replay of the committed corpora: every file under
//! `corpus/TARGET/` (crashes found and fixed are kept there too) goes
//! through the same function libFuzzer calls. This is CI's fuzz smoke test;
//! real fuzzing is `cargo +nightly fuzz run TARGET` (see README.md).

use std::path::Path;

#[test]
fn corpora_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut total = 0;
    for (name, target) in postern_fuzz::TARGETS {
        let dir = root.join("corpus").join(name);
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in &paths {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", path.display());
        }
        let files = paths.len();
        assert!(files > 0, "{name}: no corpus under corpus/{name}/");
        total += files;
    }
    eprintln!(
        "replayed {total} inputs over {} targets",
        postern_fuzz::TARGETS.len()
    );
    // The aliases file and Maildir the targets keep for this process.
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let _ = std::fs::remove_file(tmp.join(format!("postern-fuzz-aliases.{pid}")));
    let _ = std::fs::remove_dir_all(tmp.join(format!("postern-fuzz-maildir.{pid}")));
}
