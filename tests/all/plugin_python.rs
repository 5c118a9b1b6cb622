//! `examples/plugin-python`, a policy plugin written in Python, built with
//! componentize-py and run by a real server: `postern plugin test`
//! answers with it, `postern check` refuses a bad argument, SMTP
//! sessions are refused and accepted by it (the `NOQUEUE: reject:` line
//! naming it), and `postern reload` gives it new arguments.
//!
//! componentize-py must be installed (`.ci/run` installs it with pip);
//! without it the test fails and says how to install it. Its output
//! differs from build to build, so the component is kept under
//! `target/plugin-python/`, named by a hash of its sources, and built
//! again only when they change: wasmtime's compile cache (the shared test
//! cache) then finds it compiled. The first run compiles about 18 MB of
//! WebAssembly (CPython): half a minute with a release build of postern,
//! minutes with the debug build the tests use; later runs take seconds.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::*;

/// The pip package and version `.ci/run` installs.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The built component, once per test binary: built now, or found under
/// `target/plugin-python/` from an earlier run with the same sources.
pub fn component() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let version = match Command::new("componentize-py").arg("--version").output() {
            Ok(out) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
            _ => panic!(
                "componentize-py is not installed; this test builds examples/plugin-python \
                 with it: python3 -m pip install {COMPONENTIZE_PY}"
            ),
        };
        let root = Path::new(ROOT);
        let app = root.join("examples/plugin-python");
        let wit = root.join("wit");
        let mut h = DefaultHasher::new();
        version.hash(&mut h);
        for source in [app.join("app.py"), wit.join("policy.wit")] {
            std::fs::read(&source).unwrap().hash(&mut h);
        }
        let dir = root.join("target/plugin-python");
        std::fs::create_dir_all(&dir).unwrap();
        let built = dir.join(format!("sender_blocklist-{:016x}.wasm", h.finish()));
        if built.is_file() {
            return built;
        }
        let partial = dir.join(format!("sender_blocklist.{}.partial", std::process::id()));
        let out = Command::new("componentize-py")
            .arg("-d")
            .arg(&wit)
            .args(["-w", "plugin", "componentize", "-p"])
            .arg(&app)
            .arg("app")
            .arg("-o")
            .arg(&partial)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "componentize-py failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A rename: a concurrent run sees the whole file or none.
        std::fs::rename(&partial, &built).unwrap();
        built
    })
}

/// A server directory with the component in its plugin directory and
/// `list` as its sender restrictions; the config's path.
fn setup(dir: &Path, list: &str) -> PathBuf {
    std::fs::write(dir.join("users"), USERS).unwrap();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(component(), plugins.join("sender_blocklist.wasm")).unwrap();
    let config = dir.join("postern.toml");
    write_config(&config, &plugins, list);
    config
}

fn write_config(config: &Path, plugins: &Path, list: &str) {
    let dir = config.parent().unwrap();
    // A Python instance starts an interpreter: ~10 ms in a release build,
    // more in a debug one on a loaded machine, so a deadline with room.
    let extra = format!(
        "plugin_directory = \"{}\"\n\
         smtpd_sender_restrictions = {list}\n\
         [plugins.sender_blocklist]\n\
         deadline = \"2s\"\n",
        plugins.display()
    );
    std::fs::write(config, config_text(dir, &extra)).unwrap();
}

/// MAIL FROM `sender`, then RCPT TO: the RCPT reply (sender restrictions
/// are evaluated at RCPT, smtpd_delay_reject).
fn mail_from(server: &Server, sender: &str) -> String {
    let to = "alice@example.org";
    rcpt_from(server.smtp, "127.0.0.2", "mx.sender.example", sender, to).0
}

#[test]
fn a_python_plugin_tests_serves_and_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(
        tmp.path(),
        "[\"sender_blocklist *@spam.example /^[0-9]+@/\"]",
    );

    // `postern plugin test`, as the README says; its first run compiles
    // the component into the shared cache the server then reads.
    let out = postern_run(
        &config,
        &[
            "plugin",
            "test",
            "sender_blocklist",
            "--stage",
            "mail",
            "--sender",
            "Bad@Spam.Example",
            "--arg",
            "1=*@spam.example",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(
            "reject: 554 5.7.1 <Bad@Spam.Example>: Sender address rejected: Access denied\n"
        ),
        "{stdout}"
    );
    // init refuses a bad argument and names it.
    let out = postern_run(
        &config,
        &[
            "plugin",
            "test",
            "sender_blocklist",
            "--stage",
            "mail",
            "--arg",
            "1=/[x/",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refused its arguments") && stderr.contains("pattern '/[x/'"),
        "{stderr}"
    );

    // `postern check` (and so start-up and reload) refuses an entry whose
    // arguments init refuses, naming the plugin and the argument.
    let bad = tempfile::tempdir().unwrap();
    let bad_config = setup(
        bad.path(),
        "[{ plugin = \"sender_blocklist\", patterns = \"*@spam.example\", colour = \"red\" }]",
    );
    let out = postern_run(&bad_config, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("sender_blocklist")
            && stderr.contains("colour: unknown argument (expected patterns, code or text)"),
        "{stderr}"
    );

    let server = Server::start_in(tmp.path());
    let r = mail_from(&server, "offers@spam.example");
    assert_eq!(
        r,
        "554 5.7.1 <offers@spam.example>: Sender address rejected: Access denied\r\n"
    );
    let log = server.wait_log("NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1");
    assert!(
        log.contains("Sender address rejected: Access denied; from=<offers@spam.example>")
            && log.contains("plugin=sender_blocklist"),
        "{log}"
    );
    assert!(mail_from(&server, "12345@numbers.example").starts_with("554 5.7.1"));
    // Anyone else is let through, and the message delivered.
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    send_accepted(
        &mut c,
        "friend@good.example",
        &["alice@example.org"],
        "Subject: hi\r\n\r\nhello\r\n",
    );
    wait_messages(&server.new_dir("alice"), 1);

    // New arguments through `postern reload`: a table entry, a soft code.
    write_config(
        &config,
        &tmp.path().join("plugins"),
        "[{ plugin = \"sender_blocklist\", patterns = \"*@good.example\", code = \"450\", \
         text = \"Try later\" }]",
    );
    reload(&config);
    server.wait_log("reload -- version");
    assert_eq!(
        mail_from(&server, "friend@good.example"),
        "450 4.7.1 <friend@good.example>: Sender address rejected: Try later\r\n"
    );
    assert!(mail_from(&server, "offers@spam.example").starts_with("250"));
}
