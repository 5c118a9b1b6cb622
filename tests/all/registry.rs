//! Plugins through a real OCI registry (Debian's `docker-registry`, the
//! Distribution project's server, on loopback): publish, install by tag,
//! constraint and digest, update, remove, offline start, signatures, a
//! layout directory as a registry, and every way an install can go wrong,
//! each a clear error that leaves the running server and its plugin
//! directory as they were.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::policy_tables::GUESTS;
use crate::support::*;

/// A `docker-registry` on 127.0.0.1, its storage in a temp dir; killed
/// when dropped.
pub(crate) struct Registry {
    child: Option<Child>,
    pub(crate) host: String,
    pub(crate) dir: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start() -> Registry {
        Registry::start_with(|_| String::new())
    }

    /// A registry whose config ends with `extra(its directory)` (YAML).
    pub(crate) fn start_with(extra: impl FnOnce(&Path) -> String) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let extra = extra(dir.path());
        // An ephemeral port, released for the registry to bind.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry must be installed (apt install docker-registry)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < WAIT,
                "docker-registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child: Some(child),
            host: format!("127.0.0.1:{port}"),
            dir,
        }
    }

    /// `oci://HOST/postern/REST`.
    pub(crate) fn r(&self, rest: &str) -> String {
        format!("oci://{}/postern/{rest}", self.host)
    }

    /// Where the registry keeps blob `digest` (its filesystem driver's
    /// layout).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The config of these tests: a plugin directory, and `extra`.
pub(crate) fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let config = dir.join("postern.toml");
    let extra = format!("plugin_directory = \"{}\"\n{extra}", plugins.display());
    std::fs::write(&config, config_text(dir, &extra)).unwrap();
    config
}

/// A fresh directory with users and a config.
pub(crate) fn setup(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let config = write_config(tmp.path(), extra);
    (tmp, config)
}

pub(crate) fn postern(config: &Path, args: &[&str]) -> Output {
    postern_with(config, args, None)
}

/// `postern ARGS` with `auth_file` as its `$REGISTRY_AUTH_FILE`; the
/// machine's own docker/podman logins are never read.
pub(crate) fn postern_with(config: &Path, args: &[&str], auth_file: Option<&Path>) -> Output {
    command(config, args, auth_file).output().unwrap()
}

/// The command `postern ARGS`, not yet run, with `auth_file` as its
/// `$REGISTRY_AUTH_FILE`; the machine's own docker/podman logins are never
/// read.
pub(crate) fn command(config: &Path, args: &[&str], auth_file: Option<&Path>) -> Command {
    let mut command = Command::new(POSTERN);
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env("DOCKER_CONFIG", "/nonexistent");
    if let Some(f) = auth_file {
        command.env("REGISTRY_AUTH_FILE", f);
    }
    command
}

