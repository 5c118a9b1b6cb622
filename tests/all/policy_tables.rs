//! `[tables.NAME]`: `postern table query` (postmap -q), errors that name
//! the table file's line, and a plugin looking a table up through the
//! `tables` import in a real server, with the table re-read on reload.

use std::path::{Path, PathBuf};

use crate::support::*;

/// Where `host/policy/build.rs` puts every plugin it builds, test guests
/// included.
pub const GUESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/plugins/wasm32-wasip2/release"
);

/// A plugin directory under `dir` holding the test guest `name`.
pub fn guest_dir(dir: &Path, name: &str) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        Path::new(GUESTS).join(format!("{name}.wasm")),
        plugins.join(format!("{name}.wasm")),
    )
    .unwrap();
    plugins
}

/// Writes the test config to `dir` ([`test_config`]) with a plugin
/// directory holding the test guest `guest`, and `extra` (naming it);
/// the config's path.
pub fn guest_config(dir: &Path, guest: &str, extra: &str) -> PathBuf {
    let plugins = guest_dir(dir, guest);
    let plugins = plugins.display();
    test_config(dir, &format!("plugin_directory = \"{plugins}\"\n{extra}"))
}

fn tables_config(dir: &Path) -> String {
    let d = dir.display();
    std::fs::write(
        dir.join("access"),
        "# senders\nspammer@example.com   REJECT No thanks\nFriend@Example.NET OK\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("nets"),
        "192.0.2.0/24 DUNNO docs\n0.0.0.0/0 REJECT\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("re"),
        "/^(.*)@bad\\.example$/ REJECT bad user $1\n",
    )
    .unwrap();
    format!(
        "[tables.access]\ntype = \"hash\"\npath = \"{d}/access\"\n\
         [tables.nets]\ntype = \"cidr\"\npath = \"{d}/nets\"\n\
         [tables.re]\ntype = \"regexp\"\npath = \"$data_directory/re\"\n"
    )
}

#[test]
fn table_query_prints_the_value_or_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("postern.toml");
    std::fs::write(&config, config_text(tmp.path(), &tables_config(tmp.path()))).unwrap();
    let q = |name: &str, key: &str| postern_run(&config, &["table", "query", name, key]);

    let out = q("access", "SPAMMER@example.com");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "REJECT No thanks\n");
    let out = q("nets", "192.0.2.44");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "DUNNO docs\n");
    let out = q("re", "joe@bad.example");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "REJECT bad user joe\n"
    );

    let out = q("access", "nobody@example.com");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let out = q("nope", "x");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no table \"nope\"") && err.contains("access, nets, re"),
        "{err}"
    );
}

#[test]
fn a_broken_table_is_named_with_its_line_by_check_and_query() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("postern.toml");
    std::fs::write(&config, config_text(tmp.path(), &tables_config(tmp.path()))).unwrap();
    std::fs::write(
        tmp.path().join("nets"),
        "192.0.2.0/24 OK\n\n10.1.2.3/8 REJECT\n",
    )
    .unwrap();
    let nets = tmp.path().join("nets");
    let expected = format!(
        "{}:3: \"10.1.2.3/8\": non-null host address bits; the network is 10.0.0.0/8",
        nets.display()
    );
    let out = postern_run(&config, &["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tables.nets: ") && err.contains(&expected),
        "{err}"
    );
    let out = postern_run(&config, &["table", "query", "nets", "10.0.0.1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected));

    // Config mistakes name the config line.
    let extra = "[tables.x]\ntype = \"btree\"\npath = \"/x\"\n[dns]\nnameservers = [\"nowhere\"]\n";
    std::fs::write(&config, config_text(tmp.path(), extra)).unwrap();
    let out = postern_run(&config, &["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("missing type"), "{err}");
    assert!(
        err.contains(
            ":10: tables.x.type: unknown table type \"btree\" (expected hash, cidr or regexp)"
        ),
        "{err}"
    );
    assert!(
        err.contains(":13: dns.nameservers: \"nowhere\" is not a name server address"),
        "{err}"
    );
}

#[test]
fn a_plugin_looks_tables_up_and_reload_rereads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        "smtpd_sender_restrictions = [{{ plugin = \"test_lookup\", check = \"table\", table = \"access\" }}]\n\
         {}",
        tables_config(tmp.path())
    );
    let config = guest_config(tmp.path(), "test_lookup", &extra);
    let server = Server::start_in(tmp.path());

    let spammer = || {
        let (from, to) = ("spammer@example.com", "alice@example.org");
        rcpt_from(server.smtp, "127.0.0.1", "client.test.example", from, to)
    };
    let (r, _) = spammer();
    assert!(r.starts_with("554 5.7.1 REJECT No thanks"), "{r}");

    // The table changes; SIGHUP re-reads it.
    std::fs::write(
        tmp.path().join("access"),
        "spammer@example.com   Changed our minds\n",
    )
    .unwrap();
    reload(&config);
    server.wait_log("reload -- version");
    let (r, mut c) = spammer();
    assert!(r.starts_with("554 5.7.1 Changed our minds"), "{r}");

    // A broken table refuses the reload; the running tables stay.
    std::fs::write(tmp.path().join("access"), "lonely\n").unwrap();
    let stderr = reload_refused(&config);
    assert!(stderr.contains("access:1: expected"), "{stderr}");
    let log = server.wait_log("reload failed, keeping the running policy");
    assert!(
        log.contains("access:1: expected \"key value\", found only \"lonely\""),
        "{log}"
    );
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("554 5.7.1 Changed our minds"), "{r}");
}
