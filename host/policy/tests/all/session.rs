//! A store per (session, plugin): instances kept for the checks of one
//! transaction, shared by entries that would make the same instance,
//! dropped on failure and at release; a transaction pinned to one
//! snapshot across a reload; and the end-of-data `message` resource.

use std::sync::Arc;

use postern_mail::{MessageContent, Policy, PolicyRequest, PolicySession, Stage, Verdict};
use postern_policy::{Entry, Policies, PolicyConfig, Snapshot};

use crate::{GUESTS, RUNTIME, rcpt, table};

/// test_session with `args`, as an entry.
fn session_entry(args: &[(&str, &str)]) -> Entry {
    let mut pairs = vec![("plugin", "test_session")];
    pairs.extend_from_slice(args);
    table(&pairs)
}

/// A snapshot with `lists`, the test guests available.
fn load(lists: Vec<(Stage, Vec<Entry>)>) -> Snapshot {
    let mut config = PolicyConfig::default();
    for (stage, entries) in lists {
        config = config.with(stage, entries);
    }
    config.plugin_dir = Some(GUESTS.path().to_path_buf());
    RUNTIME.load(&config).unwrap()
}

/// The warn texts of a decision.
pub(crate) fn warnings(d: &postern_mail::Decision) -> Vec<String> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Verdict::Warn(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_session_keeps_its_instance_until_released() {
    let s = load(vec![(Stage::Recipient, vec![session_entry(&[])])]);
    let mut session = PolicySession::new();
    let req = rcpt(false, None);
    for n in 1..=3 {
        let d = s.check_in(&mut session, &req).await;
        assert_eq!(warnings(&d), [format!("inits=1 checks={n}")]);
    }
    session.release();
    let d = s.check_in(&mut session, &req).await;
    assert_eq!(warnings(&d), ["inits=1 checks=1"]);
    // Without a session, each check has an instance of its own.
    for _ in 0..2 {
        assert_eq!(warnings(&s.check(&req).await), ["inits=1 checks=1"]);
    }
    // Another session has its own.
    let mut other = PolicySession::new();
    let d = s.check_in(&mut other, &req).await;
    assert_eq!(warnings(&d), ["inits=1 checks=1"]);
}

#[tokio::test]
async fn entries_with_the_same_arguments_share_an_instance() {
    let remember = || session_entry(&[("do", "remember")]);
    let s = load(vec![
        (Stage::Sender, vec![remember()]),
        (
            Stage::Recipient,
            vec![
                remember(),
                session_entry(&[("do", "remember"), ("word", "x")]),
            ],
        ),
    ]);
    let mut session = PolicySession::new();
    let mut mail = rcpt(false, None);
    mail.stage = Stage::Sender;
    mail.sender = "first@example.net".to_owned();
    s.check_in(&mut session, &mail).await;
    let mut to = rcpt(false, None);
    to.sender = "second@example.net".to_owned();
    let d = s.check_in(&mut session, &to).await;
    // The first recipient entry is the sender stage's instance; the second
    // has other arguments, so an instance of its own.
    assert_eq!(
        warnings(&d),
        [
            "first=first@example.net checks=2",
            "first=second@example.net checks=1"
        ]
    );
}

#[tokio::test]
async fn a_failed_instance_is_never_called_again() {
    let s = load(vec![(
        Stage::Recipient,
        vec![session_entry(&[("do", "trap_on_second")])],
    )]);
    let mut session = PolicySession::new();
    let req = rcpt(false, None);
    let d = s.check_in(&mut session, &req).await;
    assert_eq!(warnings(&d), ["inits=1 checks=1"]);
    let d = s.check_in(&mut session, &req).await;
    assert_eq!(d.refusal().map(|r| r.code), Some(451), "{d:?}");
    // A new instance, counting from one again.
    let d = s.check_in(&mut session, &req).await;
    assert_eq!(warnings(&d), ["inits=1 checks=1"]);
}

#[tokio::test]
async fn a_transaction_keeps_its_snapshot_across_a_reload() {
    let answer = |text: &str| {
        load(vec![(
            Stage::Recipient,
            vec![table(&[
                ("plugin", "test_answer"),
                ("verdict", "warn"),
                ("text", text),
            ])],
        )])
    };
    let policies = Policies::new(answer("old"));
    let mut session = PolicySession::new();
    let req = rcpt(false, None);
    assert_eq!(
        warnings(&policies.check_in(&mut session, &req).await),
        ["old"]
    );
    policies.replace(answer("new"));
    // The transaction in progress goes on with the snapshot it started on;
    // a check outside any session sees the new one at once.
    assert_eq!(
        warnings(&policies.check_in(&mut session, &req).await),
        ["old"]
    );
    assert_eq!(warnings(&policies.check(&req).await), ["new"]);
    session.release();
    assert_eq!(
        warnings(&policies.check_in(&mut session, &req).await),
        ["new"]
    );
}

/// An end-of-data request carrying `message`.
fn end_of_data(message: &str) -> PolicyRequest {
    let mut r = rcpt(false, None);
    r.stage = Stage::EndOfData;
    r.message = Some(MessageContent::new(message.as_bytes().to_vec()));
    r
}

/// A snapshot with test_session's `args` as the end-of-data list.
fn at_end_of_data(args: &[(&str, &str)]) -> Snapshot {
    load(vec![(Stage::EndOfData, vec![session_entry(args)])])
}

const MESSAGE: &str = "Subject: hello\r\n there\r\nFrom: a@example.net\r\n\r\nbody line\r\n";

#[tokio::test]
async fn an_end_of_data_plugin_reads_the_message_and_adds_header_fields() {
    let s = at_end_of_data(&[("do", "inspect")]);
    let d = s.check(&end_of_data(MESSAGE)).await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert_eq!(
        d.actions,
        [
            Verdict::Prepend("X-Inspected: yes".to_owned()),
            Verdict::Prepend("X-Body-Bytes: 11".to_owned()),
            Verdict::Warn(format!(
                "subject=hello there body=11 size={} fields=2",
                MESSAGE.len()
            )),
        ]
    );
    // At another stage there is no message.
    let s = load(vec![(
        Stage::Recipient,
        vec![session_entry(&[("do", "inspect")])],
    )]);
    assert_eq!(warnings(&s.check(&rcpt(false, None)).await), ["no message"]);
}

#[tokio::test]
async fn a_content_filter_rejects_on_the_body() {
    let s = at_end_of_data(&[("do", "spam"), ("word", "cheap pills")]);
    let d = s
        .check(&end_of_data("Subject: x\r\n\r\nbuy cheap pills now\r\n"))
        .await;
    assert_eq!(d.refusal().map(|r| r.code), Some(554));
    let d = s.check(&end_of_data(MESSAGE)).await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert_eq!(
        d.actions,
        [Verdict::Prepend("X-Spam-Checked: clean".to_owned())]
    );
}

#[tokio::test]
async fn bad_header_fields_are_refused_with_a_reason() {
    let s = at_end_of_data(&[("do", "bad_header")]);
    let d = s.check(&end_of_data(MESSAGE)).await;
    let said = warnings(&d).join("");
    assert!(said.contains("not printable US-ASCII"), "{said}");
    assert!(said.contains("line break"), "{said}");
    assert!(said.contains("more than 998"), "{said}");
    assert!(
        !d.actions.iter().any(|a| matches!(a, Verdict::Prepend(_))),
        "{d:?}"
    );
}

#[tokio::test]
async fn reads_and_handles_are_bounded() {
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(3 << 20));
    let s = at_end_of_data(&[("do", "big_read")]);
    assert_eq!(
        warnings(&s.check(&end_of_data(&big)).await),
        ["read=1048576"]
    );
    // A plugin hoarding handles fails the call: its entry's on_error.
    let s = at_end_of_data(&[("do", "hoard")]);
    let d = s.check(&end_of_data(MESSAGE)).await;
    assert_eq!(d.refusal().map(|r| r.code), Some(451), "{d:?}");
}

#[tokio::test]
async fn a_shadow_entry_adds_no_header() {
    let s = load(vec![(
        Stage::EndOfData,
        vec![table(&[
            ("plugin", "test_session"),
            ("do", "inspect"),
            ("mode", "shadow"),
        ])],
    )]);
    let d = s.check(&end_of_data(MESSAGE)).await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert!(d.actions.is_empty(), "{d:?}");
}

#[tokio::test]
async fn the_message_is_given_back_whole_after_the_check() {
    let s = Arc::new(at_end_of_data(&[("do", "inspect")]));
    let mut session = PolicySession::new();
    let req = end_of_data(MESSAGE);
    s.check_in(&mut session, &req).await;
    session.release();
    let content = req.message.unwrap();
    assert_eq!(content.into_inner(), MESSAGE.as_bytes());
}
