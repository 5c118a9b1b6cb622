//! Registry credentials against a real `docker-registry` that requires
//! HTTP Basic authentication (its htpasswd file, bcrypt): publish and
//! install with the config's `username` and `password_file`, or with a
//! `docker login`-style auth file; without them, or with a wrong
//! password, a clear "authentication required" error; and the password is
//! never printed.

use std::path::Path;

use base64::Engine as _;

use crate::registry::{Registry, answer, fails, lock, postern_with, setup, write_config};
use crate::support::output_text;

const USER: &str = "publisher";
const PASSWORD: &str = "c0rrect-h0rse-battery";

/// A registry that lets in `USER` with `PASSWORD` only.
fn start() -> Registry {
    Registry::start_with(|dir| {
        let hash = bcrypt::hash_with_result(PASSWORD, 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
        format!(
            "auth:\n  htpasswd:\n    realm: postern-test\n    path: {}\n",
            htpasswd.display()
        )
    })
}

/// The `[plugins.registries]` table for `registry` with `password`.
fn credentials(dir: &Path, registry: &Registry, password: &str) -> String {
    let file = dir.join("registry.password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    format!(
        "[plugins.registries.\"{}\"]\nusername = \"{USER}\"\npassword_file = \"{}\"\n",
        registry.host,
        file.display()
    )
}

/// Runs `postern ARGS`; returns (success, stdout and stderr).
fn run(config: &Path, args: &[&str], auth_file: Option<&Path>) -> (bool, String) {
    let out = postern_with(config, args, auth_file);
    let text = output_text(&out);
    assert!(
        !text.contains(PASSWORD),
        "the password was printed:\n{text}"
    );
    (out.status.success(), text)
}

#[test]
fn credentials_from_config_or_auth_file() {
    let registry = start();
    let (tmp, config) = setup("");
    let wasm = answer();
    let w = wasm.to_str().unwrap();
    let r = registry.r("answer:1.0.0");

    // Anonymous: refused both ways, and said why.
    let err = fails(&config, &["plugin", "publish", w, &r]);
    assert!(
        err.contains("authentication required")
            && err.contains(&registry.host)
            && err.contains("password_file"),
        "{err}"
    );

    // The config's credentials.
    let with = credentials(tmp.path(), &registry, PASSWORD);
    write_config(tmp.path(), &with);
    let (ok, out) = run(&config, &["plugin", "publish", w, &r], None);
    assert!(ok && out.contains("published"), "{out}");
    let (ok, out) = run(&config, &["plugin", "install", &r], None);
    assert!(ok && out.contains("installed"), "{out}");
    assert!(lock(tmp.path()).contains(&r));
    // A constraint lists tags: authenticated too.
    let (ok, out) = run(&config, &["plugin", "update"], None);
    assert!(ok && out.contains("up to date"), "{out}");

    // Without credentials, an install is refused as the publish was.
    write_config(tmp.path(), "");
    let (ok, err) = run(&config, &["plugin", "install", &r], None);
    assert!(
        !ok && err.contains("authentication required") && err.contains("no credentials"),
        "{err}"
    );

    // A wrong password: refused, the user named, the password not.
    write_config(
        tmp.path(),
        &credentials(tmp.path(), &registry, "wrong-password"),
    );
    let (ok, err) = run(&config, &["plugin", "install", &r], None);
    assert!(
        !ok && err.contains("authentication required")
            && err.contains(&format!("credentials of {USER} were refused")),
        "{err}"
    );

    // A `docker login` auth file, through $REGISTRY_AUTH_FILE.
    write_config(tmp.path(), "");
    let (ok, out) = run(&config, &["plugin", "remove", &r], None);
    assert!(ok, "{out}");
    let auth_file = tmp.path().join("auth.json");
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &auth_file,
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{pair}\"}}}}}}",
            registry.host
        ),
    )
    .unwrap();
    let (ok, out) = run(
        &config,
        &["plugin", "publish", w, &registry.r("answer:1.1.0")],
        Some(&auth_file),
    );
    assert!(ok, "{out}");
    let (ok, out) = run(
        &config,
        &["plugin", "install", &registry.r("answer:^1")],
        Some(&auth_file),
    );
    assert!(ok && out.contains("installed"), "{out}");
}
