//! The stable-Rust replay of the committed corpora: every file under
//! `corpus/TARGET/` (crashes found and fixed are kept there too) goes
//! through the same function libFuzzer calls. CI runs it, then two seconds
//! of each target on mutations of the corpora (smoke.rs); real fuzzing is
//! `cargo +nightly fuzz run TARGET` (see README.md).

#[test]
fn corpora_replay_cleanly() {
    let mut total = 0;
    for (name, target) in postern_fuzz::TARGETS {
        let paths = postern_fuzz::corpus_files(name);
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
