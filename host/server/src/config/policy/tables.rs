//! The tables plugins look up: those declared by `[tables.NAME]`, and
//! those a restriction list names without a declaration
//! (`check_sender_access hash:/etc/postfix/access`). Apart from the
//! `[plugins]` reader because a table comes from these two places of the
//! config, not from one section.

use std::path::PathBuf;

use postern_tables::{Kind, TableSpec};
use toml::de::DeTable;

use super::{Ctx, DeclaredTable, PolicySettings};
use crate::config::{Restriction, RestrictionItem, expand};

impl PolicySettings {
    /// Declares a table for every `type:path` argument of a restriction
    /// entry (`"check_sender_access hash:/etc/postfix/access"`), named by
    /// that text, as Postfix opens the maps its restriction lists name:
    /// loaded and reloaded with the `[tables.NAME]` ones, so that a
    /// plugin's `tables.lookup("hash:/etc/postfix/access", key)` works
    /// without a declaration. `pcre:` is read as `regexp:` (the `regex`
    /// crate takes the common PCRE syntax); `texthash:`, `btree:` and
    /// `lmdb:` are read from their source file as `hash:` is.
    pub(in crate::config) fn declare_implicit<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Restriction>,
    ) {
        for r in entries {
            let args: Vec<&str> = match &r.item {
                // Every word: a table named alone is an access check too.
                RestrictionItem::Line(l) => l.split_whitespace().collect(),
                RestrictionItem::Table(t) => t
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "plugin"
                                | "on_error"
                                | "mode"
                                | "deadline"
                                | "memory_limit"
                                | "data_dir"
                        )
                    })
                    .map(|(_, v)| v.as_str())
                    .collect(),
            };
            for arg in args {
                let Some(spec) = implicit_table(arg) else {
                    continue;
                };
                if self.tables.iter().all(|t| t.spec.name != spec.name) {
                    self.tables.push(DeclaredTable { spec, line: r.line });
                }
            }
        }
    }
    pub(super) fn read_tables(
        &mut self,
        table: &DeTable<'_>,
        lookup: &dyn Fn(&str) -> Option<String>,
        cx: &mut Ctx<'_>,
    ) {
        for (key, v) in table.iter() {
            let name = key.get_ref().as_ref();
            let at = key.span().start;
            let prefix = format!("tables.{name}");
            let Some(t) = cx.table(&prefix, v) else {
                continue;
            };
            let (mut kind, mut path) = (None, None);
            // A bad type or path was reported already; "missing" would
            // only repeat it.
            let mut reported = false;
            for (key, v) in t.iter() {
                let k = key.get_ref().as_ref();
                let kpath = format!("{prefix}.{k}");
                let at = v.span().start;
                match k {
                    "type" => match cx.scalar(&kpath, v).map(|s| s.parse::<Kind>()) {
                        Some(Ok(k)) => kind = Some(k),
                        Some(Err(e)) => {
                            reported = true;
                            cx.error(at, &kpath, e.to_string());
                        }
                        None => reported = true,
                    },
                    "path" => {
                        if let Some(p) = cx.scalar(&kpath, v) {
                            match expand::expand(&p, lookup) {
                                Ok(p) => path = Some(PathBuf::from(p)),
                                Err(e) => {
                                    reported = true;
                                    cx.error(at, &kpath, e.to_string());
                                }
                            }
                        } else {
                            reported = true;
                        }
                    }
                    _ => cx.error(
                        key.span().start,
                        &kpath,
                        "unknown key (expected type, path)",
                    ),
                }
            }
            match (kind, path) {
                (Some(kind), Some(path)) => self.tables.push(DeclaredTable {
                    spec: TableSpec {
                        name: name.to_owned(),
                        kind,
                        path,
                    },
                    line: cx.src.line_of(at),
                }),
                _ if reported => {}
                (None, _) => cx.error(
                    at,
                    &prefix,
                    "missing type = \"hash\", \"cidr\" or \"regexp\"",
                ),
                (_, None) => cx.error(at, &prefix, "missing path = \"/path/to/source\""),
            }
        }
    }
}

/// The table an argument such as `hash:/etc/postfix/access` names, if it
/// names one of the types Postern reads.
pub(super) fn implicit_table(arg: &str) -> Option<TableSpec> {
    let (kind, path) = arg.split_once(':')?;
    let kind = match kind {
        "hash" | "texthash" | "btree" | "lmdb" => Kind::Hash,
        "cidr" => Kind::Cidr,
        "regexp" | "pcre" => Kind::Regexp,
        _ => return None,
    };
    (!path.is_empty()).then(|| TableSpec {
        name: arg.to_owned(),
        kind,
        path: PathBuf::from(path),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::super::tests::parse;

    #[test]
    fn tables_named_in_lists_are_declared_at_the_entry_line() {
        let c = parse(
            "[tables.access]\ntype = \"hash\"\npath = \"/etc/postern/access\"\n\
             [smtpd.restrictions]\n\
             client = \"permit_mynetworks, check_client_access cidr:/etc/postfix/nets\"\n\
             sender = \"\"\"\n  permit_mynetworks\n  check_sender_access hash:/etc/postfix/access\n  check_recipient_access pcre:/etc/postfix/re\n\"\"\"\n\
             recipient = [\"check_recipient_access hash:/etc/postfix/access\", \
             { plugin = \"check_helo_access\", table = \"regexp:/etc/postfix/helo\" }, \
             \"check_policy_service inet:127.0.0.1:9998\", \"reject_unauth_destination\"]\n",
        )
        .unwrap();
        let got: Vec<(String, &str, usize)> = c
            .policy
            .tables
            .iter()
            .map(|t| (t.spec.name.clone(), t.spec.kind.as_str(), t.line))
            .collect();
        let want = [
            ("access", "hash", 1),
            ("cidr:/etc/postfix/nets", "cidr", 5),
            ("hash:/etc/postfix/access", "hash", 8),
            ("pcre:/etc/postfix/re", "regexp", 9),
            ("regexp:/etc/postfix/helo", "regexp", 11),
        ];
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want: Vec<(String, &str, usize)> = want
            .iter()
            .map(|(n, k, l)| ((*n).to_owned(), *k, *l))
            .collect();
        want.sort();
        assert_eq!(got_sorted, want);
        let re = &c
            .policy
            .tables
            .iter()
            .find(|t| t.spec.name == "pcre:/etc/postfix/re");
        assert_eq!(
            re.map(|t| t.spec.path.clone()),
            Some(PathBuf::from("/etc/postfix/re"))
        );
        // Each entry of a multi-line string sits on its own line.
        let sender: Vec<usize> = c.restrictions[&postern_mail::Stage::Sender]
            .iter()
            .map(|r| r.line)
            .collect();
        assert_eq!(sender, [7, 8, 9]);
    }
}
