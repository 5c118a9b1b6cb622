//! `test_hostile`: a test guest that misbehaves on request, so that the
//! policy runtime's limits can be tested against a real component. Never
//! embedded (its name starts with `test_`).
//!
//! Arguments: `init` = `error` | `trap` | `loop` misbehaves in `init`;
//! `check` = `loop` | `sleep` | `trap` | `grow` | `bad_code` |
//! `bad_redirect` | `bad_header` | `defer_5xx` misbehaves in `check` (without one, `check`
//! answers dunno).

use std::sync::Mutex;

use postern_plugin_sdk::{Guest, Reply, Request, Verdict, export_plugin};

/// The `check` argument saved by `init`.
static CHECK: Mutex<String> = Mutex::new(String::new());

/// The plugin.
struct Hostile;

/// Spins until the host's deadline stops it.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Guest for Hostile {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in args {
            match (key.as_str(), value.as_str()) {
                ("init", "error") => return Err("init: refused on purpose".to_owned()),
                ("init", "trap") => std::process::abort(),
                ("init", "loop") => spin(),
                ("check", _) => {
                    *CHECK.lock().map_err(|_| "poisoned".to_owned())? = value;
                }
                _ => return Err(format!("{key}: unknown argument")),
            }
        }
        Ok(())
    }

    fn check(_req: Request) -> Verdict {
        let what = CHECK.lock().map(|c| c.clone()).unwrap_or_default();
        let reply = |code| Reply {
            code,
            enhanced: String::new(),
            text: "bad".to_owned(),
        };
        match what.as_str() {
            "loop" => spin(),
            // Blocks in a host call (wasi:io/poll), where the epoch cannot
            // interrupt it.
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(30));
                Verdict::Permit
            }
            "trap" => std::process::abort(),
            "grow" => {
                // Far more than any sane limit: growing memory fails, and
                // the allocation error aborts the guest.
                let big: Vec<u8> = vec![1; 256 << 20];
                Verdict::Warn(format!("allocated {}", std::hint::black_box(big).len()))
            }
            "bad_code" => Verdict::Reject(reply(250)),
            "defer_5xx" => Verdict::Defer(reply(554)),
            "bad_redirect" => Verdict::Redirect("not an address".to_owned()),
            "bad_header" => Verdict::Prepend("no colon here".to_owned()),
            _ => Verdict::Dunno,
        }
    }
}

export_plugin!(Hostile);
