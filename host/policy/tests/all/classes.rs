//! Restriction classes through real components: a class named by an
//! entry, and by a plugin's `restriction` verdict, evaluated in place;
//! names the snapshot does not know and runaway nesting answered as
//! Postfix answers a restriction it cannot evaluate (`451 4.3.5`);
//! `hangup` and `info` verdicts.

use postern_mail::{EnhancedCode, Reply, Stage, Verdict};
use postern_policy::{Error, PolicyConfig, Snapshot};

use crate::{GUESTS, Logs, RUNTIME, lines, rcpt, rcpt_id, table};

/// test_answer giving `verdict` with `text`.
fn answer(verdict: &str, text: &str) -> postern_policy::Entry {
    table(&[
        ("plugin", "test_answer"),
        ("verdict", verdict),
        ("text", text),
        ("code", "554"),
    ])
}

/// Loads `list` as the recipient list with `classes`.
fn load(
    list: Vec<postern_policy::Entry>,
    classes: Vec<(&str, Vec<postern_policy::Entry>)>,
) -> Result<Snapshot, Error> {
    let mut config = PolicyConfig::default().with(Stage::Recipient, list);
    config.plugin_dir = Some(GUESTS.path().to_path_buf());
    for (name, entries) in classes {
        config.classes.insert(name.to_owned(), entries);
    }
    RUNTIME.load(&config)
}

fn config_error() -> Verdict {
    Verdict::Reject(Reply::new(
        451,
        EnhancedCode::new(4, 3, 5),
        "Server configuration error",
    ))
}

#[tokio::test]
async fn a_class_entry_decides_in_place_or_lets_the_list_go_on() {
    let s = load(
        lines(&["permit_mynetworks", "strict", "permit"]),
        vec![("strict", vec![answer("reject", "strict says no")])],
    )
    .unwrap();
    let d = s.check(&rcpt(false, None)).await;
    assert_eq!(
        d.verdict,
        Verdict::Reject(Reply::new(
            554,
            EnhancedCode::new(5, 7, 1),
            "strict says no"
        ))
    );
    assert_eq!(d.decided_by.as_deref(), Some("test_answer"));
    assert_eq!(s.check(&rcpt(true, None)).await.verdict, Verdict::Permit);
    // A class that runs out is "dunno": the list goes on after it.
    let s = load(
        lines(&["quiet", "reject"]),
        vec![("quiet", vec![answer("warn", "looked")])],
    )
    .unwrap();
    let d = s.check(&rcpt(false, None)).await;
    assert_eq!(d.verdict, Verdict::reject_default());
    assert_eq!(d.actions, [Verdict::Warn("looked".to_owned())]);
}

#[tokio::test]
async fn a_restriction_verdict_names_classes_and_built_ins() {
    let s = load(
        vec![
            answer("restriction", "from_freemail, permit"),
            lines(&["reject"]).remove(0),
        ],
        vec![
            ("from_freemail", lines(&["permit_mynetworks"])),
            ("unused", lines(&["reject"])),
        ],
    )
    .unwrap();
    // The class permits a trusted client ...
    assert_eq!(s.check(&rcpt(true, None)).await.verdict, Verdict::Permit);
    // ... and for another runs out, so the next name (permit) decides,
    // before the list's own reject.
    let d = s.check(&rcpt(false, None)).await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert_eq!(d.decided_by.as_deref(), Some("test_answer"));
}

#[tokio::test]
async fn unknown_names_and_runaway_nesting_are_configuration_errors() {
    let logs = Logs::capture("unknown smtpd restriction: \"from_freemial\"");
    let s = load(
        vec![
            answer("restriction", "from_freemial"),
            lines(&["permit"]).remove(0),
        ],
        vec![],
    )
    .unwrap();
    let d = s.check(&rcpt_id("CL4551", false, None)).await;
    assert_eq!(d.verdict, config_error());
    assert!(
        logs.text().contains("CL4551: unknown smtpd restriction"),
        "{}",
        logs.text()
    );
    // A class whose plugin answers with the class itself: a loop only
    // data can make, stopped at MAX_CLASS_DEPTH.
    let logs = Logs::capture("levels of nesting");
    let s = load(
        lines(&["again"]),
        vec![("again", vec![answer("restriction", "again")])],
    )
    .unwrap();
    assert_eq!(s.check(&rcpt(false, None)).await.verdict, config_error());
    assert!(
        logs.text()
            .contains("restriction class again: more than 8 levels of nesting"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn warn_if_reject_before_a_class_shadows_its_entries() {
    let s = load(
        lines(&["warn_if_reject strict", "permit"]),
        vec![("strict", vec![answer("reject", "no")])],
    )
    .unwrap();
    let d = s.check(&rcpt(false, None)).await;
    assert_eq!(d.verdict, Verdict::Permit);
    assert_eq!(d.decided_by.as_deref(), Some("permit"));
}

#[test]
fn loops_and_taken_names_are_refused_at_load() {
    let err = load(
        lines(&["a"]),
        vec![("a", lines(&["b"])), ("b", lines(&["a"]))],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "restriction class a: names itself through a -> b -> a"
    );
    let err = load(
        lines(&["permit"]),
        vec![("test_answer", lines(&["permit"]))],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Class { .. }), "{err}");
    // An entry of a class names its place in errors.
    let err = load(lines(&["c"]), vec![("c", lines(&["no_such_plugin"]))]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("restriction class c: entry \"no_such_plugin\": unknown plugin"),
        "{err}"
    );
}

#[tokio::test]
async fn hangup_and_info_verdicts() {
    let s = load(
        vec![answer("info", "seen"), answer("hangup", "bye")],
        vec![],
    )
    .unwrap();
    let d = s.check(&rcpt(false, None)).await;
    assert_eq!(
        d.verdict,
        Verdict::Hangup(Reply::new(421, EnhancedCode::new(4, 7, 0), "bye"))
    );
    assert!(d.hangs_up());
    assert_eq!(d.actions, [Verdict::Info("seen".to_owned())]);
}
