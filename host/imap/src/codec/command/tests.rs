//! Unit tests of the command parser: whole command lines through
//! [`Request::parse`], in a file of their own for their length.

use super::*;

fn parse(s: &[u8]) -> Command {
    Request::parse(s).unwrap().command
}

#[test]
fn commands() {
    assert_eq!(
        parse(b"a LOGIN alice@example.org \"se cret\""),
        Command::Login {
            user: "alice@example.org".into(),
            password: "se cret".into()
        }
    );
    assert_eq!(
        parse(b"a select inbox"),
        Command::Select {
            mailbox: "INBOX".into(),
            read_only: false,
            condstore: false,
            qresync: None
        }
    );
    assert!(matches!(
        parse(b"a APPEND Sent (\\Seen) \"01-Feb-1994 08:30:00 +0100\" {3}\r\nabc"),
        Command::Append { ref flags, date: Some(_), ref message, .. } if flags == &["\\Seen"] && message == b"abc"
    ));
    assert!(matches!(
        parse(b"a UID STORE 1:* +FLAGS.SILENT (\\Deleted)"),
        Command::Store {
            uid: true,
            silent: true,
            mode: StoreMode::Add,
            ..
        }
    ));
    assert!(matches!(
        parse(b"a UID MOVE 4 Trash"),
        Command::Copy {
            uid: true,
            moving: true,
            ..
        }
    ));
    assert_eq!(
        parse(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=="),
        Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some("AGFsaWNlAHNlY3JldA==".into())
        }
    );
    assert_eq!(parse(b"a ID (\"name\" \"x\" \"v\" NIL)"), Command::Id);
    let Command::List {
        patterns, options, ..
    } = parse(b"a LIST (SUBSCRIBED) \"\" (INBOX %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))")
    else {
        panic!()
    };
    assert_eq!(patterns, ["INBOX", "%"]);
    assert!(options.subscribed);
    assert_eq!(
        options.status,
        Some(vec![StatusItem::Messages, StatusItem::Unseen])
    );
}

#[test]
fn condstore_arguments() {
    let select = parse(b"a EXAMINE INBOX (CONDSTORE)");
    assert!(select.enables_condstore());
    assert!(matches!(
        parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
        Command::Fetch {
            changed_since: Some(12345),
            ..
        }
    ));
    let store = parse(b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Seen)");
    assert!(matches!(
        store,
        Command::Store {
            unchanged_since: Some(0),
            silent: true,
            ..
        }
    ));
    assert!(store.enables_condstore());
    assert!(parse(b"a STATUS INBOX (HIGHESTMODSEQ)").enables_condstore());
    assert!(!parse(b"a FETCH 1 FLAGS").enables_condstore());
    let Command::Select {
        qresync: Some(q), ..
    } = parse(
        b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:9 41:49)))",
    )
    else {
        panic!()
    };
    assert_eq!((q.validity, q.modseq), (67890007, 20050715194045000));
    assert!(q.known.unwrap().contains(300, 541));
    assert!(matches!(
        parse(b"a SELECT INBOX (QRESYNC (1 2))"),
        Command::Select {
            qresync: Some(Qresync { known: None, .. }),
            ..
        }
    ));
    assert!(matches!(
        parse(b"a UID FETCH 1:* FLAGS (VANISHED CHANGEDSINCE 5)"),
        Command::Fetch {
            vanished: true,
            changed_since: Some(5),
            ..
        }
    ));
    for bad in [
        &b"a SELECT INBOX (FROB)"[..],
        b"a SELECT INBOX CONDSTORE",
        b"a FETCH 1 FLAGS (CHANGEDSINCE)",
        b"a FETCH 1 FLAGS (CHANGEDSINCE 0)",
        b"a FETCH 1 FLAGS (CHANGEDSINCE abc)",
        b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)",
        b"a FETCH 1 FLAGS (VANISHED)",
        b"a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)",
        b"a UID FETCH 1 FLAGS (VANISHED)",
        b"a SELECT INBOX (QRESYNC)",
        b"a SELECT INBOX (QRESYNC (0 5))",
        b"a SELECT INBOX (QRESYNC (1 0))",
        b"a SELECT INBOX (QRESYNC (1 5 1:3 (1:2)))",
        b"a SELECT INBOX (QRESYNC (1 5 1:3 (1:2 3:4))",
        b"a STORE 1 (UNCHANGEDSINCE -1) FLAGS (\\Seen)",
        b"a STORE 1 (UNCHANGEDSINCE 5 FLAGS (\\Seen)",
        b"a STORE 1 (FROB 5) FLAGS (\\Seen)",
        b"a SEARCH MODSEQ x",
        b"a SEARCH MODSEQ \"/flags/\\\\seen\" bogus 5",
    ] {
        assert!(
            Request::parse(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn errors_keep_the_tag() {
    let (tag, e) = Request::parse(b"a7 FROB").unwrap_err();
    assert_eq!(
        (tag.as_deref(), e.0.as_str()),
        (Some("a7"), "Unknown command.")
    );
    assert_eq!(Request::parse(b"(x NOOP").unwrap_err().0, None);
    assert!(Request::parse(b"a NOOP extra").is_err());
    assert!(Request::parse(b"a SELECT \xff\xfe").is_err());
    assert!(Request::parse(b"a FETCH 0 FLAGS").is_err());
    assert!(Request::parse(b"a STATUS INBOX (BOGUS)").is_err());
}
