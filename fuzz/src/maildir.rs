//! Maildir file names and the small files beside them
//! (`postern_mailbox`): names Dovecot, mutt or anyone with shell access
//! may have made, read on every scan.

use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::OnceLock;

use postern_mailbox::flags::{Flags, parse_keywords};
use postern_mailbox::reader::{base_name, delivery_order};
use postern_mailbox::state::{State, letters};
use postern_mailbox::uidlist::UidList;
use postern_mailbox::unique::size_of_name;
use postern_mailbox::{FolderError, Store};

/// How many names the ordering checks look at (they are cubic).
const ORDER_NAMES: usize = 8;

/// `data` is text, one name per line; the same text is also read as
/// `dovecot-keywords`, `dovecot-uidlist` and Postern's state file. Checks:
/// flags survive a name rewrite (`:2,` info written back and read again)
/// and are never empty; the delivery order is a total order (a sort with
/// a broken one panics); a folder name maps inside the root or is
/// refused; a uidlist or state that parses renders to text that parses
/// the same.
pub fn maildir_name(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let keywords = parse_keywords(&text);
    assert!(keywords.len() <= 26, "more keywords than letters");
    let names: Vec<&str> = text.split('\n').collect();
    for name in &names {
        let base = base_name(name);
        assert!(!base.contains(':') && name.starts_with(base));
        let _ = size_of_name(name);
        let _ = letters(name);
        flags(name, base, &keywords);
        folder(name);
    }
    order(&names[..names.len().min(ORDER_NAMES)]);
    // Lines ending in CR lose it to str::lines(); no real name has one.
    if !text.contains('\r') {
        if let Some(list) = UidList::parse(&text) {
            assert_eq!(UidList::parse(&list.render()).as_ref(), Some(&list));
        }
        if let Some(state) = State::parse(&text) {
            assert_eq!(State::parse(&state.render()).as_ref(), Some(&state));
        }
    }
}

fn flags(name: &str, base: &str, keywords: &[String]) {
    let flags = Flags::from_name(name, keywords);
    for f in flags.iter() {
        assert!(
            !f.is_empty(),
            "an empty flag from {name:?} with {keywords:?}"
        );
    }
    let mut known = keywords.to_vec();
    let Some(info) = flags.info(&mut known) else {
        return;
    };
    let again = Flags::from_name(&format!("{base}:{info}"), &known);
    assert_eq!(again, flags, "{name:?} rewritten with {info:?}");
}

fn order(names: &[&str]) {
    for a in names {
        assert_eq!(delivery_order(a, a), Ordering::Equal);
        for b in names {
            let ab = delivery_order(a, b);
            assert_eq!(ab, delivery_order(b, a).reverse(), "{a:?} {b:?}");
            for c in names {
                if ab != Ordering::Greater && delivery_order(b, c) != Ordering::Greater {
                    assert_ne!(delivery_order(a, c), Ordering::Greater, "{a:?} {b:?} {c:?}");
                }
            }
        }
    }
    let mut sorted = names.to_vec();
    sorted.sort_by(|a, b| delivery_order(a, b));
}

/// A folder name (IMAP CREATE, SELECT, RENAME) becomes `root/.name`, one
/// level down, or is refused: never a path elsewhere.
fn folder(name: &str) {
    let Some(store) = store() else {
        return;
    };
    match store.path_of(name) {
        Ok(path) if path == store.root() => assert!(Store::is_inbox(name)),
        Ok(path) => {
            assert_eq!(path.parent(), Some(store.root()), "{name:?} -> {path:?}");
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            assert!(
                file.starts_with('.') && file.len() > 1,
                "{name:?} -> {path:?}"
            );
            assert!(file != ".." && !file.starts_with("..."), "{name:?}");
        }
        Err(FolderError::BadName) => {}
        Err(e) => panic!("{name:?}: {e}"),
    }
}

fn store() -> Option<&'static Store> {
    static STORE: OnceLock<Option<Store>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let root: PathBuf =
                std::env::temp_dir().join(format!("postern-fuzz-maildir.{}", std::process::id()));
            Store::open(root).ok()
        })
        .as_ref()
}
