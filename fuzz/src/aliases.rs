//! The aliases file (`postern_delivery::aliases`, aliases(5)) and its
//! `:include:` files, read from a real file as `postern aliases` and
//! start-up do.

use std::path::PathBuf;
use std::sync::OnceLock;

use postern_delivery::aliases::{AliasMap, Target, read_include};

/// `data` is `TEXT` NUL `NAME`: TEXT is written to a file and read as an
/// aliases file and as an include file. A map that loads answers for NAME
/// (any case) with at least one value each; every error names the file
/// and a line that exists.
pub fn aliases(data: &[u8]) {
    let (text, name) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &b"postmaster"[..]),
    };
    let path = file();
    if std::fs::write(path, text).is_err() {
        return;
    }
    let lines = text.split(|&b| b == b'\n').count();
    let check_line = |file: &PathBuf, line: usize| {
        assert_eq!(file, path);
        assert!(line <= lines, "line {line} of {lines}");
    };
    match AliasMap::load(std::slice::from_ref(path)) {
        Ok(map) => {
            let name = String::from_utf8_lossy(name);
            for n in [name.to_string(), name.to_uppercase()] {
                if let Some(alias) = map.get(&n) {
                    assert!(!alias.targets.is_empty(), "alias {n:?} with no value");
                    check_line(&alias.origin.file, alias.origin.line);
                    targets(&alias.targets);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without saying why");
            for e in &errors {
                check_line(&e.file, e.line);
                let _ = e.to_string();
            }
        }
    }
    match read_include(path) {
        Ok((list, origin)) => {
            check_line(&origin.file, origin.line);
            targets(&list);
        }
        Err(e) => check_line(&e.file, e.line),
    }
}

/// What delivery relies on: commands and files are non-empty, include
/// paths absolute.
fn targets(list: &[Target]) {
    for t in list {
        match t {
            Target::Command(c) => assert!(!c.is_empty()),
            Target::File(p) => assert!(p.is_absolute(), "{p:?}"),
            Target::Include(p) => assert!(p.is_absolute(), "{p:?}"),
            Target::Local(n) => assert!(!n.is_empty() && !n.contains(['\n', '\r', ' '])),
            _ => {}
        }
        let _ = t.to_string();
    }
}

/// A file of this process's own under the temporary directory, rewritten
/// for every input.
fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("postern-fuzz-aliases.{}", std::process::id()))
    })
}
