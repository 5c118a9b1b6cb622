//! What crosses the WIT boundary: request attributes out, every verdict
//! kind back, the `host` imports.

use postern_mail::{Address, DomainClass, EnhancedCode, Reply, Verdict};
use postern_policy::Error;

use crate::{Logs, RUNTIME, config, lines, rcpt, recipient_list, table};

/// Loads test_answer with `args` as the recipient list.
fn answer(args: &[(&str, &str)]) -> postern_policy::Snapshot {
    let mut pairs = vec![("plugin", "test_answer")];
    pairs.extend_from_slice(args);
    recipient_list(vec![table(&pairs)])
}

#[tokio::test]
async fn the_request_reaches_the_plugin() {
    let s = answer(&[
        ("verdict", "reject"),
        ("code", "550"),
        (
            "text",
            "{recipient} {sender} {client_address} {stage} {trusted} {class}",
        ),
    ]);
    let d = s.check(&rcpt(true, Some(DomainClass::Relay))).await;
    assert_eq!(
        d.verdict,
        Verdict::Reject(Reply::new(
            550,
            EnhancedCode::new(5, 7, 1),
            "x@example.com a@example.net 192.0.2.1 Stage::Recipient true \
             Some(DomainClass::Relay)"
        ))
    );
    assert_eq!(d.decided_by.as_deref(), Some("test_answer"));
}

#[tokio::test]
async fn table_arguments_reach_init_in_key_order() {
    let s = answer(&[("verdict", "warn"), ("text", "{args}"), ("code", "0")]);
    let d = s.check(&rcpt(false, None)).await;
    assert_eq!(
        d.actions,
        [Verdict::Warn(
            r#"[("code", "0"), ("text", "{args}"), ("verdict", "warn")]"#.to_owned()
        )]
    );
}

#[tokio::test]
async fn every_verdict_kind_maps() {
    let req = rcpt(false, None);
    let d = answer(&[
        ("verdict", "defer_if_permit"),
        ("code", "450"),
        ("text", "later"),
    ])
    .check(&req)
    .await;
    assert_eq!(
        d.verdict,
        Verdict::Defer(Reply::new(450, EnhancedCode::new(4, 7, 1), "later"))
    );
    let d = answer(&[("verdict", "defer"), ("code", "421"), ("enhanced", "4.3.2")])
        .check(&req)
        .await;
    assert_eq!(
        d.verdict,
        Verdict::Defer(Reply::new(
            421,
            EnhancedCode::new(4, 3, 2),
            "Try again later"
        ))
    );
    for (kind, text, action) in [
        ("hold", "look", Verdict::Hold("look".to_owned())),
        (
            "prepend",
            "X-Seen: yes",
            Verdict::Prepend("X-Seen: yes".to_owned()),
        ),
        ("warn", "odd", Verdict::Warn("odd".to_owned())),
        (
            "redirect",
            "abuse@example.org",
            Verdict::Redirect(Address::parse("abuse@example.org").unwrap()),
        ),
        (
            "bcc",
            "<archive@example.org>",
            Verdict::Bcc(Address::parse("archive@example.org").unwrap()),
        ),
    ] {
        let d = answer(&[("verdict", kind), ("text", text)])
            .check(&req)
            .await;
        assert_eq!(d.verdict, Verdict::Permit, "{kind}");
        assert_eq!(d.decided_by, None, "{kind}");
        assert_eq!(d.actions, [action], "{kind}");
    }
    // DISCARD ends the list as a permit would, the action kept.
    let d = answer(&[("verdict", "discard"), ("text", "spam")])
        .check(&req)
        .await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert_eq!(d.decided_by.as_deref(), Some("test_answer"));
    assert_eq!(d.actions, [Verdict::Discard("spam".to_owned())]);
}

#[tokio::test]
async fn host_log_and_now() {
    let logs = Logs::capture("hello forged line");
    let s = answer(&[
        ("verdict", "warn"),
        ("text", "{now}"),
        ("log", "hello\nforged line"),
    ]);
    let d = s.check(&rcpt(false, None)).await;
    let Verdict::Warn(now) = &d.actions[0] else {
        panic!("{d:?}")
    };
    let now: u64 = now.parse().unwrap();
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(host_now) < 5, "{now} vs {host_now}");
    let text = logs.text();
    assert!(text.contains("hello forged line"), "{text}");
    assert!(text.contains("plugin=\"test_answer\""), "{text}");
}

#[test]
fn positional_arguments_are_numbered() {
    let err = RUNTIME
        .load(&config(lines(&["test_answer hash:/etc/x"])))
        .unwrap_err();
    assert!(matches!(err, Error::InitRefused { .. }), "{err:?}");
    assert!(err.to_string().ends_with("1: unknown argument"), "{err}");
}
