//! `postern plugin list` and `postern plugin test`, and the Rust starter
//! in `examples/rust-plugin` built the way its README says and run through
//! `plugin test`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::policy_tables::{GUESTS, guest_config, guest_dir};
use crate::support::*;

/// The workspace root.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A config in a fresh directory whose plugin directory holds the test
/// guest `test_hostile`, with `extra` added.
fn setup(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        "smtpd_recipient_restrictions = [\"permit_mynetworks\", \"reject_unauth_destination\"]\n\
         {extra}"
    );
    let config = guest_config(tmp.path(), "test_hostile", &extra);
    (tmp, config)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `plugin test PLUGIN` at RCPT from an outside client, plus `more`.
fn rcpt_test(config: &Path, plugin: &str, recipient: &str, more: &[&str]) -> Output {
    let mut args = vec![
        "plugin",
        "test",
        plugin,
        "--stage",
        "rcpt",
        "--client",
        "192.0.2.1",
        "--helo",
        "client.test.example",
        "--sender",
        "s@client.test.example",
        "--recipient",
        recipient,
    ];
    args.extend_from_slice(more);
    postern_run(config, &args)
}

/// The line of `listing` for plugin `name`, split into columns.
fn row(listing: &str, name: &str) -> Vec<String> {
    listing
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{listing}"))
}

