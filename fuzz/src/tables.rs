//! Lookup tables (`postern_tables`): the hash (access(5) text source),
//! cidr and regexp source formats, as `postern check` and reload read an
//! operator's files.

use std::path::Path;

use postern_tables::{CidrTable, Error, HashTable, RegexpTable};

/// `data` is `TEXT` NUL `KEY`: the text is parsed as each of the three
/// kinds; a table that loads is queried for the key; an error names the
/// file and a line that exists.
pub fn access_table(data: &[u8]) {
    let (text, key) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &b"example.org"[..]),
    };
    let text = String::from_utf8_lossy(text);
    let key = String::from_utf8_lossy(key);
    let path = Path::new("fuzz-table");
    let lines = text.split('\n').count();
    let check = |e: Error| match e {
        Error::Syntax {
            path: p,
            line,
            message,
        } => {
            assert_eq!(p, path);
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            assert!(!message.is_empty());
        }
        other => panic!("parsing text gave {other}"),
    };
    match HashTable::parse(path, &text) {
        Ok(table) => {
            let _ = table.lookup(&key);
            // Keys are case-insensitive (Postfix lowercases them).
            let _ = table.lookup(&key.to_uppercase());
        }
        Err(e) => check(e),
    }
    match CidrTable::parse(path, &text) {
        Ok(table) => {
            let _ = table.lookup(&key);
        }
        Err(e) => check(e),
    }
    match RegexpTable::parse(path, &text) {
        Ok(table) => {
            let _ = table.lookup(&key);
        }
        Err(e) => check(e),
    }
}
