//! `greylist`: greylisting with postgrey's semantics, as a Postern plugin
//! on the `kv` import (Postfix has no built-in greylisting; sites run
//! postgrey as a policy service, `check_policy_service
//! inet:127.0.0.1:10023`).
//!
//! At the recipient stage it builds the triplet (client network, sender,
//! recipient). A triplet seen for the first time, or first seen less than
//! `delay` ago, is answered `450 4.2.0 <rcpt>: Recipient address
//! rejected: Greylisted, see http://postgrey.schweikert.ch/help/DOMAIN.html`
//! as DEFER_IF_PERMIT (postgrey's `--greylist-action`: a later reject of
//! the list still wins). A retry after the delay passes, with an
//! `X-Greylist: delayed N seconds by postern greylist` header; a triplet
//! that passed once passes from then on, for `max_age` after it was last
//! seen. A triplet never retried within `retry_window` starts over. A
//! client whose triplets passed in `auto_whitelist_clients` transactions
//! is not greylisted any more. Whitelisted clients and recipients pass.
//!
//! ```toml
//! smtpd_recipient_restrictions = [
//!     "permit_mynetworks", "reject_unauth_destination",
//!     { plugin = "greylist", delay = "5m", whitelist_recipients = "postmaster@ abuse@" },
//! ]
//! ```
//!
//! Arguments (postgrey's options and defaults):
//! - `delay`: `300s` (also the one word of a string entry: `"greylist
//!   5m"`). `retry_window`: `2d`. `max_age`: `7d`, the longest
//!   the host's `kv` keeps anything (postgrey's default, 35 days, is
//!   refused: it would silently be a week).
//! - `auto_whitelist_clients`: `5`; `0` turns it off.
//! - `lookup_by`: `subnet` (default: IPv4 /`ipv4cidr` 24, IPv6
//!   /`ipv6cidr` 64, except a client whose name holds the last two
//!   octets, a dial-up pool) or `host`.
//! - `whitelist_clients`: addresses, CIDR networks and host names (a name
//!   matches the client's verified name and its subdomains).
//!   `whitelist_recipients`: `user@domain`, `user@`, `domain`, as
//!   postgrey's whitelist files.
//! - `text`: the reply text after `<rcpt>: Recipient address rejected: `;
//!   `%r` is the recipient's domain, `%s` the seconds left.
//! - `action`: `defer_if_permit` (default) or `defer`.
//!
//! Not here: postgrey's on-disk database (the `kv` store lives in the
//! server's memory: it survives reloads, not restarts, and holds some
//! hundred thousand triplets before it forgets the oldest) and its
//! whitelist files (the arguments list them).
//!
//! # Layout
//! - this file: the arguments ([`Config`]) and the plugin glue.
//! - `triplet`: the decision (`triplet::decide`) over a
//!   [`postern_plugin_sdk::state::State`], unit tested with a clock.
//! - `net`: client networks and the client whitelist.

mod net;
mod triplet;

use postern_plugin_sdk::state::{self, Kv};
use postern_plugin_sdk::{Args, Entry, Guest, Request, Verdict, export_plugin};

use net::ClientList;

/// postgrey's `--greylist-text` default; `%r` is the recipient domain.
const DEFAULT_TEXT: &str = "Greylisted, see http://postgrey.schweikert.ch/help/%r.html";

/// What the entry's arguments say.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seconds a new triplet is refused.
    pub delay: u64,
    /// Seconds a first-seen triplet waits for its first retry.
    pub retry_window: u64,
    /// Seconds a triplet (and an auto-whitelisted client) is kept after
    /// it was last seen.
    pub max_age: u64,
    /// Transactions after which a client is whitelisted; 0: never.
    pub auto_whitelist_clients: u64,
    /// Prefix lengths of the client network; `None`: the whole address.
    pub subnet: Option<(u8, u8)>,
    /// Clients never greylisted.
    pub whitelist_clients: ClientList,
    /// Recipients never greylisted: `user@domain`, `user@` or `domain`.
    pub whitelist_recipients: Vec<String>,
    /// The reply text, `%r` and `%s` to fill in.
    pub text: String,
    /// DEFER_IF_PERMIT (postgrey's default) rather than DEFER.
    pub if_permit: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            delay: 300,
            retry_window: 2 * 24 * 3600,
            max_age: state::MAX_TTL,
            auto_whitelist_clients: 5,
            subnet: Some((24, 64)),
            whitelist_clients: ClientList::default(),
            whitelist_recipients: Vec::new(),
            text: DEFAULT_TEXT.to_owned(),
            if_permit: true,
        }
    }
}

