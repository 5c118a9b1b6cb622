//! `ratelimit`: message and recipient rate limits per client address,
//! sender or SASL user, as a Postern plugin on the `kv` import. Postfix
//! has the per-client kind built in (`smtpd_client_message_rate_limit`,
//! `smtpd_client_recipient_rate_limit`, counted by anvil(8) over
//! `anvil_rate_time_unit`); sites add a policy daemon (policyd-rate-limit,
//! postfwd) for senders and SASL users. This plugin does all three, with
//! Postfix's replies:
//!
//! ```toml
//! smtpd_recipient_restrictions = [
//!     { plugin = "ratelimit", key = "client", messages = "100/1h", recipients = "500/1h" },
//!     { plugin = "ratelimit", key = "sasl_username", messages = "200/1d" },
//!     "permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination",
//! ]
//! ```
//!
//! - `key`: `client` (the client's address, the default), `sender` (the
//!   MAIL FROM address, `<>` for the null sender) or `sasl_username`
//!   (authenticated clients only; others pass).
//! - `messages = "N/WINDOW"`: at most N transactions per window, counted
//!   once per transaction at the first request of it that reaches the
//!   entry (MAIL FROM in the sender list, the first RCPT TO in the
//!   recipient list, ...); beyond it, `450 4.7.1 Error: too much mail
//!   from KEY`.
//! - `recipients = "N/WINDOW"`: at most N recipients per window, each
//!   RCPT TO counted (relay and recipient lists); beyond it, `450 4.7.1
//!   Error: too many recipients from KEY`.
//! - A window is `30s`, `10m`, `1h`, `1d` (at most `7d`, the longest the
//!   `kv` store keeps anything), or a bare unit (`100/h`). Windows are
//!   fixed: a count starts at the first event and is forgotten a window
//!   later, as anvil's `anvil_rate_time_unit`.
//! - `exempt_mynetworks`: `yes` or `no`; by default `yes` for `key =
//!   "client"` (Postfix's `smtpd_client_event_limit_exceptions =
//!   $mynetworks`) and `no` for the others.
//!
//! Refused attempts count too, as in anvil: a client that keeps trying
//! stays refused until its window ends. Several entries may use the
//! plugin: each keeps its own counters (they are keyed by the entry's
//! key and limits). Not here: concurrency limits (the server's
//! `smtpd_client_connection_count_limit`), counts that survive a restart
//! (the `kv` store lives in the server's memory).
//!
//! # Layout
//! - this file: the arguments ([`Config`]) and the plugin glue.
//! - `limit`: the decision (`limit::decide`) over a
//!   [`postern_plugin_sdk::state::State`], unit tested with a clock.

mod limit;

use postern_plugin_sdk::state::{self, Kv};
use postern_plugin_sdk::{Args, Entry, Guest, Request, Verdict, export_plugin};

/// What a limit counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The client's IP address.
    Client,
    /// The MAIL FROM address.
    Sender,
    /// The SASL user name.
    SaslUsername,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Client => "client",
            Key::Sender => "sender",
            Key::SaslUsername => "sasl_username",
        }
    }
}

/// N events per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The most events in one window.
    pub limit: u64,
    /// The window, in seconds.
    pub window: u64,
}

impl Rate {
    /// Reads `100/1h`, `10/30s`, `1000/d`.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let (n, window) = text
            .split_once('/')
            .ok_or("expected N/WINDOW, such as 100/1h")?;
        let limit = n
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{:?} is not a count", n.trim()))?;
        let window = window.trim();
        // A bare unit is one of it: `100/h`.
        let window = if window.starts_with(|c: char| c.is_ascii_digit()) {
            state::parse_seconds(window)?
        } else {
            state::parse_seconds(&format!("1{window}"))?
        };
        if window > state::MAX_TTL {
            return Err("a window longer than the 7d the kv store keeps anything".to_owned());
        }
        Ok(Rate { limit, window })
    }
}

