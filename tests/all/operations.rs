//! Running Postern as a service (issue 10): the systemd unit, sd_notify,
//! `postern status`, the Prometheus endpoint and `maillog_file`.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::metrics_ops::scrape as http_get;
use crate::support::*;

#[test]
fn the_example_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/postern.service"
    ))
    .unwrap();
    assert!(unit.contains("Type=notify"), "{unit}");
    assert!(
        unit.contains("ExecReload=/usr/sbin/postern reload"),
        "{unit}"
    );
    // verify checks that the binaries exist: point them at the one built.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("postern.service");
    std::fs::write(&path, unit.replace("/usr/sbin/postern", POSTERN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt install systemd) runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Any complaint about our unit is a failure, even a warning.
    assert!(!stderr.contains("postern.service"), "{stderr}");
}

/// The next datagram on `socket`, or a failure after the bound.
fn next_notice(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the bound");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config(tmp.path(), "");
    let socket_path = tmp.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let log = std::fs::File::create(tmp.path().join("stderr")).unwrap();
    let mut child = foreground(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .stderr(log)
        .spawn()
        .unwrap();

    let ready = next_notice(&socket);
    assert!(ready.contains("READY=1\n"), "{ready:?}");
    assert!(ready.contains("STATUS=serving"), "{ready:?}");
    // The control socket answers by the time READY=1 is sent.
    reload(&config);
    let reloading = next_notice(&socket);
    assert!(reloading.contains("RELOADING=1\n"), "{reloading:?}");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    let again = next_notice(&socket);
    assert!(again.contains("READY=1\n"), "{again:?}");
    assert!(again.contains("last reload ok"), "{again:?}");

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let stopping = next_notice(&socket);
    assert!(stopping.contains("STOPPING=1\n"), "{stopping:?}");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < WAIT, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn status_tells_listeners_queue_plugins_and_the_last_reload() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let out = postern_run(&config, &["status"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the mail system is running: PID:"),
        "{stderr}"
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&format!("listener: smtp {}", server.smtp)),
        "{text}"
    );
    assert!(text.contains("uptime: "), "{text}");
    assert!(
        text.contains("queue: incoming 0, active 0, deferred 0, hold 0, corrupt 0, maildrop 0"),
        "{text}"
    );
    assert!(text.contains(" in service, set sha256:"), "{text}");
    assert!(text.contains("last reload: none since start"), "{text}");
    let digest = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("plugins: "))
            .unwrap()
            .to_owned()
    };
    let before = digest(&text);

    // A reload that fails is reported with its reason; the set is kept.
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(plugins.join("permit_mynetworks.wasm"), b"\0asm garbage").unwrap();
    let extra = format!("plugin_directory = \"{}\"", plugins.display());
    std::fs::write(&config, config_text(tmp.path(), &extra)).unwrap();
    reload_refused(&config);
    let text = String::from_utf8_lossy(&postern_run(&config, &["status"]).stdout).into_owned();
    assert!(text.contains("last reload: failed"), "{text}");
    assert!(text.contains("running set kept"), "{text}");
    assert_eq!(digest(&text), before);

    // A reload with a shorter list changes the set's digest.
    std::fs::write(
        &config,
        config_text(
            tmp.path(),
            "smtpd_recipient_restrictions = [\"permit_mynetworks\", \"reject_unauth_destination\"]",
        ),
    )
    .unwrap();
    reload(&config);
    let text = String::from_utf8_lossy(&postern_run(&config, &["status"]).stdout).into_owned();
    assert!(text.contains("last reload: ok"), "{text}");
    assert_ne!(digest(&text), before, "{text}");

    drop(server);
    let out = postern_run(&config, &["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

/// The sum of every sample of `name` whose labels contain `labels`.
fn sample_sum(scrape: &str, name: &str, labels: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_scraped_while_mail_flows_match_the_log() {
    let (server, _tmp) = Server::start("[metrics]\nlisten = \"127.0.0.1:0\"");
    let log = server.wait_log("listening on metrics http://");
    let addr = log
        .split("listening on metrics http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();

    for i in 0..3 {
        let mut c = Client::connect(server.smtp);
        send_accepted(
            &mut c,
            "s@client.test.example",
            &["alice@example.org"],
            &format!("Subject: {i}\r\n\r\nhello\r\n"),
        );
        c.cmd("QUIT");
    }
    // Two refusals: an unknown local user, and relaying from outside.
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(c.cmd("EHLO outside.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<nobody@example.org>").starts_with('5'));
    assert!(c.cmd("RCPT TO:<x@elsewhere.test>").starts_with('5'));
    c.cmd("QUIT");
    wait_messages(&server.new_dir("alice"), 3);
    let log = server.wait_log_count("status=sent", 3);

    let (status, scrape) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{scrape}");
    let counted = |needle: &str| log.matches(needle).count() as f64;
    assert_eq!(
        sample_sum(&scrape, "postern_smtpd_connections_total", ""),
        counted(": connect from "),
        "{scrape}"
    );
    assert_eq!(
        sample_sum(&scrape, "postern_smtpd_messages_total", "result=\"queued\""),
        counted(", nrcpt="),
        "{scrape}"
    );
    assert_eq!(
        sample_sum(&scrape, "postern_deliveries_total", "status=\"sent\""),
        counted("status=sent"),
        "{scrape}"
    );
    assert_eq!(
        sample_sum(&scrape, "postern_smtpd_rejects_total", "stage=\"RCPT\""),
        counted(": reject: RCPT from "),
        "{scrape}"
    );
    assert_eq!(counted(": reject: RCPT from "), 2.0, "{log}");
    assert!(
        scrape.contains("postern_queue_messages{queue=\"deferred\"} 0"),
        "{scrape}"
    );
    // The default chain's plugins were called: their counters and latency
    // histograms are there.
    let calls = sample_sum(&scrape, "postern_plugin_calls_total", "");
    assert!(calls > 0.0, "{scrape}");
    // The standard plugins ask for reuse: no more instances than calls,
    // and at least one.
    let made = sample_sum(&scrape, "postern_plugin_instances_total", "");
    assert!(made >= 1.0 && made <= calls, "{scrape}");
    // And declare what their verdicts depend on: requests alike were
    // answered from kept verdicts.
    let kept = sample_sum(&scrape, "postern_plugin_cached_total", "");
    assert!(kept > 0.0, "{scrape}");
    assert!(
        scrape.contains("postern_plugin_duration_seconds_bucket{plugin=\""),
        "{scrape}"
    );
    assert!(scrape.contains("le=\"+Inf\""), "{scrape}");

    let (status, _) = http_get(addr, "/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn a_bad_metrics_address_is_a_config_error_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config(tmp.path(), "[metrics]\nlisten = \"localhost\"\nport = 3");
    let out = postern_run(&config, &["check"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metrics.listen"), "{stderr}");
    assert!(stderr.contains("is not an address and port"), "{stderr}");
    assert!(stderr.contains("metrics.port: unknown key"), "{stderr}");
}

#[test]
fn maillog_file_takes_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let maillog = tmp.path().join("maillog");
    let config = test_config(
        tmp.path(),
        &format!("maillog_file = \"{}\"", maillog.display()),
    );
    let _server = Process(foreground(&config).stderr(Stdio::null()).spawn().unwrap());
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&maillog).unwrap_or_default();
        if text.contains("daemon started") {
            break text;
        }
        assert!(start.elapsed() < WAIT, "no daemon started line in {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(text.contains("postern/master["), "{text}");
}
