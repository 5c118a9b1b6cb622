//! Instances that serve more than one transaction: only for a plugin
//! whose `init` called `host.reuse-instances`, one transaction at a time,
//! at most `max_use` of them, never after a failure or with a message
//! handle still held, never across snapshots.

use postern_mail::Policy as _;
use postern_mail::{MessageContent, PolicyRequest, PolicySession, Stage};
use postern_policy::{Limits, Snapshot};

use crate::session::warnings;
use crate::{GUESTS, RUNTIME, config, rcpt, table};

/// A snapshot whose recipient list is test_session with `args` (and, for
/// the end of data, the same entry there), every plugin limited to
/// `max_use` transactions an instance.
fn load(args: &[(&str, &str)], max_use: u32) -> Snapshot {
    let mut pairs = vec![("plugin", "test_session")];
    pairs.extend_from_slice(args);
    let mut config = config(vec![table(&pairs)]).with(Stage::EndOfData, vec![table(&pairs)]);
    config.limits = Limits {
        max_use,
        ..Limits::default()
    };
    config.plugin_dir = Some(GUESTS.path().to_path_buf());
    RUNTIME.load(&config).unwrap()
}

/// One transaction of a new session: `checks` RCPT checks, then the end
/// of the transaction; the warn texts of each check.
async fn transaction(s: &Snapshot, checks: usize) -> Vec<Vec<String>> {
    let mut session = PolicySession::new();
    let mut seen = Vec::new();
    for _ in 0..checks {
        seen.push(warnings(
            &s.check_in(&mut session, &rcpt(false, None)).await,
        ));
    }
    session.release();
    seen
}

#[tokio::test]
async fn an_instance_that_asked_serves_the_next_transactions() {
    let s = load(&[("reuse", "yes")], 100);
    assert_eq!(
        transaction(&s, 2).await,
        [["inits=1 checks=1"], ["inits=1 checks=2"]]
    );
    // The next session's transaction gets the same instance, without a
    // second `init`.
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=3"]]);
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=4"]]);
    // Checks outside a session too.
    assert_eq!(
        warnings(&s.check(&rcpt(false, None)).await),
        ["inits=1 checks=5"]
    );
    // Five calls, one instance made (the load's check of the arguments
    // is not counted).
    let stats = &s.stats()[0];
    assert_eq!((stats.calls, stats.instances), (5, 1));
}

#[tokio::test]
async fn without_asking_each_transaction_starts_afresh() {
    let s = load(&[], 100);
    for _ in 0..3 {
        assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
    }
    let stats = &s.stats()[0];
    assert_eq!((stats.calls, stats.instances), (3, 3));
}

#[tokio::test]
async fn an_instance_serves_one_transaction_at_a_time() {
    let s = load(&[("reuse", "yes")], 100);
    let req = rcpt(false, None);
    let (mut a, mut b) = (PolicySession::new(), PolicySession::new());
    assert_eq!(
        warnings(&s.check_in(&mut a, &req).await),
        ["inits=1 checks=1"]
    );
    // `a`'s instance is busy: `b` gets one of its own.
    assert_eq!(
        warnings(&s.check_in(&mut b, &req).await),
        ["inits=1 checks=1"]
    );
    assert_eq!(
        warnings(&s.check_in(&mut a, &req).await),
        ["inits=1 checks=2"]
    );
    b.release();
    a.release();
    // The last one back goes out first (its memory the likeliest to be
    // in the caches); the other waits its turn.
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=3"]]);
    let mut c = PolicySession::new();
    let mut d = PolicySession::new();
    assert_eq!(
        warnings(&s.check_in(&mut c, &req).await),
        ["inits=1 checks=4"]
    );
    assert_eq!(
        warnings(&s.check_in(&mut d, &req).await),
        ["inits=1 checks=2"]
    );
}

#[tokio::test]
async fn max_use_bounds_the_transactions_an_instance_serves() {
    let s = load(&[("reuse", "yes")], 2);
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=2"]]);
    // Two transactions served: the third gets a fresh instance.
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
    // max_use = 1 is no reuse at all.
    let s = load(&[("reuse", "yes")], 1);
    for _ in 0..2 {
        assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
    }
}

