//! Lists without plugins, lists around them, and the reload handle.

use std::sync::Arc;

use postern_mail::{Decision, DomainClass, Policy, Stage, Verdict};
use postern_policy::{Policies, PolicyConfig};

use crate::{Logs, RUNTIME, lines, rcpt, rcpt_id, recipient_list};

#[tokio::test]
async fn an_empty_or_missing_list_permits() {
    let s = recipient_list(Vec::new());
    assert_eq!(s.check(&rcpt(false, None)).await, Decision::permit());
    let s = RUNTIME.load(&PolicyConfig::default()).unwrap();
    assert_eq!(s.check(&rcpt(false, None)).await, Decision::permit());
}

#[tokio::test]
async fn builtins_answer_as_postfix() {
    let req = rcpt(false, None);
    let d = recipient_list(lines(&["dunno", "reject", "permit"]))
        .check(&req)
        .await;
    assert_eq!(d.verdict, Verdict::reject_default());
    assert_eq!(d.decided_by.as_deref(), Some("reject"));
    assert_eq!(d.refusal().unwrap().to_string(), "554 5.7.1 Access denied");

    let d = recipient_list(lines(&["defer"])).check(&req).await;
    assert_eq!(d.verdict, Verdict::defer_default());
    assert_eq!(d.decided_by.as_deref(), Some("defer"));

    let d = recipient_list(lines(&["permit", "reject"]))
        .check(&req)
        .await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert_eq!(d.decided_by.as_deref(), Some("permit"));
}

#[tokio::test]
async fn each_stage_has_its_own_list() {
    let config = PolicyConfig::default()
        .with(
            Stage::Relay,
            lines(&["permit_mynetworks", "reject_unauth_destination"]),
        )
        .with(Stage::Recipient, lines(&["reject"]));
    let s = RUNTIME.load(&config).unwrap();
    let mut relay = rcpt(true, Some(DomainClass::Other));
    relay.stage = Stage::Relay;
    assert_eq!(s.check(&relay).await.verdict, Verdict::Permit);
    let d = s.check(&rcpt(true, Some(DomainClass::Other))).await;
    assert_eq!(d.decided_by.as_deref(), Some("reject"));
    let names: Vec<&str> = s.entries(Stage::Relay).map(|e| e.name()).collect();
    assert_eq!(names, ["permit_mynetworks", "reject_unauth_destination"]);
}

#[tokio::test]
async fn warn_if_reject_logs_and_does_not_enforce() {
    let logs = Logs::capture("SHADOW1");
    let s = recipient_list(lines(&["warn_if_reject reject_unauth_destination"]));
    let d = s
        .check(&rcpt_id("SHADOW1", false, Some(DomainClass::Other)))
        .await;
    assert_eq!(d, Decision::permit());
    let text = logs.text();
    assert!(
        text.contains(
            "SHADOW1: reject_warning: RCPT from unknown[192.0.2.1]: 554 5.7.1 \
             <x@example.com>: Relay access denied; from=<a@example.net> \
             to=<x@example.com> proto=ESMTP helo=<client.example.net>"
        ),
        "{text}"
    );
    assert!(
        text.contains("plugin=\"reject_unauth_destination\""),
        "{text}"
    );
}

#[tokio::test]
async fn policies_swap_snapshots_and_serve_as_dyn_policy() {
    let policies = Arc::new(Policies::new(recipient_list(lines(&["permit"]))));
    let policy: Arc<dyn Policy> = policies.clone();
    let req = rcpt(false, None);
    assert_eq!(policy.check(&req).await.verdict, Verdict::Permit);
    let before = policies.current();
    let old = policies.replace(recipient_list(lines(&["reject"])));
    assert!(Arc::ptr_eq(&old, &before));
    assert_eq!(policy.check(&req).await.verdict, Verdict::reject_default());
    // A transaction that kept the old snapshot still sees it.
    assert_eq!(before.check(&req).await.verdict, Verdict::Permit);
}
