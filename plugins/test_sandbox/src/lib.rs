//! `test_sandbox`: a test guest that attacks the sandbox on request, so that
//! the policy runtime's limits and its deny-all WASI can be tested against
//! a real component. Never embedded (its name starts with `test_`).
//!
//! Arguments: `check` = `bomb` (allocates until memory runs out) |
//! `stack` (recurses without end) | `panic` | `flood` (writes thousands of
//! log lines) | `huge` (answers a reject with a multi-megabyte text) |
//! `file` (reads and writes the file named by `path`) | `socket` (connects
//! to `addr` over TCP and sends to it over UDP) | `data` (reads the file
//! `path` of its granted `data_dir`, then tries to write there and to read
//! outside it). For `file` and `socket` the answer says what happened:
//! `dunno` when every attempt failed inside the plugin, a `reject` naming
//! what succeeded otherwise. For `data` it is always a `reject` whose text
//! lists what happened: `read TEXT` (or `read failed`), then whatever
//! else worked.

use std::sync::Mutex;

use postern_plugin_sdk::host::{LogLevel, log};
use postern_plugin_sdk::{Guest, Reply, Request, Verdict, export_plugin};

/// The arguments saved by `init`: (check, path, addr).
static ARGS: Mutex<(String, String, String)> =
    Mutex::new((String::new(), String::new(), String::new()));

/// The plugin.
struct Sandbox;

/// Recurses until the wasm stack runs out; the sum keeps the frames.
fn recurse(n: u64) -> u64 {
    if std::hint::black_box(n) == u64::MAX {
        return 0;
    }
    recurse(n + 1).wrapping_add(std::hint::black_box(n))
}

fn reject(text: String) -> Verdict {
    Verdict::Reject(Reply {
        code: 554,
        enhanced: String::new(),
        text,
    })
}

/// Tries to read and write `path`; what worked, if anything.
fn touch_file(path: &str) -> Vec<String> {
    let mut worked = Vec::new();
    if std::fs::read(path).is_ok() {
        worked.push(format!("read {path}"));
    }
    if std::fs::write(path, b"escaped").is_ok() {
        worked.push(format!("wrote {path}"));
    }
    if std::fs::read_dir("/").is_ok() {
        worked.push("listed /".to_owned());
    }
    if std::env::vars().next().is_some() {
        worked.push("saw the environment".to_owned());
    }
    worked
}

/// One thing a read-only grant must refuse; true if it worked.
type Attempt = fn() -> bool;

/// Reads `path` (under the granted `/data`), then tries what a read-only
/// grant must refuse; what happened, in order.
fn use_data_dir(path: &str) -> Vec<String> {
    let mut happened = vec![match std::fs::read_to_string(path) {
        Ok(text) => format!("read {}", text.trim()),
        Err(e) => format!("read failed ({e})"),
    }];
    if std::fs::read_dir("/data").is_err() {
        happened.push("could not list /data".to_owned());
    }
    let attempts: [(&str, Attempt); 6] = [
        ("overwrote the file", || {
            std::fs::OpenOptions::new()
                .append(true)
                .open("/data/hello")
                .is_ok()
        }),
        ("created /data/new", || {
            std::fs::write("/data/new", b"escaped").is_ok()
        }),
        ("made /data/sub", || {
            std::fs::create_dir("/data/sub").is_ok()
        }),
        ("removed /data/hello", || {
            std::fs::remove_file("/data/hello").is_ok()
        }),
        ("read /data/../etc/passwd", || {
            std::fs::read("/data/../etc/passwd").is_ok()
        }),
        ("read /etc/passwd", || std::fs::read("/etc/passwd").is_ok()),
    ];
    for (what, attempt) in attempts {
        if attempt() {
            happened.push(what.to_owned());
        }
    }
    if std::fs::read("/data/outside/passwd").is_ok() {
        happened.push("followed a link out".to_owned());
    }
    happened
}

/// Tries to reach `addr` over TCP and UDP; what worked, if anything.
fn touch_socket(addr: &str) -> Vec<String> {
    let mut worked = Vec::new();
    if let Ok(mut s) = std::net::TcpStream::connect(addr) {
        use std::io::Write;
        let _ = s.write_all(b"escaped\r\n");
        worked.push(format!("connected to {addr}"));
    }
    if let Ok(u) = std::net::UdpSocket::bind("0.0.0.0:0")
        && u.send_to(b"escaped", addr).is_ok()
    {
        worked.push(format!("sent to {addr}"));
    }
    worked
}

impl Guest for Sandbox {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        let mut saved = ARGS.lock().map_err(|_| "poisoned".to_owned())?;
        for (key, value) in args {
            match key.as_str() {
                "check" => saved.0 = value,
                "path" => saved.1 = value,
                "addr" => saved.2 = value,
                _ => return Err(format!("{key}: unknown argument")),
            }
        }
        Ok(())
    }

    fn check(_req: Request) -> Verdict {
        let (what, path, addr) = ARGS.lock().map(|a| a.clone()).unwrap_or_default();
        match what.as_str() {
            "bomb" => {
                // Grows in steps, keeping everything, until an allocation
                // fails and aborts the guest.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "stack" => Verdict::Warn(recurse(0).to_string()),
            "panic" => panic!("on purpose"),
            "flood" => {
                for i in 0..100_000 {
                    log(
                        LogLevel::Warn,
                        &format!("flood line {i}\n{}", "x".repeat(4000)),
                    );
                }
                Verdict::Dunno
            }
            "huge" => reject("huge ".repeat(1 << 20)),
            "file" => match touch_file(&path).as_slice() {
                [] => Verdict::Dunno,
                worked => reject(worked.join(", ")),
            },
            "socket" => match touch_socket(&addr).as_slice() {
                [] => Verdict::Dunno,
                worked => reject(worked.join(", ")),
            },
            "data" => reject(use_data_dir(&path).join(", ")),
            _ => Verdict::Dunno,
        }
    }
}

export_plugin!(Sandbox);
