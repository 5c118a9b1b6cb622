//! The greylisting decision, postgrey's `smtpd_access_policy`, over a
//! [`State`]: the `kv` store in the server, [`postern_plugin_sdk::state::Memory`]
//! in the tests.
//!
//! Store keys (the plugin's own `kv` namespace):
//! - `t:CLIENT/SENDER/RECIPIENT` -> `FIRST,LAST`: when the triplet was
//!   first and last seen, kept `max_age` after the last time.
//! - `c:ADDRESS` -> how many transactions of the client passed, for the
//!   auto-whitelist, kept `max_age` after the last one.
//! - `x:INSTANCE` -> counts the passing recipients of one transaction, so
//!   that a message is counted and gets its header once.

use postern_plugin_sdk::address::domain;
use postern_plugin_sdk::state::{State, key};
use postern_plugin_sdk::{Reply, Request, Verdict};

use crate::Config;
use crate::net::client_key;

/// postgrey's sender substitutions: no address extension, no BATV tag,
/// and every all-digit word `#`, so that a mailing list's VERP bounces
/// (`list-bounces-1234@...`) make one triplet rather than one per
/// message.
pub fn sender_key(sender: &str) -> String {
    let Some((local, dom)) = sender.rsplit_once('@') else {
        return sender.to_owned();
    };
    // BATV (prvs=TAG=user): the tag changes with every message.
    let local = match local.strip_prefix("prvs=").and_then(|r| r.split_once('=')) {
        Some((_, user)) => user,
        None => local,
    };
    let local = local.split('+').next().unwrap_or(local);
    let mut out = String::with_capacity(local.len() + dom.len() + 1);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    // Perl's \b\d+\b: words are runs of letters, digits and '_'.
    for c in local.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    format!("{out}@{dom}")
}

/// Whether the recipient is in `whitelist_recipients` (`user@domain`,
/// `user@`, `domain`; an address extension is ignored, as postgrey does).
fn recipient_listed(config: &Config, recipient: &str) -> bool {
    let recipient = recipient.to_ascii_lowercase();
    let (local, dom) = recipient.rsplit_once('@').unwrap_or((&recipient, ""));
    let user = local.split('+').next().unwrap_or(local);
    config
        .whitelist_recipients
        .iter()
        .any(|w| match w.split_once('@') {
            Some((u, "")) => u == user,
            Some((u, d)) => u == user && d == dom,
            None => {
                dom == w
                    || dom
                        .strip_suffix(w.as_str())
                        .is_some_and(|r| r.ends_with('.'))
            }
        })
}

