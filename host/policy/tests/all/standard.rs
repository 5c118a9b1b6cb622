//! The standard plugins, as embedded.

use postern_mail::{Decision, DomainClass, EnhancedCode, Reply, Verdict};
use postern_policy::STANDARD_PLUGINS;

use crate::{RUNTIME, config, lines, rcpt, recipient_list, table};

fn relay_denied() -> Verdict {
    Verdict::Reject(Reply::new(
        554,
        EnhancedCode::new(5, 7, 1),
        "<x@example.com>: Relay access denied",
    ))
}

const CLASSES: [Option<DomainClass>; 5] = [
    Some(DomainClass::Local),
    Some(DomainClass::Virtual),
    Some(DomainClass::Relay),
    Some(DomainClass::Other),
    None,
];

#[test]
fn both_are_embedded() {
    let names: Vec<&str> = STANDARD_PLUGINS.iter().map(|(n, _)| *n).collect();
    // Every crate of plugins/ but the test guests, sorted; the list grows
    // as plugins are added, so check a few rather than all.
    assert!(names.is_sorted(), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("test_")), "{names:?}");
    for name in [
        "greylist",
        "permit_mynetworks",
        "permit_pop_before_smtp",
        "permit_sasl_authenticated",
        "ratelimit",
        "reject_unauth_destination",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for (name, bytes) in STANDARD_PLUGINS {
        assert!(bytes.starts_with(b"\0asm"), "{name}");
    }
}

#[tokio::test]
async fn permit_mynetworks_permits_trusted_and_dunnos_untrusted() {
    let s = recipient_list(lines(&["permit_mynetworks"]));
    let d = s.check(&rcpt(true, None)).await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert_eq!(d.decided_by.as_deref(), Some("permit_mynetworks"));
    // Dunno: the list runs out, which permits, decided by no entry.
    assert_eq!(s.check(&rcpt(false, None)).await, Decision::permit());
}

#[tokio::test]
async fn reject_unauth_destination_rejects_other_domains() {
    let s = recipient_list(lines(&["reject_unauth_destination"]));
    for class in [Some(DomainClass::Other), None] {
        let d = s.check(&rcpt(false, class)).await;
        assert_eq!(d.verdict, relay_denied(), "{class:?}");
        assert_eq!(d.decided_by.as_deref(), Some("reject_unauth_destination"));
        assert_eq!(
            d.refusal().unwrap().to_wire(),
            "554 5.7.1 <x@example.com>: Relay access denied\r\n"
        );
    }
    for class in [DomainClass::Local, DomainClass::Virtual, DomainClass::Relay] {
        let d = s.check(&rcpt(false, Some(class))).await;
        assert_eq!(d, Decision::permit(), "{class:?}");
    }
    // Like Postfix, it does not look at the client...
    let d = s.check(&rcpt(true, Some(DomainClass::Other))).await;
    assert_eq!(d.verdict, relay_denied());
    // ...and has no opinion before a recipient is known.
    let mut early = rcpt(false, None);
    early.recipient.clear();
    assert_eq!(s.check(&early).await, Decision::permit());
}

#[tokio::test]
async fn defer_unauth_destination_defers_other_domains_with_454() {
    let s = recipient_list(lines(&["defer_unauth_destination"]));
    for class in [Some(DomainClass::Other), None] {
        let d = s.check(&rcpt(false, class)).await;
        assert!(matches!(d.verdict, Verdict::Defer(_)), "{class:?}");
        assert_eq!(d.decided_by.as_deref(), Some("defer_unauth_destination"));
        assert_eq!(
            d.refusal().unwrap().to_wire(),
            "454 4.7.1 <x@example.com>: Relay access denied\r\n"
        );
    }
    for class in [DomainClass::Local, DomainClass::Virtual, DomainClass::Relay] {
        let d = s.check(&rcpt(false, Some(class))).await;
        assert_eq!(d, Decision::permit(), "{class:?}");
    }
    let mut early = rcpt(false, None);
    early.recipient.clear();
    assert_eq!(s.check(&early).await, Decision::permit());
    assert!(matches!(
        recipient_list(lines(&["defer_unauth_destination"]))
            .check(&rcpt(true, None))
            .await
            .verdict,
        Verdict::Defer(_)
    ));
    assert!(
        RUNTIME
            .load(&config(vec![table(&[
                ("plugin", "defer_unauth_destination"),
                ("x", "1")
            ])]))
            .is_err()
    );
}

#[tokio::test]
async fn mynetworks_then_unauth_destination_over_every_combination() {
    let s = recipient_list(lines(&["permit_mynetworks", "reject_unauth_destination"]));
    for trusted in [true, false] {
        for class in CLASSES {
            let d = s.check(&rcpt(trusted, class)).await;
            let ours = matches!(
                class,
                Some(DomainClass::Local | DomainClass::Virtual | DomainClass::Relay)
            );
            let (verdict, by) = match (trusted, ours) {
                (true, _) => (Verdict::Permit, Some("permit_mynetworks")),
                (false, true) => (Verdict::Permit, None),
                (false, false) => (relay_denied(), Some("reject_unauth_destination")),
            };
            assert_eq!(d.verdict, verdict, "trusted={trusted} class={class:?}");
            assert_eq!(
                d.decided_by.as_deref(),
                by,
                "trusted={trusted} class={class:?}"
            );
            assert!(d.actions.is_empty());
        }
    }
}
