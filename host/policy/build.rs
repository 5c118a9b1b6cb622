//! Builds the plugins under `plugins/` for `wasm32-wasip2` and embeds them.
//!
//! Every directory of `plugins/` with a `Cargo.toml` is a plugin crate. They
//! are compiled in release by a nested `cargo build` at the workspace root,
//! into their own target directory (`target/plugins`): the outer build holds
//! the lock of `target/`, so sharing it would deadlock, and a separate
//! directory also keeps the host's flags away from the guests. With
//! `--target wasm32-wasip2`, rustc links each cdylib straight into a
//! component (wasm-component-ld), so no further tool is needed.
//!
//! Output, in `$OUT_DIR/standard_plugins.rs`: `STANDARD_PLUGINS`, the name
//! and bytes of every plugin whose name does not start with `test_` (those
//! are test guests, hostile ones included, that only the tests load). The
//! directory of the built files is exported as `POSTERN_PLUGIN_WASM_DIR`
//! so that tests can load any of them, test guests included.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The guest target. Rust's `wasm32-wasip2` produces components directly.
const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// Plugin crates whose name starts with this are test guests: built, but
/// never embedded.
const TEST_PREFIX: &str = "test_";

/// Variables the outer cargo sets for this script (or that the user set for
/// the host build) which would change what the nested cargo builds: host
/// rustflags, a wrapper such as clippy-driver, the outer target dir or
/// target triple. `CARGO_MAKEFLAGS` stays so that both share one jobserver.
const LEAKING_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
];

/// The guests' release profile, handed to the nested cargo as
/// `CARGO_PROFILE_RELEASE_*` variables: a member crate cannot have a profile
/// of its own, and the root `[profile.release]` is tuned for the host (its
/// debug line tables alone would make each plugin 2.4 MB instead of 70 kB).
/// Small and self-contained: optimised for size, whole-program LTO, no
/// debug info (the `name` section stays, so traps still name functions).
const GUEST_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
    ("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"),
    ("CARGO_PROFILE_RELEASE_LTO", "true"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
    ("CARGO_PROFILE_RELEASE_PANIC", "abort"),
    // A 32 KiB shadow stack instead of rustc's 1 MiB: the stack then sits in
    // the first pages of linear memory with the data right after it, inside
    // the region the instance pool keeps resident between calls
    // (engine.rs KEEP_RESIDENT), so a call does not page-fault its way
    // back into its own stack (one plugin call: p50 17.6 -> 9.3 us,
    // bench/README.md). Policy code recurses little; an overflow runs
    // below address 0 and traps, it never overwrites data.
    (
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
        "-Clink-arg=-zstack-size=32768",
    ),
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // One `cargo::error` per line: cargo prints each as `error: ...`.
            for line in message.lines() {
                println!("cargo::error={line}");
            }
            ExitCode::SUCCESS
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    // host/policy -> the workspace root.
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("CARGO_MANIFEST_DIR has no grandparent")?
        .to_path_buf();
    let plugins_dir = root.join("plugins");
    let target_dir = root.join("target").join("plugins");
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);

    for watched in ["plugins", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo::rerun-if-changed={}", root.join(watched).display());
    }

    let plugins = plugin_crates(&plugins_dir)?;
    if !target_installed()? {
        return Err(missing_target());
    }
    if !plugins.is_empty() {
        build(&root, &target_dir, &plugins)?;
    }

    let wasm_dir = target_dir.join(PLUGIN_TARGET).join("release");
    let mut code = String::from(
        "/// The standard plugins built from `plugins/`, as (name, component bytes).\n\
         pub static STANDARD_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for name in plugins.iter().filter(|n| !n.starts_with(TEST_PREFIX)) {
        let file = wasm_dir.join(format!("{name}.wasm"));
        if !file.is_file() {
            return Err(format!(
                "plugin {name}: the build did not produce {}",
                file.display()
            ));
        }
        let file = file
            .to_str()
            .ok_or_else(|| format!("plugin {name}: path {} is not UTF-8", file.display()))?;
        // `{:?}` writes a Rust string literal, escapes included.
        let _ = writeln!(code, "    ({name:?}, include_bytes!({file:?})),");
    }
    code.push_str("];\n");
    let generated = out_dir.join("standard_plugins.rs");
    fs::write(&generated, code).map_err(|e| format!("{}: {e}", generated.display()))?;
    println!(
        "cargo::rustc-env=POSTERN_PLUGIN_WASM_DIR={}",
        wasm_dir.display()
    );
    Ok(())
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("{name} is not set; run this through cargo"))
}

