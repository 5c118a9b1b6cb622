//! The rate-limit decision over a [`State`]: the `kv` store in the
//! server, [`postern_plugin_sdk::state::Memory`] in the tests.
//!
//! Store keys (the plugin's own `kv` namespace), each prefixed by the
//! entry's key kind and limit so that entries do not share counters:
//! - `m:KIND/N/WINDOW/VALUE` -> transactions in the current window.
//! - `r:KIND/N/WINDOW/VALUE` -> recipients in the current window.
//! - `x:KIND/N/WINDOW/INSTANCE` -> marks a transaction already counted.

use postern_plugin_sdk::state::{State, key};
use postern_plugin_sdk::{Request, Stage, Verdict, defer};

use crate::{Config, Key, Rate};

/// What `req` is counted under, if anything: the client's address, the
/// sender (`<>` for the null sender, nothing before MAIL FROM), the SASL
/// user (nothing for a client that did not log in).
fn value(config: &Config, req: &Request) -> Option<String> {
    let v = match config.key {
        Key::Client => req.client_address.clone(),
        Key::Sender if req.stage == Stage::Client || req.stage == Stage::Helo => String::new(),
        Key::Sender if req.sender.is_empty() => "<>".to_owned(),
        Key::Sender => req.sender.to_lowercase(),
        Key::SaslUsername => req.sasl_username.clone(),
    };
    (!v.is_empty()).then_some(v)
}

/// The name of one counter of this entry.
fn counter(kind: &str, config: &Config, rate: Rate, value: &str) -> String {
    let limits = format!("{}/{}/{}", config.key.name(), rate.limit, rate.window);
    key(kind, &[&limits, value])
}

