//! Tests of one entry: the string and table forms, their reserved keys
//! and errors, and the form each is shown in. Apart because they are
//! half as long as the code.

use super::*;

fn table(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn line_with_positional_arguments() {
    let e = Entry::from_line("  check_sender_access   hash:/etc/x  extra ").unwrap();
    assert_eq!(e.name(), "check_sender_access");
    assert_eq!(
        e.args(),
        [
            ("1".to_owned(), "hash:/etc/x".to_owned()),
            ("2".to_owned(), "extra".to_owned())
        ]
    );
    assert_eq!(e.on_error(), OnError::Defer);
    assert_eq!(e.mode(), Mode::Enforce);
    assert_eq!(e.to_string(), "check_sender_access hash:/etc/x extra");
}

#[test]
fn warn_if_reject_is_shadow_mode() {
    let e = Entry::from_line("warn_if_reject reject_unauth_destination").unwrap();
    assert_eq!(e.name(), "reject_unauth_destination");
    assert_eq!(e.mode(), Mode::Shadow);
    assert_eq!(e.to_string(), "warn_if_reject reject_unauth_destination");
    assert_eq!(
        Entry::from_line("warn_if_reject"),
        Err(EntryError::DanglingWarnIfReject)
    );
}

#[test]
fn builtins_take_no_arguments() {
    assert_eq!(
        Entry::from_line("permit").unwrap().builtin(),
        Some(Builtin::Permit)
    );
    let err = Entry::from_line("reject now").unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry reject: the built-in reject takes no arguments (got 1=\"now\")"
    );
}

#[test]
fn table_with_reserved_keys() {
    let e = Entry::from_table(table(&[
        ("plugin", "greylist"),
        ("delay", "5m"),
        ("on_error", "dunno"),
        ("mode", "shadow"),
    ]))
    .unwrap();
    assert_eq!(e.name(), "greylist");
    assert_eq!(e.args(), [("delay".to_owned(), "5m".to_owned())]);
    assert_eq!(e.on_error(), OnError::Dunno);
    assert_eq!(e.mode(), Mode::Shadow);
    assert_eq!(
        e.to_string(),
        r#"{ plugin = "greylist", delay = "5m", on_error = "dunno", mode = "shadow" }"#
    );
}

#[test]
fn table_errors_name_the_entry() {
    let err = Entry::from_table(table(&[("delay", "5m")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "restriction table { delay } has no `plugin` key"
    );
    let err =
        Entry::from_table(table(&[("plugin", "greylist"), ("on_error", "ignore")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry greylist: on_error = \"ignore\": expected \"defer\", \"dunno\" or \"reject\""
    );
    let err = Entry::from_table(table(&[("plugin", "greylist"), ("mode", "warn")])).unwrap_err();
    assert!(err.to_string().contains("mode = \"warn\""), "{err}");
}

#[test]
fn table_entries_may_have_their_own_limits() {
    let e = Entry::from_table(table(&[
        ("plugin", "rbl"),
        ("deadline", "100ms"),
        ("memory_limit", "8M"),
    ]))
    .unwrap();
    assert!(e.args().is_empty());
    let l = e.limits(Limits::default());
    assert_eq!(l.deadline, Duration::from_millis(100));
    assert_eq!(l.memory_bytes, 8 << 20);
    assert_eq!(
        e.to_string(),
        r#"{ plugin = "rbl", deadline = "100ms", memory_limit = "8388608" }"#
    );
    let err = Entry::from_table(table(&[("plugin", "rbl"), ("deadline", "soon")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry rbl: deadline = \"soon\": expected a time such as 250ms or 5s, found \"soon\""
    );
}

#[test]
fn data_dir_is_reserved_and_shown() {
    let e = Entry::from_table(table(&[
        ("plugin", "bayes"),
        ("data_dir", "/var/lib/postern/bayes"),
        ("level", "3"),
    ]))
    .unwrap();
    assert_eq!(e.data_dir(), Some(Path::new("/var/lib/postern/bayes")));
    assert_eq!(e.args(), [("level".to_owned(), "3".to_owned())]);
    assert_eq!(
        e.to_string(),
        r#"{ plugin = "bayes", level = "3", data_dir = "/var/lib/postern/bayes" }"#
    );
    assert_eq!(
        Entry::from_table(table(&[("plugin", "bayes"), ("data_dir", " ")])),
        Err(EntryError::BadDataDir {
            entry: "bayes".to_owned(),
            value: " ".to_owned()
        })
    );
    assert!(matches!(
        Entry::from_table(table(&[("plugin", "permit"), ("data_dir", "/x")])),
        Err(EntryError::BuiltinArguments { .. })
    ));
    assert_eq!(Entry::from_line("bayes /x").unwrap().data_dir(), None);
}

#[test]
fn old_names_map_to_the_new_plugins() {
    for (old, new) in [
        ("reject_invalid_hostname", "reject_invalid_helo_hostname"),
        ("reject_unknown_hostname", "reject_unknown_helo_hostname"),
        ("reject_non_fqdn_hostname", "reject_non_fqdn_helo_hostname"),
        ("reject_unknown_client", "reject_unknown_client_hostname"),
    ] {
        assert_eq!(Entry::from_line(old).unwrap().name(), new);
        let t = Entry::from_table(table(&[("plugin", old)])).unwrap();
        assert_eq!(t.name(), new);
    }
    assert_eq!(
        Entry::from_line("warn_if_reject reject_unknown_client")
            .unwrap()
            .name(),
        "reject_unknown_client_hostname"
    );
}

#[test]
fn empty_and_bad_names() {
    assert_eq!(Entry::from_line("   "), Err(EntryError::Empty));
    assert_eq!(
        Entry::from_line("permit_mynetworks,"),
        Err(EntryError::BadName {
            entry: "permit_mynetworks,".to_owned()
        })
    );
}
