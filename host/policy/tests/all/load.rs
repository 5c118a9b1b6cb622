//! Loading: plugin directories, overrides, unknown names, broken files.

use postern_mail::{Decision, Stage, Verdict};
use postern_policy::{Error, PolicyConfig, Runtime};

use crate::{RUNTIME, lines, plugin_dir, rcpt, wasm};

fn config(dir: &std::path::Path, entries: &[&str]) -> PolicyConfig {
    let mut config = PolicyConfig::default().with(Stage::Recipient, lines(entries));
    config.plugin_dir = Some(dir.to_path_buf());
    config
}

#[test]
fn a_garbage_file_in_the_plugin_dir_fails_the_load() {
    let dir = plugin_dir(&[("garbage.wasm", b"this is not wasm")]);
    // Not even named by a list: the directory must be sound as a whole.
    let err = RUNTIME.load(&config(dir.path(), &["permit"])).unwrap_err();
    assert!(matches!(err, Error::InvalidComponent { .. }), "{err:?}");
    let path = dir.path().join("garbage.wasm");
    let prefix = format!(
        "plugin {}: not a valid WebAssembly component: ",
        path.display()
    );
    assert!(err.to_string().starts_with(&prefix), "{err}");
}

#[test]
fn a_core_module_is_not_a_component() {
    // The smallest valid core module: magic and version.
    let dir = plugin_dir(&[("core.wasm", b"\0asm\x01\0\0\0")]);
    let err = RUNTIME.load(&config(dir.path(), &["core"])).unwrap_err();
    assert!(
        err.to_string()
            .contains("core.wasm: not a valid WebAssembly component"),
        "{err}"
    );
}

#[test]
fn other_files_are_ignored() {
    let dir = plugin_dir(&[("README", b"not a plugin"), ("notes.txt", b"x")]);
    std::fs::create_dir(dir.path().join("sub.wasm")).unwrap();
    RUNTIME
        .load(&config(dir.path(), &["permit_mynetworks"]))
        .unwrap();
}

#[tokio::test]
async fn a_plugin_dir_file_overrides_an_embedded_one() {
    // test_answer without arguments always answers dunno; named
    // permit_mynetworks.wasm it replaces the embedded one.
    let bytes = std::fs::read(wasm("test_answer")).unwrap();
    let dir = plugin_dir(&[("permit_mynetworks.wasm", &bytes)]);
    let trusted = rcpt(true, None);
    let overridden = RUNTIME
        .load(&config(dir.path(), &["permit_mynetworks"]))
        .unwrap();
    assert_eq!(overridden.check(&trusted).await, Decision::permit());
    let embedded = RUNTIME
        .load(&PolicyConfig::default().with(Stage::Recipient, lines(&["permit_mynetworks"])))
        .unwrap();
    let d = embedded.check(&trusted).await;
    assert_eq!(d.decided_by.as_deref(), Some("permit_mynetworks"));
    assert_eq!(d.verdict, Verdict::Permit);
}

#[test]
fn unknown_plugins_name_the_entry() {
    let err = RUNTIME
        .load(&PolicyConfig::default().with(
            Stage::Sender,
            lines(&["permit", "check_policy_service inet:127.0.0.1:10023"]),
        ))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownPlugin { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "sender restrictions: entry \"check_policy_service inet:127.0.0.1:10023\": \
         unknown plugin \"check_policy_service\" (not a standard plugin, and no plugin \
         directory is set)"
    );
    let dir = plugin_dir(&[]);
    let err = RUNTIME
        .load(&config(dir.path(), &["spamassassin"]))
        .unwrap_err();
    assert!(
        err.to_string().ends_with(&format!(
            "no spamassassin.wasm in {})",
            dir.path().display()
        )),
        "{err}"
    );
}

#[test]
fn a_missing_plugin_dir_is_an_error() {
    let dir = plugin_dir(&[]);
    let missing = dir.path().join("nope");
    let err = RUNTIME.load(&config(&missing, &["permit"])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("plugin directory {}: ", missing.display())),
        "{err}"
    );
}

#[tokio::test]
async fn a_runtime_without_embedded_plugins() {
    let bare = Runtime::with_embedded(&[]).unwrap();
    let err = bare
        .load(&PolicyConfig::default().with(Stage::Recipient, lines(&["permit_mynetworks"])))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownPlugin { .. }), "{err:?}");
    let s = bare
        .load(&PolicyConfig::default().with(Stage::Recipient, lines(&["reject"])))
        .unwrap();
    assert_eq!(
        s.check(&rcpt(true, None)).await.verdict,
        Verdict::reject_default()
    );
}