/// The verdict for `req`: dunno while under every limit (or when the
/// request has nothing to count), else Postfix's 450 4.7.1 reply.
pub fn decide(config: &Config, state: &dyn State, req: &Request) -> Verdict {
    if config.exempt_mynetworks && req.trusted {
        return Verdict::Dunno;
    }
    let Some(value) = value(config, req) else {
        return Verdict::Dunno;
    };
    // Postfix's texts (smtpd.c): "too much mail from", "too many
    // recipients from", with the client's address where we say the key.
    if let Some(rate) = config.messages
        && req.stage != Stage::Client
        && req.stage != Stage::Helo
    {
        let count_key = counter("m", config, rate, &value);
        // A transaction counts once: at the first of its requests that
        // reaches this entry. Without an instance token, every call.
        let first = req.instance.is_empty()
            || state.incr(&counter("x", config, rate, &req.instance), 1, rate.window) == 1;
        let n = if first {
            state.incr(&count_key, 1, rate.window)
        } else {
            state
                .get(&count_key)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        if u64::try_from(n).unwrap_or(0) > rate.limit {
            return defer(450, "4.7.1", format!("Error: too much mail from {value}"));
        }
    }
    if let Some(rate) = config.recipients
        && !req.recipient.is_empty()
        && matches!(req.stage, Stage::Relay | Stage::Recipient)
    {
        let n = state.incr(&counter("r", config, rate, &value), 1, rate.window);
        if u64::try_from(n).unwrap_or(0) > rate.limit {
            return defer(
                450,
                "4.7.1",
                format!("Error: too many recipients from {value}"),
            );
        }
    }
    Verdict::Dunno
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_plugin_sdk::state::Memory;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_args(postern_plugin_sdk::args::pairs(pairs)).unwrap()
    }

    fn request(stage: Stage, instance: &str, recipient: &str) -> Request {
        Request {
            instance: instance.to_owned(),
            client_address: "192.0.2.7".to_owned(),
            client_port: 40000,
            helo_name: "client.example".to_owned(),
            sender: "Alice@Sender.example".to_owned(),
            recipient: recipient.to_owned(),
            ..Request::empty(stage)
        }
    }

    fn text(v: &Verdict) -> String {
        match v {
            Verdict::Defer(r) => format!("{} {} {}", r.code, r.enhanced, r.text),
            Verdict::Dunno => "dunno".to_owned(),
            _ => "other".to_owned(),
        }
    }

    #[test]
    fn messages_per_window_count_each_transaction_once() {
        let c = config(&[("messages", "2/1m")]);
        let s = Memory::at(1000);
        for tx in ["a", "b"] {
            for rcpt in ["u@example.org", "v@example.org", "w@example.org"] {
                let r = request(Stage::Recipient, tx, rcpt);
                assert_eq!(text(&decide(&c, &s, &r)), "dunno", "{tx} {rcpt}");
            }
        }
        let r = request(Stage::Recipient, "c", "u@example.org");
        assert_eq!(
            text(&decide(&c, &s, &r)),
            "450 4.7.1 Error: too much mail from 192.0.2.7"
        );
        // The rest of that transaction is refused too.
        let r = request(Stage::Recipient, "c", "v@example.org");
        assert!(matches!(decide(&c, &s, &r), Verdict::Defer(_)));
        // The window is fixed: it ends a minute after the first message.
        s.advance(59);
        assert!(matches!(
            decide(&c, &s, &request(Stage::Sender, "d", "")),
            Verdict::Defer(_)
        ));
        s.advance(1);
        assert_eq!(
            text(&decide(&c, &s, &request(Stage::Sender, "e", ""))),
            "dunno"
        );
        // Nothing to count before a transaction.
        for _ in 0..5 {
            assert_eq!(
                text(&decide(&c, &s, &request(Stage::Helo, "", ""))),
                "dunno"
            );
        }
    }

    #[test]
    fn recipients_per_window() {
        let c = config(&[("recipients", "3/1h")]);
        let s = Memory::at(1000);
        for n in 0..3 {
            let r = request(Stage::Recipient, "a", &format!("u{n}@example.org"));
            assert_eq!(text(&decide(&c, &s, &r)), "dunno");
        }
        // MAIL FROM has no recipient to count.
        assert_eq!(
            text(&decide(&c, &s, &request(Stage::Sender, "b", ""))),
            "dunno"
        );
        let r = request(Stage::Recipient, "b", "x@example.org");
        assert_eq!(
            text(&decide(&c, &s, &r)),
            "450 4.7.1 Error: too many recipients from 192.0.2.7"
        );
        s.advance(3600);
        assert_eq!(text(&decide(&c, &s, &r)), "dunno");
    }

    #[test]
    fn keys_sender_and_sasl_user_and_exemptions() {
        let c = config(&[("key", "sender"), ("messages", "1/1h")]);
        let s = Memory::at(1000);
        assert_eq!(
            text(&decide(&c, &s, &request(Stage::Sender, "a", ""))),
            "dunno"
        );
        let mut r = request(Stage::Sender, "b", "");
        r.client_address = "198.51.100.1".to_owned();
        r.sender = "alice@sender.example".to_owned();
        assert_eq!(
            text(&decide(&c, &s, &r)),
            "450 4.7.1 Error: too much mail from alice@sender.example",
            "counted per sender, whatever the client"
        );
        let mut null = request(Stage::Sender, "c", "");
        null.sender = String::new();
        assert_eq!(text(&decide(&c, &s, &null)), "dunno");
        null.instance = "d".to_owned();
        assert_eq!(
            text(&decide(&c, &s, &null)),
            "450 4.7.1 Error: too much mail from <>"
        );

        let c = config(&[("key", "sasl_username"), ("messages", "1/1h")]);
        let mut r = request(Stage::Sender, "e", "");
        for _ in 0..3 {
            assert_eq!(
                text(&decide(&c, &s, &r)),
                "dunno",
                "not logged in: not counted"
            );
            r.instance.push('x');
        }
        r.sasl_username = "alice".to_owned();
        assert_eq!(text(&decide(&c, &s, &r)), "dunno");
        r.instance.push('x');
        assert_eq!(
            text(&decide(&c, &s, &r)),
            "450 4.7.1 Error: too much mail from alice"
        );

        // mynetworks: exempt by default for the client key only.
        let c = config(&[("messages", "0/1h")]);
        let mut r = request(Stage::Sender, "f", "");
        r.trusted = true;
        assert_eq!(text(&decide(&c, &s, &r)), "dunno");
        let c = config(&[("messages", "0/1h"), ("exempt_mynetworks", "no")]);
        assert!(matches!(decide(&c, &s, &r), Verdict::Defer(_)));
    }

    #[test]
    fn entries_keep_their_own_counters() {
        let per_minute = config(&[("messages", "1/1m")]);
        let per_hour = config(&[("messages", "5/1h")]);
        let s = Memory::at(1000);
        let r = request(Stage::Sender, "a", "");
        assert_eq!(text(&decide(&per_minute, &s, &r)), "dunno");
        assert_eq!(
            text(&decide(&per_hour, &s, &r)),
            "dunno",
            "counted by each entry"
        );
        let r = request(Stage::Sender, "b", "");
        assert!(matches!(decide(&per_minute, &s, &r), Verdict::Defer(_)));
        assert_eq!(text(&decide(&per_hour, &s, &r)), "dunno");
    }
}
