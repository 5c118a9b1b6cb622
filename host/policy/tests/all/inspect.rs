//! The tooling side of the runtime: counters per plugin
//! ([`Snapshot::stats`]), the plugin listing and a trial call.

use postern_mail::{Stage, Verdict};
use postern_policy::{PluginSource, TrialFailure};

use crate::{RUNTIME, config, rcpt, recipient_list, table};

#[tokio::test]
async fn counters_count_calls_verdicts_and_failures_per_plugin() {
    let s = recipient_list(vec![
        table(&[
            ("plugin", "test_answer"),
            ("verdict", "warn"),
            ("text", "w"),
        ]),
        table(&[
            ("plugin", "test_hostile"),
            ("check", "trap"),
            ("on_error", "dunno"),
        ]),
        table(&[
            ("plugin", "test_answer"),
            ("verdict", "reject"),
            ("code", "550"),
        ]),
    ]);
    for _ in 0..3 {
        s.check(&rcpt(false, None)).await;
    }
    let stats = s.stats();
    let names: Vec<&str> = stats.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["test_answer", "test_hostile"]);
    let answer = &stats[0];
    assert_eq!((answer.calls, answer.failures), (6, 0));
    assert_eq!(answer.verdicts, [("reject", 3), ("warn", 3)]);
    assert!(
        answer.p50.is_some() && answer.p50 <= answer.p99,
        "{answer:?}"
    );
    let hostile = &stats[1];
    assert_eq!((hostile.calls, hostile.failures), (3, 3));
    assert!(hostile.verdicts.is_empty());
}

#[test]
fn plugins_lists_sources_and_the_lists_that_use_them() {
    let config = config(vec![table(&[("plugin", "test_answer")])]);
    let plugins = RUNTIME.plugins(&config).unwrap();
    let answer = plugins.iter().find(|p| p.name == "test_answer").unwrap();
    assert!(matches!(&answer.source, PluginSource::File(p) if p.ends_with("test_answer.wasm")));
    assert_eq!(answer.used_by, [Stage::Recipient]);
    assert_eq!(answer.sha256.len(), 64);
    let standard = plugins
        .iter()
        .find(|p| p.name == "permit_mynetworks")
        .unwrap();
    assert_eq!(standard.source, PluginSource::Embedded);
    assert!(standard.used_by.is_empty());
}

#[test]
fn a_trial_reports_what_on_error_would_hide() {
    let config = config(Vec::new());
    let entry = table(&[("plugin", "test_answer"), ("verdict", "permit")]);
    let trial = RUNTIME.trial(&config, &entry, &rcpt(false, None)).unwrap();
    assert_eq!(trial.outcome, Ok(Verdict::Permit));
    let entry = table(&[("plugin", "test_hostile"), ("check", "bad_code")]);
    let trial = RUNTIME.trial(&config, &entry, &rcpt(false, None)).unwrap();
    assert!(
        matches!(&trial.outcome, Err(TrialFailure::BadAnswer(m)) if m.contains("250")),
        "{:?}",
        trial.outcome
    );
    let entry = table(&[("plugin", "nope")]);
    assert!(RUNTIME.trial(&config, &entry, &rcpt(false, None)).is_err());
}
