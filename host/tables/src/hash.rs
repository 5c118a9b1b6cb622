//! `hash` tables: Postfix's access(5) and text source format, held in
//! memory. Each logical line is `key value`: the key is the first word,
//! the value the rest of the line (white space inside it kept). Keys are
//! case-insensitive, as Postfix lowercases them for `hash:` maps
//! (postmap(1) without `-f`). A key listed twice keeps its first value and
//! the second is an error, as postmap warns of duplicates and the first
//! one is the one `postmap -q` finds.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Error;
use crate::source::{self, Line, syntax};

/// A `hash` table in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashTable {
    /// Lowercased key to value.
    entries: HashMap<String, String>,
}

impl HashTable {
    /// Reads the source file at `path`.
    pub fn load(path: &Path) -> Result<HashTable, Error> {
        HashTable::from_lines(path, source::read(path)?)
    }

    /// Parses source text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<HashTable, Error> {
        HashTable::from_lines(path, source::lines(path, text)?)
    }

    fn from_lines(path: &Path, lines: Vec<Line>) -> Result<HashTable, Error> {
        let mut entries = HashMap::with_capacity(lines.len());
        let mut first_line = HashMap::new();
        for Line { number, text } in lines {
            let (key, value) = match text.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (text.as_str(), ""),
            };
            if value.is_empty() {
                return Err(syntax(
                    path,
                    number,
                    format!("expected \"key value\", found only {key:?}"),
                ));
            }
            let key = key.to_lowercase();
            if let Some(first) = first_line.get(&key) {
                return Err(syntax(
                    path,
                    number,
                    format!("duplicate key {key:?} (first on line {first})"),
                ));
            }
            first_line.insert(key.clone(), number);
            entries.insert(key, value.to_owned());
        }
        Ok(HashTable { entries })
    }

    /// The value of `key`, compared without regard to case.
    pub fn lookup(&self, key: &str) -> Option<&str> {
        self.entries.get(&key.to_lowercase()).map(String::as_str)
    }

    /// Every `(key, value)`, keys lower-cased, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ACCESS: &str = "\
# access(5) source
spammer@example.com    REJECT No spam here
Example.NET            OK
192.0.2                550 5.7.1
  Go away
";

    #[test]
    fn keys_are_case_insensitive_and_values_keep_their_spaces() {
        let t = HashTable::parse(Path::new("access"), ACCESS).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup("SPAMMER@example.com"), Some("REJECT No spam here"));
        assert_eq!(t.lookup("example.net"), Some("OK"));
        assert_eq!(t.lookup("192.0.2"), Some("550 5.7.1 Go away"));
        assert_eq!(t.lookup("example.org"), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = HashTable::parse(Path::new("/etc/a"), "a 1\n\nlonely\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/a:3: expected \"key value\", found only \"lonely\""
        );
        let err = HashTable::parse(Path::new("/etc/a"), "a 1\nA 2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/a:2: duplicate key \"a\" (first on line 1)"
        );
    }
}
