//! The `kv` plugins, `greylist` and `ratelimit`, through the runtime:
//! their state lives in the runtime's store, so it outlives the instance
//! of a call and a reload (a new snapshot), and entries of one plugin
//! keep their own counters in its namespace.

use std::net::IpAddr;

use postern_mail::Verdict;
use postern_policy::Snapshot;

use crate::{RUNTIME, config, rcpt, table};

fn load(pairs: &[(&str, &str)]) -> Snapshot {
    RUNTIME.load(&config(vec![table(pairs)])).unwrap()
}

/// A recipient request from `client` (each test its own, since the
/// store is shared by every test of this binary).
fn from(client: [u8; 4]) -> postern_mail::PolicyRequest {
    let mut r = rcpt(false, None);
    r.client_address = Some(IpAddr::from(client));
    r
}

#[tokio::test]
async fn greylisting_outlives_instances_and_reloads() {
    let grey = [("plugin", "greylist"), ("delay", "1s")];
    let s = load(&grey);
    let d = s.check(&from([198, 51, 100, 1])).await;
    assert_eq!(
        d.refusal().unwrap().to_wire(),
        "450 4.2.0 <x@example.com>: Recipient address rejected: Greylisted, see \
         http://postgrey.schweikert.ch/help/example.com.html\r\n"
    );
    assert_eq!(d.decided_by.as_deref(), Some("greylist"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // A new snapshot, as `postern reload` makes: the triplet is known.
    let s = load(&grey);
    let d = s.check(&from([198, 51, 100, 1])).await;
    assert!(d.refusal().is_none(), "{d:?}");
    assert!(
        matches!(&d.actions[..], [Verdict::Prepend(h)] if h.starts_with("X-Greylist: delayed ")),
        "{d:?}"
    );
    // Another client is greylisted.
    let d = s.check(&from([203, 0, 113, 1])).await;
    assert!(matches!(d.verdict, Verdict::Defer(_)), "{d:?}");
}

#[tokio::test]
async fn rate_limits_count_across_calls_per_entry() {
    let s = RUNTIME
        .load(&config(vec![
            table(&[("plugin", "ratelimit"), ("recipients", "2/1h")]),
            table(&[
                ("plugin", "ratelimit"),
                ("recipients", "3/1h"),
                ("key", "sender"),
            ]),
        ]))
        .unwrap();
    let mut r = from([192, 0, 2, 200]);
    r.sender = "rate@kv.example".to_owned();
    for _ in 0..2 {
        assert!(s.check(&r).await.refusal().is_none());
    }
    let d = s.check(&r).await;
    assert_eq!(
        d.refusal().unwrap().to_wire(),
        "450 4.7.1 Error: too many recipients from 192.0.2.200\r\n"
    );
    // The sender entry counted the first two only (the third call ended
    // at the first entry); a new client reaches it for its third.
    let mut other = from([192, 0, 2, 201]);
    other.sender = r.sender.clone();
    assert!(s.check(&other).await.refusal().is_none());
    let d = s.check(&other).await;
    assert_eq!(
        d.refusal().unwrap().to_wire(),
        "450 4.7.1 Error: too many recipients from rate@kv.example\r\n"
    );
}
