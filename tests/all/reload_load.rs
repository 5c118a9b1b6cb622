//! Reload under load (issue 3): a client sends mail in a loop while the
//! plugin set is reloaded 20 times through `postern reload`, two of those
//! times with a broken component that must be refused. No transaction
//! fails, every transaction sees a policy at least as new as the last
//! reload finished before it started, and no message ever sees a refused
//! policy.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::policy_tables::guest_dir;
use crate::support::*;

const RELOADS: usize = 20;

/// The reloads (by number) that add a broken component.
const BROKEN: [usize; 2] = [7, 14];

/// The config of policy generation `generation`: every accepted recipient
/// gets an `X-Policy-Generation` header from the test_answer plugin.
fn config(dir: &Path, plugins: &Path, generation: usize) -> String {
    let extra = format!(
        "plugin_directory = \"{}\"\n\
         smtpd_recipient_restrictions = [{{ plugin = \"test_answer\", verdict = \"prepend\", \
         text = \"X-Policy-Generation: {generation}\" }}, \"permit_mynetworks\", \
         \"reject_unauth_destination\"]\n",
        plugins.display()
    );
    config_text(dir, &extra)
}

fn reload(config: &Path) -> Output {
    Command::new(POSTERN)
        .arg("--config")
        .arg(config)
        .arg("reload")
        .output()
        .unwrap()
}

/// What the sending loop saw.
#[derive(Default)]
struct Sent {
    /// Message number -> the generation in force when it started.
    started_after: BTreeMap<usize, usize>,
    /// Every reply that was not the expected one.
    failures: Vec<String>,
}

/// One transaction, numbered `n`, on `c`; `Err` names the failed step.
fn transaction(c: &mut Client, n: usize) -> Result<(), String> {
    let steps = [
        ("MAIL FROM:<load@client.test.example>".to_owned(), "250"),
        ("RCPT TO:<alice@example.org>".to_owned(), "250"),
        ("DATA".to_owned(), "354"),
        (format!("Subject: load {n}\r\n\r\nmessage {n}\r\n."), "250"),
    ];
    for (line, want) in steps {
        let r = c.cmd(&line);
        if !r.starts_with(want) {
            return Err(format!("message {n}: {line:?} got {r:?}"));
        }
    }
    Ok(())
}

#[test]
fn twenty_reloads_under_load_lose_nothing_and_take_effect() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let plugins = guest_dir(tmp.path(), "test_answer");
    let config_path = tmp.path().join("postern.toml");
    std::fs::write(&config_path, config(tmp.path(), &plugins, 0)).unwrap();
    let server = Server::start_in(tmp.path());

    // The generation whose reload has finished (0: the one started with).
    let generation = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let sender = {
        let (generation, done, stop, sent) =
            (generation.clone(), done.clone(), stop.clone(), sent.clone());
        let addr = server.smtp;
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                // A new connection every 5 messages: sessions opened before
                // and after reloads alike.
                let mut c = Client::connect(addr);
                assert!(c.cmd("EHLO load.test.example").starts_with("250"));
                for _ in 0..5 {
                    let before = generation.load(Ordering::SeqCst);
                    let result = transaction(&mut c, n);
                    let mut s = sent.lock().unwrap();
                    match result {
                        Ok(()) => {
                            s.started_after.insert(n, before);
                        }
                        Err(e) => s.failures.push(e),
                    }
                    n += 1;
                    done.fetch_add(1, Ordering::SeqCst);
                }
                c.cmd("QUIT");
            }
        })
    };

    let wait_for_traffic = |at_least: usize| {
        let start = Instant::now();
        while done.load(Ordering::SeqCst) < at_least {
            assert!(start.elapsed() < WAIT, "the sending loop stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut current = 0;
    for i in 1..=RELOADS {
        // Some mail under each policy before the next reload.
        wait_for_traffic(done.load(Ordering::SeqCst) + 3);
        let broken = BROKEN.contains(&i);
        if broken {
            std::fs::write(plugins.join("broken.wasm"), b"\0asm garbage").unwrap();
        }
        std::fs::write(&config_path, config(tmp.path(), &plugins, i)).unwrap();
        let out = reload(&config_path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if broken {
            assert!(!out.status.success(), "reload {i} took a broken plugin");
            assert!(stderr.contains("reload failed"), "{stderr}");
            assert!(stderr.contains("broken.wasm"), "{stderr}");
            assert!(
                stderr.contains("not a valid WebAssembly component"),
                "{stderr}"
            );
            std::fs::remove_file(plugins.join("broken.wasm")).unwrap();
        } else {
            assert!(out.status.success(), "reload {i}: {stderr}");
            current = i;
            generation.store(i, Ordering::SeqCst);
        }
    }
    wait_for_traffic(done.load(Ordering::SeqCst) + 3);
    stop.store(true, Ordering::SeqCst);
    sender.join().unwrap();

    let sent = Arc::try_unwrap(sent).ok().unwrap().into_inner().unwrap();
    assert!(sent.failures.is_empty(), "failed: {:#?}", sent.failures);
    let total = sent.started_after.len();
    assert!(total >= 3 * RELOADS, "only {total} messages");

    // Every message was delivered, with the policy of a generation that
    // was current when it started or later, and never a refused one.
    let messages = wait_messages(&server.new_dir("alice"), total);
    let mut seen = BTreeMap::new();
    for m in &messages {
        let text = String::from_utf8_lossy(m);
        let header = |name: &str| -> usize {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
                .trim()
                .parse()
                .unwrap()
        };
        let n = header("Subject: load ");
        let g = header("X-Policy-Generation: ");
        let before = sent.started_after[&n];
        assert!(
            g >= before,
            "message {n} started after generation {before} but saw {g}"
        );
        assert!(g <= current, "message {n} saw generation {g}");
        assert!(
            !BROKEN.contains(&g),
            "message {n} saw refused generation {g}"
        );
        *seen.entry(g).or_insert(0) += 1;
    }
    // The last policy was seen, and so were many before it.
    assert!(seen.contains_key(&current), "{seen:?}");
    assert!(seen.len() > RELOADS / 2, "{seen:?}");
    let log = server.log();
    assert_eq!(
        log.matches("reload -- version").count(),
        RELOADS - BROKEN.len(),
        "{log}"
    );
}