impl Config {
    /// Reads the entry's arguments; an error names the argument.
    pub fn from_args(args: Vec<(String, String)>) -> Result<Config, String> {
        let mut args = Args::new(args);
        let mut c = Config::default();
        let seconds = |v: &str| state::parse_seconds(v);
        if let Some(d) = args.parse("delay", seconds)? {
            c.delay = d;
        }
        // `"greylist 5m"`: the one positional argument is the delay.
        if let Some(d) = args.parse("1", seconds)? {
            c.delay = d;
        }
        if let Some(d) = args.parse("retry_window", seconds)? {
            c.retry_window = d;
        }
        if let Some(d) = args.parse("max_age", |v| {
            let d = state::parse_seconds(v)?;
            if d > state::MAX_TTL {
                return Err("longer than the 7d the kv store keeps anything".to_owned());
            }
            Ok(d)
        })? {
            c.max_age = d;
        }
        if let Some(n) = args.parse("auto_whitelist_clients", |v| {
            v.trim().parse::<u64>().map_err(|e| e.to_string())
        })? {
            c.auto_whitelist_clients = n;
        }
        let by_host = match args.take("lookup_by").as_deref() {
            None | Some("subnet") => false,
            Some("host") => true,
            Some(other) => {
                return Err(format!("lookup_by: {other:?}: expected subnet or host"));
            }
        };
        let bits = |max: u8| {
            move |v: &str| match v.trim().trim_start_matches('/').parse::<u8>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(format!("expected a prefix length from 0 to {max}")),
            }
        };
        let v4 = args.parse("ipv4cidr", bits(32))?.unwrap_or(24);
        let v6 = args.parse("ipv6cidr", bits(128))?.unwrap_or(64);
        c.subnet = (!by_host).then_some((v4, v6));
        if let Some(list) = args.parse("whitelist_clients", ClientList::parse)? {
            c.whitelist_clients = list;
        }
        if let Some(list) = args.take("whitelist_recipients") {
            c.whitelist_recipients = words(&list).map(str::to_ascii_lowercase).collect();
        }
        if let Some(text) = args.take("text") {
            if text.contains(['\r', '\n']) {
                return Err("text: must be one line".to_owned());
            }
            c.text = text;
        }
        c.if_permit = match args.take("action").as_deref() {
            None | Some("defer_if_permit") => true,
            Some("defer") => false,
            Some(other) => {
                return Err(format!(
                    "action: {other:?}: expected defer_if_permit or defer"
                ));
            }
        };
        args.done()?;
        Ok(c)
    }
}

/// The items of a list argument: separated by spaces or commas.
fn words(list: &str) -> impl Iterator<Item = &str> {
    list.split([' ', ',', '\t', '\n']).filter(|w| !w.is_empty())
}

/// The entry of this instance, set by `init`.
static ENTRY: Entry<Config> = Entry::new();

/// The plugin.
struct Greylist;

impl Guest for Greylist {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        ENTRY.init(Config::from_args(args))
    }

    fn check(req: Request) -> Verdict {
        ENTRY.check(|config| triplet::decide(config, &Kv, &req))
    }
}

export_plugin!(Greylist);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use postern_plugin_sdk::args::pairs as args;

    #[test]
    fn postgreys_defaults() {
        let c = Config::from_args(Vec::new()).unwrap();
        assert_eq!(c.delay, 300);
        assert_eq!(c.retry_window, 172_800);
        assert_eq!(c.max_age, 604_800);
        assert_eq!(c.auto_whitelist_clients, 5);
        assert_eq!(c.subnet, Some((24, 64)));
        assert!(c.if_permit);
    }

    #[test]
    fn arguments_are_checked_and_named() {
        let c = Config::from_args(args(&[
            ("delay", "2s"),
            ("lookup_by", "host"),
            ("auto_whitelist_clients", "0"),
            ("whitelist_recipients", "Postmaster@, example.net"),
            ("action", "defer"),
        ]))
        .unwrap();
        assert_eq!(c.delay, 2);
        assert_eq!(c.subnet, None);
        assert_eq!(c.whitelist_recipients, ["postmaster@", "example.net"]);
        assert!(!c.if_permit);
        let c = Config::from_args(args(&[("1", "5m")])).unwrap();
        assert_eq!(c.delay, 300);
        for (pairs, error) in [
            (&[("delay", "0")][..], "delay: \"0\": a time of zero"),
            (&[("max_age", "35d")][..], "max_age: \"35d\": longer than"),
            (&[("ipv4cidr", "33")][..], "ipv4cidr: \"33\": expected"),
            (&[("lookup_by", "net")][..], "lookup_by: \"net\""),
            (
                &[("whitelist_clients", "10.0.0.0/99")][..],
                "whitelist_clients",
            ),
            (&[("dealy", "5m")][..], "dealy: unknown argument"),
            (&[("1", "5m"), ("2", "x")][..], "unexpected argument \"x\""),
            (&[("1", "soon")][..], "1: \"soon\": unknown time unit"),
            (&[("action", "reject")][..], "action: \"reject\""),
        ] {
            let e = Config::from_args(args(pairs)).unwrap_err();
            assert!(e.starts_with(error), "{pairs:?}: {e}");
        }
    }
}