#[test]
fn list_shows_source_digest_size_and_lists() {
    let (tmp, config) = setup(
        "smtpd_sender_restrictions = [{ plugin = \"test_hostile\" }]\n\
         smtpd_helo_restrictions = [\"ghost\"]\n",
    );
    let out = postern_run(&config, &["plugin", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    assert_eq!(
        listing
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "SOURCE", "SHA256", "SIZE", "LISTS"]
    );

    let file = tmp.path().join("plugins/test_hostile.wasm");
    let sha = Command::new("sha256sum").arg(&file).output().unwrap();
    let sha = stdout(&sha).split_whitespace().next().unwrap().to_owned();
    let size = std::fs::metadata(&file).unwrap().len().to_string();
    assert_eq!(
        row(&listing, "test_hostile"),
        [
            "test_hostile".to_owned(),
            file.display().to_string(),
            sha,
            size,
            "sender".to_owned()
        ]
    );

    let mynetworks = row(&listing, "permit_mynetworks");
    assert_eq!(mynetworks[1], "embedded");
    assert_eq!(mynetworks[2].len(), 64, "{listing}");
    assert!(mynetworks[2].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(mynetworks[4], "recipient");
    assert_eq!(row(&listing, "permit_sasl_authenticated")[4], "-");
    assert!(
        stderr(&out).contains("the helo list names plugin ghost, which is neither"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("no control socket"),
        "counters are said to be missing: {}",
        stderr(&out)
    );
}

#[test]
fn list_shows_the_running_servers_counters() {
    let (tmp, config) = setup("");
    let server = Server::start_in(tmp.path());
    // Two trusted recipients (permit_mynetworks permits), then one from
    // outside (dunno, and reject_unauth_destination rejects the relay).
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<bob@example.org>").starts_with("250"));
    let mut outside = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(outside.cmd("EHLO outside.test.example").starts_with("250"));
    assert!(
        outside
            .cmd("MAIL FROM:<s@outside.test.example>")
            .starts_with("250")
    );
    assert!(
        outside
            .cmd("RCPT TO:<x@elsewhere.example>")
            .starts_with("554")
    );

    let out = postern_run(&config, &["plugin", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let header: Vec<&str> = listing.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SOURCE",
            "SHA256",
            "SIZE",
            "LISTS",
            "CALLS",
            "CACHED",
            "INSTANCES",
            "FAILED",
            "P50",
            "P99",
            "VERDICTS"
        ]
    );
    let mynetworks = row(&listing, "permit_mynetworks");
    // Three requests: the second trusted one is answered with the first
    // one's kept verdict (the plugin's verdict is `trusted`'s alone), so
    // two calls, in two transactions still open at once: two instances
    // (one transaction's instance serves only it).
    assert_eq!(mynetworks[5..9], ["2", "1", "2", "0"], "{listing}");
    assert!(
        mynetworks[9].ends_with("us") || mynetworks[9].ends_with("ms"),
        "{listing}"
    );
    assert_eq!(mynetworks[11], "dunno:1,permit:2", "{listing}");
    let relay = row(&listing, "reject_unauth_destination");
    assert_eq!(relay[5..8], ["1", "0", "1"], "{listing}");
    assert_eq!(relay[11], "reject:1", "{listing}");
    // Not in the running snapshot's lists: no counters.
    assert_eq!(
        row(&listing, "test_hostile")[5..],
        ["-", "-", "-", "-", "-", "-", "-"]
    );
    assert!(!stderr(&out).contains("control socket"), "{}", stderr(&out));
}

#[test]
fn test_prints_a_standard_plugins_verdict_as_postfix_says_it() {
    let (_tmp, config) = setup("");
    let out = rcpt_test(&config, "reject_unauth_destination", "x@example.com", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("reject: 554 5.7.1 <x@example.com>: Relay access denied")
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("time: ") && l.ends_with(" ms")),
        "{text}"
    );
    // What the plugin declared its verdicts depend on, which is all the
    // test showed it.
    assert_eq!(
        lines.next(),
        Some("cache: verdicts kept 86400 s by recipient, recipient-class"),
        "{text}"
    );

    // example.org is in mydestination: no opinion.
    let out = rcpt_test(
        &config,
        "reject_unauth_destination",
        "<alice@example.org>",
        &[],
    );
    assert_eq!(
        stdout(&out).lines().next(),
        Some("dunno"),
        "{}",
        stderr(&out)
    );

    // Trusted by flag, or by --client in mynetworks (127.0.0.1/32).
    let out = rcpt_test(&config, "permit_mynetworks", "x@example.com", &[]);
    assert_eq!(stdout(&out).lines().next(), Some("dunno"));
    let out = rcpt_test(
        &config,
        "permit_mynetworks",
        "x@example.com",
        &["--trusted"],
    );
    assert_eq!(stdout(&out).lines().next(), Some("permit"));
    let out = postern_run(
        &config,
        &[
            "plugin",
            "test",
            "permit_mynetworks",
            "--stage",
            "connect",
            "--client",
            "127.0.0.1",
        ],
    );
    assert_eq!(
        stdout(&out).lines().next(),
        Some("permit"),
        "{}",
        stderr(&out)
    );

    // A built-in answers its fixed verdict.
    let out = rcpt_test(&config, "reject", "x@example.com", &[]);
    assert_eq!(
        stdout(&out).lines().next(),
        Some("reject: 554 5.7.1 Access denied")
    );
}

#[test]
fn test_failures_are_reported_with_a_nonzero_exit() {
    let (_tmp, config) = setup("[plugins]\ndeadline = \"300ms\"\n");

    let out = rcpt_test(&config, "no_such_plugin", "x@example.com", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown plugin \"no_such_plugin\""),
        "{}",
        stderr(&out)
    );

    // A bad --arg is refused; the hostile guest's refusal at init and its
    // trap are reported with exit code 1.
    for (arg, code, says) in [
        ("novalue", None, &["expected KEY=VALUE"][..]),
        (
            "init=error",
            Some(1),
            &[
                "plugin test_hostile refused its arguments at recipient",
                "init: refused on purpose",
            ],
        ),
        ("check=trap", Some(1), &["plugin test_hostile failed"]),
    ] {
        let out = rcpt_test(&config, "test_hostile", "x@example.com", &["--arg", arg]);
        match code {
            Some(code) => assert_eq!(out.status.code(), Some(code), "{arg}"),
            None => assert!(!out.status.success(), "{arg}"),
        }
        for says in says {
            assert!(stderr(&out).contains(says), "{arg}: {}", stderr(&out));
        }
    }

    // The [plugins] deadline applies: the loop is cut off after 300 ms.
    let started = Instant::now();
    let out = rcpt_test(
        &config,
        "test_hostile",
        "x@example.com",
        &["--arg", "check=loop"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("deadline: still running after 300ms"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
}

/// Builds `examples/rust-plugin` as its README says, with the guests'
/// target directory and profile (host/policy/build.rs), so that
/// wit-bindgen and its dependencies, already compiled there, are reused.
fn build_starter() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(Path::new(ROOT).join("examples/rust-plugin"))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(Path::new(ROOT).join("target/plugins"));
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs([
        ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s"),
        ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
        ("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"),
        ("CARGO_PROFILE_RELEASE_LTO", "true"),
        ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
        ("CARGO_PROFILE_RELEASE_PANIC", "abort"),
    ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "building the starter: {}",
        stderr(&out)
    );
    Path::new(GUESTS).join("reject_sender_domain.wasm")
}

#[test]
fn the_rust_starter_builds_and_answers() {
    let wasm = build_starter();
    let (tmp, config) = setup("");
    std::fs::copy(&wasm, tmp.path().join("plugins/reject_sender_domain.wasm")).unwrap();
    let mail = |sender: &str, args: &[&str]| {
        let mut a = vec![
            "plugin",
            "test",
            "reject_sender_domain",
            "--stage",
            "mail",
            "--client",
            "192.0.2.1",
            "--helo",
            "mx.spam.example",
            "--sender",
            sender,
        ];
        a.extend_from_slice(args);
        postern_run(&config, &a)
    };

    let out = mail(
        "bad@mx.spam.example",
        &["--arg", "domains=junk.example, spam.example"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().next(),
        Some("reject: 554 5.7.1 <bad@mx.spam.example>: Sender address rejected: Access denied")
    );
    let out = mail(
        "bad@spam.example",
        &[
            "--arg",
            "1=spam.example",
            "--arg",
            "code=450",
            "--arg",
            "text=Not now",
        ],
    );
    assert_eq!(
        stdout(&out).lines().next(),
        Some("reject: 450 4.7.1 <bad@spam.example>: Sender address rejected: Not now"),
        "{}",
        stderr(&out)
    );
    let out = mail("good@notspam.example", &["--arg", "domains=spam.example"]);
    assert_eq!(
        stdout(&out).lines().next(),
        Some("dunno"),
        "{}",
        stderr(&out)
    );

    // init checks the arguments.
    let out = mail("bad@spam.example", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("domains: no domain given"),
        "{}",
        stderr(&out)
    );
    let out = mail(
        "bad@spam.example",
        &["--arg", "domains=spam.example", "--arg", "colour=red"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("colour: unknown argument"),
        "{}",
        stderr(&out)
    );

    // And it is listed with the file it came from.
    let out = postern_run(&config, &["plugin", "list"]);
    let listing = stdout(&out);
    assert!(
        row(&listing, "reject_sender_domain")[1].ends_with("plugins/reject_sender_domain.wasm"),
        "{listing}"
    );
}

#[test]
fn test_hands_a_message_file_to_an_end_of_data_plugin() {
    let (tmp, config) = setup("");
    guest_dir(tmp.path(), "test_session");
    let message = tmp.path().join("offer.eml");
    // LF line ends, as a saved message usually has.
    std::fs::write(
        &message,
        "Subject: offer\nFrom: a@b.example\n\nbuy cheap pills\n",
    )
    .unwrap();
    let test = |word: &str, file: &Path, stage: &str| {
        postern_run(
            &config,
            &[
                "plugin",
                "test",
                "test_session",
                "--stage",
                stage,
                "--arg",
                "do=spam",
                "--arg",
                &format!("word={word}"),
                "--message",
                file.to_str().unwrap(),
            ],
        )
    };
    let out = test("cheap pills", &message, "end_of_data");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("554 5.7.1 spam: cheap pills"),
        "{}",
        stdout(&out)
    );
    let out = test("lottery", &message, "end-of-message");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("prepend: X-Spam-Checked: clean\n"),
        "{}",
        stdout(&out)
    );
    // A message at another stage, or a file that is not there: a clear
    // error and a failing exit.
    let out = test("x", &message, "rcpt");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("end_of_data stage only"),
        "{}",
        stderr(&out)
    );
    let out = test("x", &tmp.path().join("missing.eml"), "end_of_data");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read the message") && stderr(&out).contains("missing.eml"),
        "{}",
        stderr(&out)
    );
}