/// The package names of the plugin crates, sorted: every directory of
/// `plugins/` with a `Cargo.toml`.
fn plugin_crates(plugins_dir: &Path) -> Result<Vec<String>, String> {
    let entries = match fs::read_dir(plugins_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", plugins_dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let dir = entry
            .map_err(|e| format!("{}: {e}", plugins_dir.display()))?
            .path();
        let manifest = dir.join("Cargo.toml");
        // A library the plugins share (plugins/sdk) is not a plugin: only
        // cdylibs become components.
        if manifest.is_file() && is_cdylib(&manifest)? {
            names.push(package_name(&manifest)?);
        }
    }
    names.sort();
    Ok(names)
}

/// Whether the manifest builds a cdylib (`crate-type = ["cdylib"]`): a
/// plain line scan, as for the name.
fn is_cdylib(manifest: &Path) -> Result<bool, String> {
    let text = fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .any(|line| line.starts_with("crate-type") && line.contains("\"cdylib\"")))
}

/// The `name` of the `[package]` table: a plain line scan, enough for the
/// manifests of this repository (no TOML parser in a build script).
fn package_name(manifest: &Path) -> Result<String, String> {
    let text = fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some(value) = line.strip_prefix("name").map(str::trim_start)
            && let Some(value) = value.strip_prefix('=')
        {
            let name = value.trim().trim_matches('"');
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Ok(name.to_owned());
            }
            return Err(format!(
                "{}: plugin package name {name:?} must be letters, digits and '_' \
                 (it is the plugin's name and its file name)",
                manifest.display()
            ));
        }
    }
    Err(format!("{}: no [package] name", manifest.display()))
}

/// Whether the standard library for the guest target is installed, looked
/// up in the sysroot of the rustc cargo gave us.
fn target_installed() -> Result<bool, String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run {rustc}: {e}"))?;
    if !out.status.success() {
        // Unusual setup: let the nested build find out.
        return Ok(true);
    }
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok(Path::new(&sysroot)
        .join("lib")
        .join("rustlib")
        .join(PLUGIN_TARGET)
        .is_dir())
}

fn missing_target() -> String {
    format!("the {PLUGIN_TARGET} target is not installed; run: rustup target add {PLUGIN_TARGET}")
}

/// Runs the nested `cargo build` for `plugins`.
fn build(root: &Path, target_dir: &Path, plugins: &[String]) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            PLUGIN_TARGET,
            "--target-dir",
        ])
        .arg(target_dir);
    for name in plugins {
        cmd.args(["-p", name]);
    }
    for var in LEAKING_ENV {
        cmd.env_remove(var);
    }
    cmd.envs(GUEST_PROFILE.iter().copied());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cargo} to build the plugins: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("target may not be installed")
        || stderr.contains("can't find crate for `core`")
    {
        return Err(missing_target());
    }
    // Cargo's progress lines say nothing about the failure.
    let progress = [
        "Compiling ",
        "Blocking ",
        "Downloading ",
        "Downloaded ",
        "Updating ",
        "Locking ",
    ];
    let details: Vec<&str> = stderr
        .lines()
        .filter(|l| !progress.iter().any(|p| l.trim_start().starts_with(p)))
        .skip_while(|l| l.trim().is_empty())
        .collect();
    Err(format!(
        "building the plugins for {PLUGIN_TARGET} failed ({}):\n{}",
        out.status,
        details.join("\n").trim_end()
    ))
}
