//! The `test_sandbox` guest's attacks: memory bomb, stack overflow, panic,
//! log flood, huge verdict, files and sockets without a grant. Each is
//! answered by the entry's `on_error` within a second or so (each hits a
//! limit or traps long before its 250 ms of CPU time), nothing outside is
//! touched, and other calls keep working.

use std::time::{Duration, Instant};

use postern_mail::{EnhancedCode, Reply, Verdict};

use crate::{Logs, lines, rcpt, rcpt_id, recipient_list, table};

fn failed() -> Verdict {
    Verdict::Defer(Reply::new(
        451,
        EnhancedCode::new(4, 3, 0),
        "Error: policy plugin test_sandbox failed",
    ))
}

/// The default deadline's backstop for a guest that waits (4 × 250 ms)
/// plus what a slow test machine needs.
const MARGIN: Duration = Duration::from_millis(4 * 250 + 400);

/// Runs `check = what` once, with a marker id; returns the verdict and
/// the log lines.
async fn attack(what: &str, marker: &str) -> (Verdict, String) {
    let logs = Logs::capture(marker);
    let s = recipient_list(vec![table(&[("plugin", "test_sandbox"), ("check", what)])]);
    let started = Instant::now();
    let d = s.check(&rcpt_id(marker, false, None)).await;
    assert!(
        started.elapsed() < MARGIN,
        "{what}: {:?}",
        started.elapsed()
    );
    // Another plugin still answers at once.
    let ok = recipient_list(lines(&["permit_mynetworks"]));
    assert_eq!(ok.check(&rcpt(true, None)).await.verdict, Verdict::Permit);
    (d.verdict, logs.text())
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let (v, log) = attack("bomb", "SBOMB").await;
    assert_eq!(v, failed());
    assert!(log.contains("memory limit: wanted"), "{log}");
    assert!(log.contains("the limit is 32 MiB"), "{log}");
}

#[tokio::test]
async fn endless_recursion_overflows_the_wasm_stack() {
    let (v, log) = attack("stack", "SSTACK").await;
    assert_eq!(v, failed());
    // Whichever runs out first traps: wasmtime's limit on the native wasm
    // stack, or the guest's own 32 KiB shadow stack (build.rs), which then
    // runs below address 0.
    assert!(
        log.contains("call stack exhausted") || log.contains("out of bounds memory access"),
        "{log}"
    );
}

#[tokio::test]
async fn a_panic_is_a_trap() {
    let (v, log) = attack("panic", "SPANIC").await;
    assert_eq!(v, failed());
    assert!(
        log.contains("SPANIC: plugin test_sandbox failed at recipient"),
        "{log}"
    );
    assert!(log.contains("unreachable"), "{log}");
}

#[tokio::test]
async fn a_log_flood_is_capped_per_call() {
    let logs = Logs::capture("flood line");
    let marker = Logs::capture("test_sandbox wrote too many log lines");
    let (v, _) = attack("flood", "SFLOOD").await;
    // The flood ends within the deadline or is cut by it; either way
    // only 16 lines reach the log, each one line of at most 1024 bytes.
    assert!(v == Verdict::Permit || v == failed(), "{v:?}");
    let text = logs.text();
    assert_eq!(text.lines().count(), 16, "{text}");
    assert!(text.lines().all(|l| l.len() < 1200), "{text}");
    assert!(marker.text().contains("dropped"), "{}", marker.text());
}

#[tokio::test]
async fn a_huge_verdict_text_is_cut() {
    let (v, _) = attack("huge", "SHUGE").await;
    let Verdict::Reject(reply) = v else {
        panic!("{v:?}");
    };
    assert_eq!(reply.code, 554);
    let text = reply.to_string();
    assert!(text.len() < 600, "{} bytes", text.len());
    assert!(text.contains("huge huge"), "{text}");
}

