//! The instance pool (`Pool`): a call finds a pre-mapped slot, and when
//! there is none, or the plugin may use more memory than a slot holds, it
//! runs on demand instead of failing.

use std::time::Duration;

use postern_mail::Verdict;
use postern_policy::{Limits, PolicyConfig, Pool, Runtime, STANDARD_PLUGINS};

use crate::{Logs, lines, plugin_dir, rcpt, rcpt_id, recipient_list, table, wasm};

#[tokio::test]
async fn a_full_pool_falls_back_to_on_demand_allocation() {
    let logs = Logs::capture("permit_mynetworks allocated on demand");
    let pool = Pool {
        instances: 1,
        ..Pool::default()
    };
    let runtime = Runtime::with_pool(STANDARD_PLUGINS, None, pool).unwrap();
    let hostile = std::fs::read(wasm("test_hostile")).unwrap();
    let dir = plugin_dir(&[("test_hostile.wasm", &hostile)]);
    let mut sleeper = PolicyConfig::default().with(
        postern_mail::Stage::Recipient,
        vec![table(&[("plugin", "test_hostile"), ("check", "sleep")])],
    );
    sleeper.plugin_dir = Some(dir.path().to_path_buf());
    sleeper.plugin_limits.insert(
        "test_hostile".to_owned(),
        Limits {
            deadline: Duration::from_millis(400),
            ..Limits::default()
        },
    );
    let sleeper = runtime.load(&sleeper).unwrap();
    let mut permit = PolicyConfig::default().with(
        postern_mail::Stage::Recipient,
        lines(&["permit_mynetworks"]),
    );
    // The first call that falls back compiles the on-demand copy: time
    // enough for that in a debug build.
    permit.plugin_limits.insert(
        "permit_mynetworks".to_owned(),
        Limits {
            deadline: Duration::from_secs(20),
            ..Limits::default()
        },
    );
    let permit = runtime.load(&permit).unwrap();
    let asleep = rcpt_id("POOL1", false, None);
    // The sleeper holds the pool's one slot until its deadline; the calls
    // made meanwhile get no slot and must still answer.
    let (slept, answers) = tokio::join!(sleeper.check(&asleep), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(permit.check(&rcpt(true, None)).await.verdict);
        }
        answers
    });
    assert!(slept.refusal().is_some(), "{slept:?}");
    assert_eq!(answers, [Verdict::Permit, Verdict::Permit, Verdict::Permit]);
    assert!(!logs.text().is_empty(), "no call fell back");
    // With the slot free again, calls go back to the pool.
    assert_eq!(
        permit.check(&rcpt(true, None)).await.verdict,
        Verdict::Permit
    );
}

#[tokio::test]
async fn no_pool_at_all_still_answers() {
    let pool = Pool {
        instances: 0,
        ..Pool::default()
    };
    let runtime = Runtime::with_pool(STANDARD_PLUGINS, None, pool).unwrap();
    let permit = PolicyConfig::default().with(
        postern_mail::Stage::Recipient,
        lines(&["permit_mynetworks"]),
    );
    let s = runtime.load(&permit).unwrap();
    assert_eq!(s.check(&rcpt(true, None)).await.verdict, Verdict::Permit);
}

#[tokio::test]
async fn a_plugin_allowed_more_memory_than_a_slot_runs_on_demand() {
    // A slot holds 32 MiB (Pool::default); this entry may use 64 MiB, so
    // it must run on demand, where its own limit is the one that holds
    // and is named (in a slot, the pool's cap would refuse at 32 MiB
    // without saying why).
    let logs = Logs::capture("GROW64");
    let s = recipient_list(vec![table(&[
        ("plugin", "test_hostile"),
        ("check", "grow"),
        ("memory_limit", "64M"),
    ])]);
    let d = s.check(&rcpt_id("GROW64", false, None)).await;
    assert!(d.refusal().is_some(), "{d:?}");
    let text = logs.text();
    assert!(text.contains("the limit is 64 MiB"), "{text}");
}
