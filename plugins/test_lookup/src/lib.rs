//! `test_lookup`: a test guest that uses the `dns`, `tables` and `kv` host
//! imports and reports what it got, so that tests can check them against a
//! real DNS server, real table files and the real store. Never embedded.
//!
//! Arguments: `check` = `dns` | `table` | `kv` | `kv_get` | `now` |
//! `clock`, and `cache` (attribute
//! names for `host.cache-verdicts`, kept 60 s: a promise the `dns` and
//! `kv` checks break, for the host's rules on what it keeps anyway).
//! - `dns`: looks up A, AAAA, MX and TXT of the request's HELO name and
//!   PTR of its client address, and answers `warn` with one line
//!   `a=[..] aaaa=[..] mx=[..] txt=[..] ptr=[..]`, each an answer list or
//!   the error's name.
//! - `table`: looks the sender up in table `table`; a value answers
//!   `reject` with it as text, none answers `dunno`.
//! - `kv`: counts requests per client address with `incr` (window
//!   `ttl` seconds, default 60) and remembers the last sender with `set`;
//!   past `limit` (default 2) it answers `defer`, else `warn` with
//!   `count=N last=SENDER`.
//! - `kv_get`: reads key `seen` and answers `warn` with `seen=VALUE`, or
//!   `dunno`; writes nothing.
//! - `now`, `clock`: answer `warn` with the time in seconds, from
//!   `host.now` or from WASI's wall clock (`std::time::SystemTime`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;

use postern_plugin_sdk::dns::{self, DnsError};
use postern_plugin_sdk::{Attribute, Guest, Reply, Request, Verdict, export_plugin, kv, tables};

/// The arguments saved by `init`.
static ARGS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// The plugin.
struct Lookup;

fn show<T: Debug>(answer: Result<Vec<T>, DnsError>) -> String {
    match answer {
        Ok(list) => format!("{list:?}"),
        Err(DnsError::Nxdomain) => "nxdomain".to_owned(),
        Err(DnsError::Servfail) => "servfail".to_owned(),
        Err(DnsError::Timeout) => "timeout".to_owned(),
        Err(DnsError::Other(why)) => format!("other({why})"),
    }
}

fn reply(code: u16, text: String) -> Reply {
    Reply {
        code,
        enhanced: String::new(),
        text,
    }
}

impl Guest for Lookup {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        let mut saved = ARGS.lock().map_err(|_| "poisoned".to_owned())?;
        for (key, value) in args {
            match key.as_str() {
                "check" | "table" | "limit" | "ttl" => {
                    saved.insert(key, value);
                }
                // Promises what `check` does not keep, for the host's
                // rules on what it keeps anyway.
                "cache" => postern_plugin_sdk::host::cache_verdicts(&Attribute::list(&value)?, 60),
                _ => return Err(format!("{key}: unknown argument")),
            }
        }
        Ok(())
    }

    fn check(req: Request) -> Verdict {
        let args = ARGS.lock().map(|a| a.clone()).unwrap_or_default();
        let arg = |k: &str| args.get(k).cloned().unwrap_or_default();
        match arg("check").as_str() {
            "dns" => {
                let mx = dns::mx(&req.helo_name).map(|l| {
                    l.into_iter()
                        .map(|m| format!("{} {}", m.preference, m.exchange))
                        .collect::<Vec<_>>()
                });
                Verdict::Warn(format!(
                    "a={} aaaa={} mx={} txt={} ptr={}",
                    show(dns::a(&req.helo_name)),
                    show(dns::aaaa(&req.helo_name)),
                    show(mx),
                    show(dns::txt(&req.helo_name)),
                    show(dns::ptr(&req.client_address)),
                ))
            }
            "table" => match tables::lookup(&arg("table"), &req.sender) {
                Some(value) => Verdict::Reject(reply(554, value)),
                None => Verdict::Dunno,
            },
            "kv" => {
                let ttl = arg("ttl").parse().unwrap_or(60);
                let limit = arg("limit").parse().unwrap_or(2);
                let key = format!("count:{}", req.client_address);
                let count = kv::incr(&key, 1, ttl);
                let last = kv::get("last").unwrap_or_default();
                kv::set("last", &req.sender, ttl);
                if count > limit {
                    Verdict::Defer(reply(450, format!("rate limit: {count} > {limit}")))
                } else {
                    Verdict::Warn(format!("count={count} last={last}"))
                }
            }
            // Read only, nothing written: `kv` as a greylist's second
            // look at a triplet is.
            "kv_get" => match kv::get("seen") {
                Some(value) => Verdict::Warn(format!("seen={value}")),
                None => Verdict::Dunno,
            },
            "now" => Verdict::Warn(format!("now={}", postern_plugin_sdk::host::now())),
            // The time through WASI, as a language's own clock reads it.
            "clock" => {
                let since = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Verdict::Warn(format!("clock={since}"))
            }
            _ => Verdict::Dunno,
        }
    }
}

export_plugin!(Lookup);
