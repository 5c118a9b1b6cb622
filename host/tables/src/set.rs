//! The operator's named tables: `[tables.NAME]` with `type` and `path`,
//! loaded together at start and at reload.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::cidr::CidrTable;
use crate::error::{Error, LoadError};
use crate::hash::HashTable;
use crate::regexp::RegexpTable;

/// The table types, by their Postfix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `hash`: `key value` lines, exact case-insensitive keys.
    Hash,
    /// `cidr`: networks, first match.
    Cidr,
    /// `regexp`: patterns, first match.
    Regexp,
}

impl Kind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hash => "hash",
            Kind::Cidr => "cidr",
            Kind::Regexp => "regexp",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Kind, Error> {
        match s {
            "hash" => Ok(Kind::Hash),
            "cidr" => Ok(Kind::Cidr),
            "regexp" => Ok(Kind::Regexp),
            other => Err(Error::UnknownKind(other.to_owned())),
        }
    }
}

/// A table as the config declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The name lookups use: the `NAME` of `[tables.NAME]`.
    pub name: String,
    /// Its type.
    pub kind: Kind,
    /// Its source file.
    pub path: PathBuf,
}

/// One loaded table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Table {
    /// A `hash` table.
    Hash(HashTable),
    /// A `cidr` table.
    Cidr(CidrTable),
    /// A `regexp` table.
    Regexp(RegexpTable),
}

impl Table {
    /// Reads a table of `kind` from `path`.
    pub fn load(kind: Kind, path: &Path) -> Result<Table, Error> {
        Ok(match kind {
            Kind::Hash => Table::Hash(HashTable::load(path)?),
            Kind::Cidr => Table::Cidr(CidrTable::load(path)?),
            Kind::Regexp => Table::Regexp(RegexpTable::load(path)?),
        })
    }

    /// Every distinct right-hand side, as written (a `regexp` result
    /// with its `$1` before substitution), sorted.
    pub fn results(&self) -> BTreeSet<&str> {
        match self {
            Table::Hash(t) => t.entries().map(|(_, v)| v).collect(),
            Table::Cidr(t) => t.results().collect(),
            Table::Regexp(t) => t.results().collect(),
        }
    }

    /// What the table answers for `key`, as `postmap -q` prints it.
    pub fn lookup(&self, key: &str) -> Option<String> {
        match self {
            Table::Hash(t) => t.lookup(key).map(str::to_owned),
            Table::Cidr(t) => t.lookup(key).map(str::to_owned),
            Table::Regexp(t) => t.lookup(key),
        }
    }
}

/// Every table the config declares, by name: immutable once loaded, and
/// replaced whole on reload.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    tables: BTreeMap<String, Table>,
}

impl Tables {
    /// Loads every table of `specs`; the first failure stops the load and
    /// names the table and `file:line`.
    pub fn load(specs: &[TableSpec]) -> Result<Tables, LoadError> {
        let mut tables = BTreeMap::new();
        for spec in specs {
            let table = Table::load(spec.kind, &spec.path).map_err(|source| LoadError {
                name: spec.name.clone(),
                source,
            })?;
            tables.insert(spec.name.clone(), table);
        }
        Ok(Tables { tables })
    }

    /// Adds (or replaces) a table under `name`.
    pub fn insert(&mut self, name: impl Into<String>, table: Table) {
        self.tables.insert(name.into(), table);
    }

    /// The table called `name`.
    pub fn get(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Looks `key` up in table `name`: `None` if there is no such table,
    /// `Some(None)` if the table has no entry for the key.
    pub fn lookup(&self, name: &str, key: &str) -> Option<Option<String>> {
        self.get(name).map(|t| t.lookup(key))
    }

    /// The table names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loads_every_kind_and_names_the_failing_table() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let specs = vec![
            TableSpec {
                name: "access".to_owned(),
                kind: Kind::Hash,
                path: write("access", "bad@example.com REJECT\n"),
            },
            TableSpec {
                name: "nets".to_owned(),
                kind: "cidr".parse().unwrap(),
                path: write("nets", "192.0.2.0/24 OK\n"),
            },
            TableSpec {
                name: "re".to_owned(),
                kind: Kind::Regexp,
                path: write("re", "/^(x+)$/ got $1\n"),
            },
        ];
        let t = Tables::load(&specs).unwrap();
        assert_eq!(t.names().collect::<Vec<_>>(), ["access", "nets", "re"]);
        assert_eq!(
            t.lookup("access", "BAD@example.com"),
            Some(Some("REJECT".to_owned()))
        );
        assert_eq!(t.lookup("nets", "192.0.2.9"), Some(Some("OK".to_owned())));
        assert_eq!(t.lookup("re", "xx"), Some(Some("got xx".to_owned())));
        assert_eq!(t.lookup("re", "y"), Some(None));
        assert_eq!(t.lookup("nope", "y"), None);
        // Every distinct result, sorted; a regexp's before substitution.
        let results = |name: &str| {
            t.get(name)
                .unwrap()
                .results()
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(results("access"), ["REJECT"]);
        assert_eq!(results("nets"), ["OK"]);
        assert_eq!(results("re"), ["got $1"]);

        let mut broken = specs.clone();
        broken[1].path = write("nets2", "192.0.2.0/24 OK\n192.0.2.1/24 OK\n");
        let err = Tables::load(&broken).unwrap_err();
        assert_eq!(err.name, "nets");
        assert!(err.to_string().starts_with("table nets: "), "{err}");
        assert!(
            err.to_string().ends_with(
                "nets2:2: \"192.0.2.1/24\": non-null host address bits; the network is 192.0.2.0/24"
            ),
            "{err}"
        );
        broken[1].path = dir.path().join("missing");
        let err = Tables::load(&broken).unwrap_err();
        assert!(matches!(err.source, Error::Read { .. }), "{err}");
        assert!("btree".parse::<Kind>().is_err());
    }
}