/// Runs `postern ARGS`; it must succeed. Returns stdout.
pub(crate) fn ok(config: &Path, args: &[&str]) -> String {
    let out = postern(config, args);
    assert!(
        out.status.success(),
        "postern {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `postern plugin publish FLAGS FILE REFERENCE`; it must succeed.
/// Returns stdout (`published REF: manifest sha256:..., component
/// sha256:...`).
pub(crate) fn publish(config: &Path, flags: &[&str], file: &Path, reference: &str) -> String {
    let mut args = vec!["plugin", "publish"];
    args.extend_from_slice(flags);
    args.extend([file.to_str().unwrap(), reference]);
    ok(config, &args)
}

/// Runs `postern ARGS`; it must fail. Returns stderr and stdout.
pub(crate) fn fails(config: &Path, args: &[&str]) -> String {
    let out = postern(config, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.status.success(), "postern {args:?} succeeded:\n{text}");
    text
}

/// The test guest that answers what its arguments say.
pub(crate) fn answer() -> PathBuf {
    Path::new(GUESTS).join("test_answer.wasm")
}

/// `test_answer` with a custom section added: the same plugin, other
/// bytes, another digest (a "new version").
pub(crate) fn variant(dir: &Path, n: u8) -> PathBuf {
    let mut bytes = std::fs::read(answer()).unwrap();
    // Section 0 (custom): size, name length, name, payload.
    bytes.extend_from_slice(&[0, 14, 12]);
    bytes.extend_from_slice(b"postern-test");
    bytes.push(n);
    let path = dir.join(format!("answer-{n}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The value after `word ` in `text` (`manifest sha256:...`).
pub(crate) fn after<'a>(text: &'a str, word: &str) -> &'a str {
    let rest = &text[text.find(word).unwrap() + word.len()..];
    rest.split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .unwrap()
}

/// A recipient list whose first entry names `reference`.
fn rejecting(reference: &str) -> String {
    format!(
        "smtpd_recipient_restrictions = [{{ plugin = \"{reference}\", verdict = \"reject\", \
         code = \"550\", enhanced = \"5.7.1\", text = \"the registry plugin says no\" }}, \
         \"reject_unauth_destination\"]"
    )
}

fn rcpt(server: &Server) -> String {
    let (from, to) = ("s@client.test.example", "alice@example.org");
    rcpt_from(server.smtp, "127.0.0.1", "client.test.example", from, to).0
}

pub(crate) fn lock(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("plugins/plugins.lock")).unwrap_or_default()
}

#[test]
fn publish_install_reload_update_remove() {
    let registry = Registry::start();
    let (tmp, config) = setup("");
    let server = Server::start_in(tmp.path());
    let wasm = answer();
    let out = publish(&config, &[], &wasm, &registry.r("answer:1.0.0"));
    assert!(out.contains("published"), "{out}");

    // By constraint: the highest 1.x there is.
    let wanted = registry.r("answer:^1");
    let out = ok(&config, &["plugin", "install", &wanted]);
    assert!(out.contains("postern reload"), "{out}");
    let l = lock(tmp.path());
    assert!(l.contains("tag = \"1.0.0\"") && l.contains(&wanted), "{l}");
    let listing = ok(&config, &["plugin", "list"]);
    assert!(
        listing.contains(&wanted) && listing.contains("INSTALLED"),
        "{listing}"
    );

    // Installed is not in service: a reload with the entry puts it there.
    assert!(rcpt(&server).starts_with("250"));
    write_config(tmp.path(), &rejecting(&wanted));
    ok(&config, &["reload"]);
    server.wait_log("reload -- version");
    let r = rcpt(&server);
    assert!(
        r.starts_with("550 5.7.1 the registry plugin says no"),
        "{r}"
    );

    // A 1.1.0 and a 2.0.0: update takes 1.1.0, as ^1 says.
    let v11 = variant(tmp.path(), 11);
    publish(&config, &[], &v11, &registry.r("answer:1.1.0"));
    publish(&config, &[], &wasm, &registry.r("answer:2.0.0"));
    let out = ok(&config, &["plugin", "update"]);
    assert!(out.contains("updated 1.0.0 -> 1.1.0"), "{out}");
    assert!(lock(tmp.path()).contains("tag = \"1.1.0\""));
    assert_eq!(
        std::fs::read(tmp.path().join("plugins/answer.wasm")).unwrap(),
        std::fs::read(&v11).unwrap()
    );
    let out = ok(&config, &["plugin", "update", &wanted]);
    assert!(out.contains("up to date"), "{out}");
    ok(&config, &["reload"]);
    server.wait_log_count("reload -- version", 2);
    assert!(rcpt(&server).starts_with("550 5.7.1"));

    // Removed: the entry no longer resolves, the reload is refused and
    // the running policy stays.
    let out = ok(&config, &["plugin", "remove", &wanted]);
    assert!(out.contains("removed"), "{out}");
    assert!(!tmp.path().join("plugins/answer.wasm").exists());
    assert!(!lock(tmp.path()).contains(&wanted));
    let err = fails(&config, &["reload"]);
    assert!(
        err.contains(&wanted) && err.contains("plugins.lock"),
        "{err}"
    );
    let err = fails(&config, &["check"]);
    assert!(
        err.contains("smtpd.restrictions.recipient") && err.contains("not in"),
        "{err}"
    );
    assert!(rcpt(&server).starts_with("550 5.7.1"));
    let err = fails(&config, &["plugin", "remove", &wanted]);
    assert!(err.contains("not installed"), "{err}");
}

#[test]
fn install_by_digest_and_start_offline() {
    let mut registry = Registry::start();
    let (tmp, config) = setup("");
    let wasm = answer();
    let out = publish(&config, &[], &wasm, &registry.r("answer:1.0.0"));
    let manifest = after(&out, "manifest ").to_owned();
    let component = after(&out, "component ").to_owned();

    // The manifest's digest, or the component's with the tag.
    let by_digest = format!("{}@{manifest}", registry.r("answer"));
    ok(&config, &["plugin", "install", &by_digest]);
    assert!(lock(tmp.path()).contains(&component));

    // A pin the tag no longer matches.
    let zeros = format!("sha256:{}", "0".repeat(64));
    let pinned = format!("{}@{zeros}", registry.r("answer:1.0.0"));
    let err = fails(&config, &["plugin", "install", &pinned]);
    assert!(
        err.contains("digest mismatch") && err.contains(&zeros),
        "{err}"
    );

    // The registry is gone: start-up needs only the lock and the store.
    registry.stop();
    write_config(tmp.path(), &rejecting(&by_digest));
    let server = Server::start_in(tmp.path());
    let r = rcpt(&server);
    assert!(
        r.starts_with("550 5.7.1 the registry plugin says no"),
        "{r}"
    );
    let out = ok(&config, &["plugin", "verify"]);
    assert!(out.contains("1 installed, 0 failed"), "{out}");

    // Installing needs the registry: a clear error, nothing changed.
    let before = lock(tmp.path());
    let err = fails(&config, &["plugin", "install", &registry.r("answer:1.0.0")]);
    assert!(
        err.contains("unreachable") && err.contains(&registry.host),
        "{err}"
    );
    assert_eq!(lock(tmp.path()), before);
    assert!(rcpt(&server).starts_with("550 5.7.1"));
}

#[test]
fn bad_artifacts_are_refused_and_change_nothing() {
    let registry = Registry::start();
    let (tmp, config) = setup("");
    let server = Server::start_in(tmp.path());
    let plugins = tmp.path().join("plugins");
    let wasm = answer();

    // Unknown tag.
    let err = fails(&config, &["plugin", "install", &registry.r("answer:9.9.9")]);
    assert!(err.contains("no such tag"), "{err}");

    // A tampered blob in the registry's storage.
    let v = variant(tmp.path(), 7);
    let out = publish(&config, &[], &v, &registry.r("tampered:1.0.0"));
    let component = after(&out, "component ").to_owned();
    let mut bytes = std::fs::read(registry.blob_file(&component)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(registry.blob_file(&component), bytes).unwrap();
    let err = fails(
        &config,
        &["plugin", "install", &registry.r("tampered:1.0.0")],
    );
    assert!(
        err.contains("digest mismatch") && err.contains(&component),
        "{err}"
    );

    // A component of another world (the empty component exports nothing),
    // and a core module: publish refuses both unless told not to check.
    let empty = tmp.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = fails(
        &config,
        &[
            "plugin",
            "publish",
            empty.to_str().unwrap(),
            &registry.r("empty:1.0.0"),
        ],
    );
    assert!(err.contains("not a plugin this server can run"), "{err}");
    let err = fails(
        &config,
        &[
            "plugin",
            "publish",
            core.to_str().unwrap(),
            &registry.r("core:1.0.0"),
        ],
    );
    assert!(err.contains("core WebAssembly module"), "{err}");
    for (file, name) in [(&empty, "empty:1.0.0"), (&core, "core:1.0.0")] {
        publish(&config, &["--no-check"], file, &registry.r(name));
    }
    let err = fails(&config, &["plugin", "install", &registry.r("empty:1.0.0")]);
    assert!(
        err.contains("not a plugin this server can run") && err.contains("no export `check`"),
        "{err}"
    );
    let err = fails(&config, &["plugin", "install", &registry.r("core:1.0.0")]);
    assert!(err.contains("core WebAssembly module"), "{err}");

    // No version satisfies the constraint; a bad reference.
    publish(&config, &[], &wasm, &registry.r("answer:1.0.0"));
    let err = fails(&config, &["plugin", "install", &registry.r("answer:^3")]);
    assert!(
        err.contains("no tag satisfies ^3") && err.contains("1.0.0"),
        "{err}"
    );
    let err = fails(&config, &["plugin", "install", "oci://host/Upper/x:1"]);
    assert!(err.contains("bad plugin reference"), "{err}");

    // Nothing was installed, and the server goes on.
    let left: Vec<_> = std::fs::read_dir(&plugins)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".wasm"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(lock(tmp.path()).is_empty());
    ok(&config, &["reload"]);
    assert!(rcpt(&server).starts_with("250"));
}

#[test]
fn signatures_are_required_and_checked() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let (key, stranger) = (tmp.path().join("key"), tmp.path().join("stranger"));
    let (other_tmp, other_config) = setup("");
    let public = ok(&other_config, &["plugin", "keygen", key.to_str().unwrap()]);
    ok(
        &other_config,
        &["plugin", "keygen", stranger.to_str().unwrap()],
    );
    let err = fails(&other_config, &["plugin", "keygen", key.to_str().unwrap()]);
    assert!(err.contains("cannot create"), "{err}");
    drop(other_tmp);
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let trust = format!(
        "[plugins]\ntrusted_keys = [\"{}\"]\nrequire_signatures = true\n",
        public.trim()
    );
    let config = write_config(tmp.path(), &trust);
    let wasm = answer();
    let k = key.to_str().unwrap();

    publish(&config, &[], &wasm, &registry.r("unsigned:1.0.0"));
    let err = fails(
        &config,
        &["plugin", "install", &registry.r("unsigned:1.0.0")],
    );
    assert!(
        err.contains("not signed") && err.contains("require_signatures"),
        "{err}"
    );

    publish(
        &config,
        &["--key", stranger.to_str().unwrap()],
        &wasm,
        &registry.r("stranger:1.0.0"),
    );
    let err = fails(
        &config,
        &["plugin", "install", &registry.r("stranger:1.0.0")],
    );
    assert!(err.contains("not in [plugins] trusted_keys"), "{err}");

    publish(&config, &["--key", k], &wasm, &registry.r("signed:1.0.0"));
    ok(&config, &["plugin", "install", &registry.r("signed:1.0.0")]);
    // Signed after publishing, in place.
    let out = ok(
        &config,
        &["plugin", "sign", "--key", k, &registry.r("unsigned:1.0.0")],
    );
    assert!(out.contains("signed"), "{out}");
    ok(
        &config,
        &["plugin", "install", &registry.r("unsigned:1.0.0")],
    );
    let out = ok(&config, &["plugin", "verify"]);
    assert!(
        out.contains("2 installed, 0 failed") && out.contains("key "),
        "{out}"
    );

    let entry = registry.r("signed:1.0.0");
    write_config(tmp.path(), &format!("{}\n{trust}", rejecting(&entry)));
    let server = Server::start_in(tmp.path());
    assert!(rcpt(&server).starts_with("550 5.7.1"));

    // A changed file fails verify and reload; the server keeps its policy.
    let file = tmp.path().join("plugins/signed.wasm");
    std::fs::write(&file, std::fs::read(variant(tmp.path(), 9)).unwrap()).unwrap();
    let out = fails(&config, &["plugin", "verify"]);
    assert!(
        out.contains("FAILED") && out.contains("digest mismatch"),
        "{out}"
    );
    let err = fails(&config, &["reload"]);
    assert!(
        err.contains("signed.wasm") && err.contains("digest mismatch"),
        "{err}"
    );
    assert!(rcpt(&server).starts_with("550 5.7.1"));
}

#[test]
fn a_layout_directory_is_a_registry() {
    let (tmp, config) = setup("");
    let layout = tmp.path().join("layout/answer");
    let r = format!("file://{}:1.0.0", layout.display());
    let wasm = answer();
    publish(&config, &[], &wasm, &r);
    assert!(layout.join("index.json").exists() && layout.join("oci-layout").exists());
    ok(&config, &["plugin", "install", &r]);
    assert!(tmp.path().join("plugins/answer.wasm").exists());
    let out = ok(&config, &["plugin", "verify"]);
    assert!(out.contains("1 installed, 0 failed"), "{out}");
    // `plugin test` takes the reference too.
    let out = ok(
        &config,
        &[
            "plugin",
            "test",
            &r,
            "--arg",
            "verdict=reject",
            "--arg",
            "code=550",
            "--arg",
            "text=from the layout",
        ],
    );
    assert!(out.contains("from the layout"), "{out}");
    let err = fails(
        &config,
        &[
            "plugin",
            "install",
            &format!("file://{}:2.0.0", layout.display()),
        ],
    );
    assert!(err.contains("no such tag"), "{err}");
    write_config(tmp.path(), &rejecting(&r));
    ok(&config, &["check"]);
    // The string form names a reference as well.
    let line = format!("smtpd_recipient_restrictions = [\"{r}\", \"reject_unauth_destination\"]");
    write_config(tmp.path(), &line);
    ok(&config, &["check"]);
}

#[test]
fn a_python_plugin_travels_the_same_way() {
    let registry = Registry::start();
    let (tmp, config) = setup("");
    let component = crate::plugin_python::component();
    let r = registry.r("sender_blocklist:1.0.0");
    publish(&config, &[], component, &r);
    ok(&config, &["plugin", "install", &r]);
    // A Python instance starts an interpreter: a deadline with room.
    let list = format!(
        "smtpd_sender_restrictions = [{{ plugin = \"{r}\", patterns = \"*@spam.example\" }}]\n\
         [plugins.sender_blocklist]\ndeadline = \"2s\"\n"
    );
    write_config(tmp.path(), &list);
    let server = Server::start_in(tmp.path());
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<offers@spam.example>").starts_with("250"));
    let reply = c.cmd("RCPT TO:<alice@example.org>");
    assert!(
        reply.starts_with("554 5.7.1 <offers@spam.example>"),
        "{reply}"
    );
}