/// The verdict for `req`: dunno outside the recipient stages or for a
/// whitelisted client or recipient; the greylisting reply for a triplet
/// too young; else dunno, or the X-Greylist header for the first passing
/// recipient of a transaction that had to wait.
pub fn decide(config: &Config, state: &dyn State, req: &Request) -> Verdict {
    if req.recipient.is_empty() || req.client_address.is_empty() {
        return Verdict::Dunno;
    }
    if config
        .whitelist_clients
        .matches(&req.client_address, &req.client_name)
        || recipient_listed(config, &req.recipient)
    {
        return Verdict::Dunno;
    }
    let awl = key("c", &[&req.client_address]);
    let clients = config.auto_whitelist_clients;
    let count = || {
        state
            .get(&awl)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    if clients > 0 && count() >= clients {
        return Verdict::Dunno;
    }

    let now = state.now();
    let client = client_key(&req.client_address, &req.client_name, config.subnet);
    let triplet = key("t", &[&client, &sender_key(&req.sender), &req.recipient]);
    let seen = state.get(&triplet).and_then(|v| {
        let (first, last) = v.split_once(',')?;
        Some((first.parse::<u64>().ok()?, last.parse::<u64>().ok()?))
    });
    let (mut first, last_passed) = match seen {
        Some((first, last)) => (first, last.saturating_sub(first) >= config.delay),
        None => (now, false),
    };
    // Never retried within the retry window: it starts over.
    if let Some((f, l)) = seen
        && f == l
        && now.saturating_sub(f) > config.retry_window
    {
        first = now;
    }
    state.set(&triplet, &format!("{first},{now}"), config.max_age);

    let waited = now.saturating_sub(first);
    if waited < config.delay {
        let dom = domain(&req.recipient).unwrap_or_default();
        let text = config
            .text
            .replace("%r", &dom)
            .replace("%s", &(config.delay - waited).to_string());
        let reply = Reply {
            code: 450,
            enhanced: "4.2.0".to_owned(),
            text: format!("<{}>: Recipient address rejected: {text}", req.recipient),
        };
        return if config.if_permit {
            Verdict::DeferIfPermit(reply)
        } else {
            Verdict::Defer(reply)
        };
    }

    // Passed: count the transaction once, and tell the first recipient's
    // message how long it waited.
    let first_in_transaction =
        req.instance.is_empty() || state.incr(&key("x", &[&req.instance]), 1, 3600) == 1;
    if !first_in_transaction {
        return Verdict::Dunno;
    }
    if clients > 0 {
        state.set(&awl, &(count() + 1).to_string(), config.max_age);
    }
    if last_passed {
        Verdict::Dunno
    } else {
        Verdict::Prepend(format!(
            "X-Greylist: delayed {waited} seconds by postern greylist"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_plugin_sdk::Stage;
    use postern_plugin_sdk::state::Memory;

    fn request(client: &str, sender: &str, recipient: &str, instance: &str) -> Request {
        Request {
            instance: instance.to_owned(),
            client_address: client.to_owned(),
            client_port: 40000,
            helo_name: "client.example".to_owned(),
            sender: sender.to_owned(),
            recipient: recipient.to_owned(),
            ..Request::empty(Stage::Recipient)
        }
    }

    fn text(v: &Verdict) -> String {
        match v {
            Verdict::DeferIfPermit(r) | Verdict::Defer(r) => {
                format!("{} {} {}", r.code, r.enhanced, r.text)
            }
            Verdict::Prepend(h) => format!("prepend {h}"),
            Verdict::Dunno => "dunno".to_owned(),
            _ => "other".to_owned(),
        }
    }

    #[test]
    fn a_new_triplet_waits_the_delay_then_passes_with_a_header() {
        let c = Config::default();
        let s = Memory::at(1_000_000);
        let r = request("192.0.2.10", "a@sender.example", "u@example.org", "1");
        assert_eq!(
            text(&decide(&c, &s, &r)),
            "450 4.2.0 <u@example.org>: Recipient address rejected: \
             Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"
        );
        s.advance(299);
        let r = request("192.0.2.10", "a@sender.example", "u@example.org", "2");
        assert!(matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)));
        s.advance(1);
        // From another address of the same /24, as a pool of MTAs retries.
        let r = request("192.0.2.99", "a@sender.example", "u@example.org", "3");
        assert_eq!(
            text(&decide(&c, &s, &r)),
            "prepend X-Greylist: delayed 300 seconds by postern greylist"
        );
        // The next message passes without a header.
        s.advance(3600);
        let r = request("192.0.2.10", "a@sender.example", "u@example.org", "4");
        assert_eq!(text(&decide(&c, &s, &r)), "dunno");
        // Other triplets are greylisted on their own.
        let r = request("192.0.2.10", "b@sender.example", "u@example.org", "5");
        assert!(matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)));
        let r = request("198.51.100.1", "a@sender.example", "u@example.org", "6");
        assert!(matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)));
    }

    #[test]
    fn a_retry_after_the_retry_window_starts_over_and_max_age_forgets() {
        let c = Config {
            delay: 10,
            retry_window: 100,
            max_age: 1000,
            ..Config::default()
        };
        let s = Memory::at(5000);
        let r = request("192.0.2.1", "a@s.example", "u@example.org", "");
        assert!(matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)));
        s.advance(101);
        assert!(
            matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)),
            "starts over"
        );
        s.advance(10);
        assert!(matches!(decide(&c, &s, &r), Verdict::Prepend(_)));
        s.advance(999);
        assert!(
            matches!(decide(&c, &s, &r), Verdict::Dunno),
            "seen within max_age"
        );
        s.advance(1001);
        assert!(
            matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)),
            "forgotten"
        );
    }

    #[test]
    fn a_client_is_whitelisted_after_n_passing_transactions() {
        let c = Config {
            delay: 10,
            auto_whitelist_clients: 2,
            ..Config::default()
        };
        let s = Memory::at(5000);
        for (n, sender) in ["a@s.example", "b@s.example"].into_iter().enumerate() {
            let first = request("192.0.2.1", sender, "u@example.org", &format!("t{n}"));
            assert!(matches!(decide(&c, &s, &first), Verdict::DeferIfPermit(_)));
            s.advance(10);
            // A recipient greylisted on its own triplet is not counted; two
            // passing calls of one transaction count once.
            let r = request("192.0.2.1", sender, "v@example.org", &format!("r{n}"));
            assert!(matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)));
            let r = request("192.0.2.1", sender, "u@example.org", &format!("r{n}"));
            assert!(matches!(decide(&c, &s, &r), Verdict::Prepend(_)));
            assert!(
                matches!(decide(&c, &s, &r), Verdict::Dunno),
                "once a transaction"
            );
        }
        assert_eq!(s.get("c:192.0.2.1").as_deref(), Some("2"));
        let r = request("192.0.2.1", "new@other.example", "w@example.org", "z");
        assert_eq!(text(&decide(&c, &s, &r)), "dunno", "auto-whitelisted");
        // By address: a neighbour of the same /24 is not.
        let r = request("192.0.2.2", "new@other.example", "w@example.org", "z2");
        assert!(matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)));
    }

    #[test]
    fn whitelists_text_action_and_other_stages() {
        let c = Config::from_args(vec![
            ("whitelist_clients".to_owned(), "198.51.100.0/24".to_owned()),
            (
                "whitelist_recipients".to_owned(),
                "postmaster@ abuse@example.org lists.example.net".to_owned(),
            ),
            ("text".to_owned(), "try again in %s seconds (%r)".to_owned()),
            ("action".to_owned(), "defer".to_owned()),
        ])
        .unwrap();
        let s = Memory::at(5000);
        for (client, rcpt) in [
            ("198.51.100.7", "u@example.org"),
            ("192.0.2.1", "Postmaster@example.org"),
            ("192.0.2.1", "abuse+x@example.org"),
            ("192.0.2.1", "u@lists.example.net"),
            ("192.0.2.1", "u@a.lists.example.net"),
        ] {
            let r = request(client, "a@s.example", rcpt, "1");
            assert_eq!(text(&decide(&c, &s, &r)), "dunno", "{client} {rcpt}");
        }
        let r = request("192.0.2.1", "a@s.example", "abuse@example.net", "1");
        assert_eq!(
            text(&decide(&c, &s, &r)),
            "450 4.2.0 <abuse@example.net>: Recipient address rejected: \
             try again in 300 seconds (example.net)"
        );
        let mut r = request("192.0.2.1", "a@s.example", "", "1");
        r.stage = Stage::Sender;
        assert_eq!(text(&decide(&c, &s, &r)), "dunno");
    }

    #[test]
    fn senders_as_postgrey_substitutes_them() {
        assert_eq!(
            sender_key("list-bounces-1234@x.example"),
            "list-bounces-#@x.example"
        );
        assert_eq!(sender_key("user+tag@x.example"), "user@x.example");
        assert_eq!(
            sender_key("prvs=1234abcdef=user@x.example"),
            "user@x.example"
        );
        assert_eq!(sender_key("user123@x.example"), "user123@x.example");
        assert_eq!(sender_key("a.12.b_3@x.example"), "a.#.b_3@x.example");
        assert_eq!(sender_key(""), "");
    }

    #[test]
    fn long_addresses_still_make_a_key() {
        let c = Config::default();
        let s = Memory::at(5000);
        let long = format!("{}@example.org", "x".repeat(300));
        let r = request("192.0.2.1", &long, &long, "1");
        assert!(matches!(decide(&c, &s, &r), Verdict::DeferIfPermit(_)));
    }
}