#[tokio::test]
async fn files_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "do not read").unwrap();
    let target = dir.path().join("created");
    for path in [&secret, &target] {
        let s = recipient_list(vec![table(&[
            ("plugin", "test_sandbox"),
            ("check", "file"),
            ("path", path.to_str().unwrap()),
        ])]);
        // Every attempt failed inside the plugin: it had no opinion.
        assert_eq!(s.check(&rcpt(false, None)).await.verdict, Verdict::Permit);
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "do not read");
    assert!(!target.exists());
}

#[tokio::test]
async fn sockets_are_out_of_reach() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind(addr).unwrap();
    udp.set_nonblocking(true).unwrap();
    let s = recipient_list(vec![table(&[
        ("plugin", "test_sandbox"),
        ("check", "socket"),
        ("addr", &addr.to_string()),
    ])]);
    assert_eq!(s.check(&rcpt(false, None)).await.verdict, Verdict::Permit);
    std::thread::sleep(Duration::from_millis(50));
    assert!(tcp.accept().is_err(), "a connection got through");
    let mut buf = [0; 64];
    assert!(udp.recv_from(&mut buf).is_err(), "a datagram got through");
}

#[tokio::test]
async fn an_entry_failing_five_times_in_a_row_is_skipped_until_reload() {
    let logs = Logs::capture("BREAK1");
    let s = recipient_list(vec![table(&[
        ("plugin", "test_sandbox"),
        ("check", "panic"),
    ])]);
    let req = rcpt_id("BREAK1", false, None);
    for _ in 0..7 {
        assert_eq!(s.check(&req).await.verdict, failed());
    }
    let text = logs.text();
    assert_eq!(text.matches("failed at recipient").count(), 5, "{text}");
    assert!(
        text.contains(
            "failed 5 times in a row: skipped until reload, on_error defer answers for it"
        ),
        "{text}"
    );
    // A reload (a new snapshot) calls it again.
    let s = recipient_list(vec![table(&[
        ("plugin", "test_sandbox"),
        ("check", "panic"),
    ])]);
    assert_eq!(s.check(&req).await.verdict, failed());
    assert_eq!(logs.text().matches("failed at recipient").count(), 6);
}

#[tokio::test]
async fn a_data_dir_is_readable_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), "hello world\n").unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("outside")).unwrap();
    let s = recipient_list(vec![table(&[
        ("plugin", "test_sandbox"),
        ("check", "data"),
        ("path", "/data/hello"),
        ("data_dir", dir.path().to_str().unwrap()),
    ])]);
    let v = s.check(&rcpt(false, None)).await.verdict;
    let Verdict::Reject(reply) = v else {
        panic!("{v:?}");
    };
    // It read its file, and every write and every way out failed.
    assert_eq!(reply.text, "read hello world");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello")).unwrap(),
        "hello world\n"
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["hello", "outside"]);
}

#[tokio::test]
async fn without_a_data_dir_the_plugin_sees_no_files() {
    let s = recipient_list(vec![table(&[
        ("plugin", "test_sandbox"),
        ("check", "data"),
        ("path", "/data/hello"),
    ])]);
    let v = s.check(&rcpt(false, None)).await.verdict;
    let Verdict::Reject(reply) = v else {
        panic!("{v:?}");
    };
    assert!(reply.text.starts_with("read failed"), "{}", reply.text);
    assert!(
        reply.text.ends_with("could not list /data"),
        "{}",
        reply.text
    );
}

#[test]
fn a_missing_data_dir_is_refused_at_load_naming_the_entry() {
    let e = crate::RUNTIME
        .load(&crate::config(vec![table(&[
            ("plugin", "test_sandbox"),
            ("data_dir", "/nonexistent/postern-data"),
        ])]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("recipient restrictions: entry { plugin = \"test_sandbox\""),
        "{e}"
    );
    assert!(e.contains("data_dir /nonexistent/postern-data: "), "{e}");
}
