//! The command side of the harness: `postern`'s own commands (check,
//! reload, flush, any other) on a test config, and other programs with
//! input on their stdin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{POSTERN, test_config};

/// Runs a Python 3 script with `args`; returns stdout, panics with stderr
/// on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command wrote: its stdout, then its stderr.
pub fn output_text(out: &Output) -> String {
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    String::from_utf8_lossy(stdout).into_owned() + &String::from_utf8_lossy(stderr)
}

/// Runs `postern check` on the config file `config`: whether it passed,
/// and its stderr.
pub fn postern_check(config: &Path) -> (bool, String) {
    let out = Command::new(POSTERN)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `postern check` on the test config with `extra` (written to `dir` by
/// [`test_config`]) must fail naming `says`; its stderr, for more checks.
pub fn check_refuses(dir: &Path, extra: &str, says: &str) -> String {
    let (ok, err) = postern_check(&test_config(dir, extra));
    assert!(!ok, "{extra}: accepted");
    assert!(err.contains(says), "{extra}: {says:?} not in: {err}");
    err
}

/// Runs `postern --config CONFIG ARGS` to its end.
pub fn postern_run(config: &Path, args: &[&str]) -> Output {
    Command::new(POSTERN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `command` to its end with `input` on its stdin, its stdout and
/// stderr captured. A command that exits before it read everything (a
/// refused command line) is no error here: its exit status tells.
pub fn run_with_input(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().unwrap()
}

/// `postern reload` on `config`, which must succeed.
pub fn reload(config: &Path) {
    let out = postern_run(config, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `postern reload` on `config`, which must fail (the running
/// configuration is kept); its stderr, which says why.
pub fn reload_refused(config: &Path) -> String {
    let out = postern_run(config, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "reload accepted: {stderr}");
    stderr
}

/// `postern flush` on `dir/postern.toml` (deferred mail is tried now),
/// which must succeed.
pub fn flush(dir: &Path) {
    let out = postern_run(&dir.join("postern.toml"), &["flush"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
