//! `postern check`, `postern config`, and start-up refusals.

use std::process::Command;

use crate::support::*;

fn postern(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(POSTERN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    std::fs::write(
        &file,
        "myhostname = \"mx.example.com\"\n\
         mydestinaton = \"example.com\"\n\
         mynetworks = [\"127.0.0.0/8\", \"10.1.2.0/33\"]\n\
         smtpd_banner = \"$myhostnme ESMTP\"\n\
         message_size_limit = true\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let (ok, _, err) = postern(&["check", "--config", &f]);
    assert!(!ok);
    for want in [
        format!("{f}:2: mydestinaton: unknown parameter"),
        format!("{f}:3: mynetworks: \"10.1.2.0/33\": prefix length must be 0..=32"),
        format!("{f}:4: smtpd_banner: unknown parameter $myhostnme in value"),
        format!("{f}:5: message_size_limit: expected a non-negative integer, found \"yes\""),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // A good file passes.
    std::fs::write(&file, config_text(tmp.path(), "")).unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let (ok, _, err) = postern(&["check", "--config", &f]);
    assert!(ok, "{err}");
}

#[test]
fn start_refuses_a_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("postern.toml");
    std::fs::write(&file, "[smtpd.restrictions]\nrecipient = [\"permit\"]\n").unwrap();
    let (ok, _, err) = postern(&[
        "start",
        "--foreground",
        "--config",
        &file.display().to_string(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("postern.toml:2: smtpd.restrictions:") && err.contains("open relay"),
        "{err}"
    );
}

#[test]
fn config_prints_expanded_values() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("postern.toml");
    std::fs::write(
        &file,
        "myhostname = \"mail.example.org\"\nmydomain = \"example.org\"\nmyorigin = \"$mydomain\"\nsmtpd_banner = \"$myhostname ESMTP\"\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let (ok, out, _) = postern(&["config", "--config", &f, "-n"]);
    assert!(ok);
    assert_eq!(
        out,
        "mydomain = example.org\nmyhostname = mail.example.org\nmyorigin = example.org\n"
    );
    let (ok, out, _) = postern(&["config", "--config", &f, "mydestination", "myorigin"]);
    assert!(ok);
    assert_eq!(
        out,
        "mydestination = mail.example.org, localhost.example.org, localhost\nmyorigin = example.org\n"
    );
    // Defaults are expanded with defaults only: the machine's host name.
    let (ok, out, _) = postern(&[
        "config",
        "--config",
        &f,
        "-d",
        "message_size_limit",
        "mynetworks",
        "smtpd_banner",
    ]);
    assert!(ok);
    assert!(
        out.starts_with(
            "message_size_limit = 10240000\nmynetworks = 127.0.0.0/8, [::1]/128\nsmtpd_banner = "
        ),
        "{out}"
    );
    assert!(
        out.ends_with(" ESMTP\n") && !out.contains("mail.example.org"),
        "{out}"
    );
    let (ok, out, _) = postern(&["config", "--config", &f, "-d"]);
    assert!(
        ok && out.contains("queue_directory = ") && out.contains("home_mailbox = Maildir/"),
        "{out}"
    );
    let (ok, _, err) = postern(&["config", "--config", &f, "no_such_parameter"]);
    assert!(
        !ok && err.contains("no_such_parameter: unknown parameter"),
        "{err}"
    );
}

#[test]
fn invalid_plugin_stops_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(
        plugins.join("reject_unauth_destination.wasm"),
        b"this is not webassembly",
    )
    .unwrap();
    let extra = format!("plugin_directory = \"{}\"", plugins.display());
    test_config(tmp.path(), &extra);
    let f = tmp.path().join("postern.toml").display().to_string();
    for cmd in [
        &["check", "--config", &f][..],
        &["start", "--foreground", "--config", &f][..],
    ] {
        let (ok, _, err) = postern(cmd);
        assert!(!ok, "{cmd:?} must fail");
        assert!(
            err.contains("reject_unauth_destination.wasm") && err.contains("not a valid"),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn embedded_default_runs_with_no_config() {
    // No /etc/postern/postern.toml is assumed on test machines; the data
    // directory follows XDG_DATA_HOME for a non-root user, and is named.
    if std::path::Path::new("/etc/postern/postern.toml").exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out, err) = postern(&["config", "-n"]);
    assert!(ok, "{err}");
    assert_eq!(out, "", "the embedded default is the defaults");
    let _ = tmp;
}
