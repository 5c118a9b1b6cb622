//! `test_session`: a test guest for what an instance keeps between the
//! calls of one session, and for the end-of-data `message` resource. Never
//! embedded (its name starts with `test_`).
//!
//! Argument `do` says what `check` does:
//! - `count` (default): warns `inits=I checks=C`, the `init` and `check`
//!   calls this instance has seen;
//! - `remember`: warns the sender this instance saw first, and the count;
//! - `trap_on_second`: traps on this instance's second check;
//! - `inspect`: at end-of-data, warns `subject=S body=N size=M fields=F`
//!   and adds `X-Inspected: yes` (and `X-Body-Bytes: N`); elsewhere warns
//!   `no message`;
//! - `spam`: rejects a message whose body holds `word` (an argument,
//!   default "viagra"), read through `read-body` in 7-byte slices, and adds
//!   `X-Spam-Checked: clean` to the others;
//! - `bad_header`: tries to add fields that must be refused and warns
//!   what the host said;
//! - `big_read`: asks `read-body` for 4 GiB and warns how much came back;
//! - `hoard`: calls `message.current` without dropping the handles.
//! - `keep`: keeps one handle from `message.current` (if there is a
//!   message) past the call, and warns `kept=K checks=C`.
//!
//! Argument `reuse = "yes"` makes `init` call `host.reuse-instances`, so
//! that the instance may serve later transactions.

use std::sync::Mutex;

use postern_plugin_sdk::{Guest, Request, Verdict, export_plugin, host, message, reject};

/// What this instance has seen.
#[derive(Default)]
struct Seen {
    inits: u32,
    checks: u32,
    first_sender: Option<String>,
    action: String,
    word: String,
}

static SEEN: Mutex<Seen> = Mutex::new(Seen {
    inits: 0,
    checks: 0,
    first_sender: None,
    action: String::new(),
    word: String::new(),
});

/// The plugin.
struct Session;

impl Guest for Session {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        let mut seen = SEEN.lock().map_err(|_| "poisoned".to_owned())?;
        seen.inits += 1;
        seen.action = "count".to_owned();
        seen.word = "viagra".to_owned();
        for (key, value) in args {
            match key.as_str() {
                "do" => seen.action = value,
                "word" => seen.word = value,
                "reuse" if value == "yes" => host::reuse_instances(),
                _ => return Err(format!("{key}: unknown argument")),
            }
        }
        Ok(())
    }

    fn check(req: Request) -> Verdict {
        let Ok(mut seen) = SEEN.lock() else {
            return Verdict::Dunno;
        };
        seen.checks += 1;
        let first = seen.first_sender.get_or_insert(req.sender).clone();
        match seen.action.as_str() {
            "remember" => Verdict::Warn(format!("first={first} checks={}", seen.checks)),
            "trap_on_second" if seen.checks == 2 => panic!("second check"),
            "inspect" => inspect(),
            "spam" => spam(&seen.word),
            "bad_header" => bad_header(),
            "big_read" => match message::current() {
                Some(m) => Verdict::Warn(format!("read={}", m.read_body(0, u32::MAX).len())),
                None => Verdict::Dunno,
            },
            "keep" => {
                let kept = message::current();
                let held = u8::from(kept.is_some());
                std::mem::forget(kept);
                Verdict::Warn(format!("kept={held} checks={}", seen.checks))
            }
            "hoard" => {
                let hoard: Vec<_> = (0..100).map(|_| message::current()).collect();
                Verdict::Warn(format!("held {}", hoard.len()))
            }
            _ => Verdict::Warn(format!("inits={} checks={}", seen.inits, seen.checks)),
        }
    }
}

fn inspect() -> Verdict {
    let Some(m) = message::current() else {
        return Verdict::Warn("no message".to_owned());
    };
    let subject = m.header("subject").join("|");
    let body = m.body_size();
    let _ = m.add_header("X-Inspected", "yes");
    let _ = m.add_header("X-Body-Bytes", &body.to_string());
    Verdict::Warn(format!(
        "subject={subject} body={body} size={} fields={}",
        m.size(),
        m.headers().len()
    ))
}

fn spam(word: &str) -> Verdict {
    let Some(m) = message::current() else {
        return Verdict::Dunno;
    };
    let mut body = Vec::new();
    let mut offset = 0;
    loop {
        let slice = m.read_body(offset, 7);
        if slice.is_empty() {
            break;
        }
        offset += slice.len() as u64;
        body.extend_from_slice(&slice);
    }
    if String::from_utf8_lossy(&body).contains(word) {
        return reject(554, "5.7.1", format!("spam: {word}"));
    }
    let _ = m.add_header("X-Spam-Checked", "clean");
    Verdict::Dunno
}

fn bad_header() -> Verdict {
    let Some(m) = message::current() else {
        return Verdict::Dunno;
    };
    let said: Vec<String> = [
        m.add_header("Bad Name", "x"),
        m.add_header("X-Smuggle", "a\r\nBcc: evil@example.org"),
        m.add_header("X-Long", &"a".repeat(2000)),
    ]
    .into_iter()
    .map(|r| match r {
        Ok(()) => "accepted".to_owned(),
        Err(e) => e,
    })
    .collect();
    Verdict::Warn(said.join(" | "))
}

export_plugin!(Session);