/// What the entry's arguments say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What to count per.
    pub key: Key,
    /// Transactions per window.
    pub messages: Option<Rate>,
    /// Recipients per window.
    pub recipients: Option<Rate>,
    /// Whether clients in mynetworks pass uncounted.
    pub exempt_mynetworks: bool,
}

impl Config {
    /// Reads the entry's arguments; an error names the argument.
    pub fn from_args(args: Vec<(String, String)>) -> Result<Config, String> {
        let mut args = Args::new(args);
        let key = match args.take("key").as_deref() {
            None | Some("client") => Key::Client,
            Some("sender") => Key::Sender,
            Some("sasl_username") => Key::SaslUsername,
            Some(other) => {
                return Err(format!(
                    "key: {other:?}: expected client, sender or sasl_username"
                ));
            }
        };
        let messages = args.parse("messages", Rate::parse)?;
        let recipients = args.parse("recipients", Rate::parse)?;
        let exempt_mynetworks = args
            .parse("exempt_mynetworks", |v| match v {
                "yes" | "true" => Ok(true),
                "no" | "false" => Ok(false),
                _ => Err("expected yes or no".to_owned()),
            })?
            .unwrap_or(key == Key::Client);
        args.done()?;
        if messages.is_none() && recipients.is_none() {
            return Err(
                "messages: missing argument (give messages, recipients or both, \
                        such as messages = \"100/1h\")"
                    .to_owned(),
            );
        }
        Ok(Config {
            key,
            messages,
            recipients,
            exempt_mynetworks,
        })
    }
}

/// The entry of this instance, set by `init`.
static ENTRY: Entry<Config> = Entry::new();

/// The plugin.
struct Ratelimit;

impl Guest for Ratelimit {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        ENTRY.init(Config::from_args(args))
    }

    fn check(req: Request) -> Verdict {
        ENTRY.check(|config| limit::decide(config, &Kv, &req))
    }
}

export_plugin!(Ratelimit);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use postern_plugin_sdk::args::pairs as args;

    #[test]
    fn rates() {
        for (text, limit, window) in [
            ("100/1h", 100, 3600),
            ("10 / 30s", 10, 30),
            ("5/m", 5, 60),
            ("0/1d", 0, 86400),
        ] {
            assert_eq!(Rate::parse(text), Ok(Rate { limit, window }), "{text}");
        }
        assert!(Rate::parse("100").is_err());
        assert!(Rate::parse("x/1h").is_err());
        assert!(Rate::parse("1/0s").is_err());
        assert!(Rate::parse("1/8d").unwrap_err().contains("7d"));
        assert!(
            Rate::parse("1/1y")
                .unwrap_err()
                .contains("unknown time unit")
        );
    }

    #[test]
    fn arguments() {
        let c = Config::from_args(args(&[("messages", "100/1h")])).unwrap();
        assert_eq!(c.key, Key::Client);
        assert!(c.exempt_mynetworks);
        assert_eq!(c.recipients, None);
        let c =
            Config::from_args(args(&[("key", "sasl_username"), ("recipients", "5/1m")])).unwrap();
        assert_eq!(c.key, Key::SaslUsername);
        assert!(!c.exempt_mynetworks);
        for (pairs, error) in [
            (&[][..], "messages: missing argument"),
            (
                &[("key", "helo"), ("messages", "1/1h")][..],
                "key: \"helo\"",
            ),
            (
                &[("messages", "lots")][..],
                "messages: \"lots\": expected N/WINDOW",
            ),
            (
                &[("messages", "1/1h"), ("exempt_mynetworks", "maybe")][..],
                "exempt_mynetworks",
            ),
            (
                &[("messages", "1/1h"), ("mesages", "1/1h")][..],
                "mesages: unknown argument",
            ),
        ] {
            let e = Config::from_args(args(pairs)).unwrap_err();
            assert!(e.starts_with(error), "{pairs:?}: {e}");
        }
    }
}