#[tokio::test]
async fn a_failed_instance_is_not_reused() {
    let s = load(&[("reuse", "yes"), ("do", "trap_on_second")], 100);
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
    // The reused instance traps on its second check: the entry's
    // on_error, and the instance is gone.
    let mut session = PolicySession::new();
    let d = s.check_in(&mut session, &rcpt(false, None)).await;
    assert_eq!(d.refusal().map(|r| r.code), Some(451), "{d:?}");
    session.release();
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
}

#[tokio::test]
async fn an_instance_holding_a_message_handle_is_not_reused() {
    let s = load(&[("reuse", "yes"), ("do", "keep")], 100);
    // No message at RCPT: nothing held, the instance goes back.
    assert_eq!(transaction(&s, 1).await, [["kept=0 checks=1"]]);
    assert_eq!(transaction(&s, 1).await, [["kept=0 checks=2"]]);
    // At the end of data it keeps a handle on the message: dropped with
    // its transaction, so the message goes too.
    let mut eod = PolicyRequest::new(Stage::EndOfData);
    eod.message = Some(MessageContent::new(b"Subject: x\r\n\r\nbody\r\n".to_vec()));
    let mut session = PolicySession::new();
    let d = s.check_in(&mut session, &eod).await;
    assert_eq!(warnings(&d), ["kept=1 checks=3"]);
    session.release();
    assert_eq!(transaction(&s, 1).await, [["kept=0 checks=1"]]);
}

#[tokio::test]
async fn a_new_snapshot_starts_every_plugin_afresh() {
    let old = load(&[("reuse", "yes")], 100);
    assert_eq!(transaction(&old, 1).await, [["inits=1 checks=1"]]);
    let new = load(&[("reuse", "yes")], 100);
    assert_eq!(transaction(&new, 1).await, [["inits=1 checks=1"]]);
    assert_eq!(transaction(&old, 1).await, [["inits=1 checks=2"]]);
}

#[tokio::test]
async fn idle_instances_keep_half_the_pool_at_most() {
    // 36 slots: 18 may wait idle, for every entry together.
    let runtime = postern_policy::Runtime::with_pool(
        postern_policy::STANDARD_PLUGINS,
        None,
        postern_policy::Pool {
            instances: 36,
            ..postern_policy::Pool::default()
        },
    )
    .unwrap();
    let entry =
        |action: &str| table(&[("plugin", "test_session"), ("reuse", "yes"), ("do", action)]);
    let config = config(vec![entry("count"), entry("remember")]);
    let s = runtime.load(&config).unwrap();
    let req = rcpt(false, None);
    // Ten transactions at once, two instances each: twenty made.
    let round = || async {
        let mut sessions: Vec<PolicySession> = (0..10).map(|_| PolicySession::new()).collect();
        let mut seen = Vec::new();
        for session in &mut sessions {
            seen.extend(warnings(&s.check_in(session, &req).await));
        }
        for mut session in sessions {
            session.release();
        }
        seen
    };
    let first = round().await;
    assert_eq!(first.len(), 20);
    assert!(first.iter().all(|w| w.ends_with("checks=1")), "{first:?}");
    // Eighteen went back; the next ten transactions reuse them and make
    // two afresh.
    let second = round().await;
    let fresh = second.iter().filter(|w| w.ends_with("checks=1")).count();
    assert_eq!((second.len(), fresh), (20, 2), "{second:?}");
}

#[tokio::test]
async fn an_instance_idle_past_max_idle_is_dropped() {
    let mut config = config(vec![table(&[("plugin", "test_session"), ("reuse", "yes")])]);
    config.limits = Limits {
        max_idle: std::time::Duration::from_secs(1),
        ..Limits::default()
    };
    let s = RUNTIME.load(&config).unwrap();
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=2"]]);
    // Unused for more than a second, then swept (the sweeper looks every
    // second): the next transaction starts afresh.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(transaction(&s, 1).await, [["inits=1 checks=1"]]);
}
