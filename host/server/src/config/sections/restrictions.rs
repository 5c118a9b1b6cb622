//! The restriction lists (`[smtpd.restrictions]`, a service's, and the
//! `smtpd_*_restrictions` Postfix names): their entries, reading them as
//! written and resolving them, and the check that one protects the relay.
//! Apart from the other sections because lists appear in three places
//! (the file, a service, a restriction class) and read alike in each.

use std::collections::BTreeMap;

use postern_mail::Stage;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{RawItem, RawLists, Sections, expand_at};
use crate::config::error::{ConfigError, Source};
use crate::config::toml_value;

/// One restriction-list entry as written, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestrictionItem {
    /// `"permit_mynetworks"`, `"check_sender_access hash:/etc/x"`.
    Line(String),
    /// `{ plugin = "greylist", delay = "5m" }`.
    Table(BTreeMap<String, String>),
}

/// An entry and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// What it says.
    pub item: RestrictionItem,
    /// 1-based line in the config file (0: a built-in default).
    pub line: usize,
}

impl Restriction {
    /// The entry as an operator would write it in main.cf.
    pub fn describe(&self) -> String {
        match &self.item {
            RestrictionItem::Line(l) => l.clone(),
            RestrictionItem::Table(t) => {
                let args: Vec<String> = t.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{{ {} }}", args.join(", "))
            }
        }
    }
}

/// Postfix's parameter names for the lists, accepted at the top level.
pub(super) const POSTFIX_LISTS: &[(&str, Stage)] = &[
    ("smtpd_client_restrictions", Stage::Client),
    ("smtpd_helo_restrictions", Stage::Helo),
    ("smtpd_sender_restrictions", Stage::Sender),
    ("smtpd_relay_restrictions", Stage::Relay),
    ("smtpd_recipient_restrictions", Stage::Recipient),
    ("smtpd_data_restrictions", Stage::Data),
    ("smtpd_end_of_data_restrictions", Stage::EndOfData),
];

/// Whether `name` is the Postfix parameter of a restriction list
/// (`smtpd_recipient_restrictions`, ...).
pub fn is_postfix_list(name: &str) -> bool {
    POSTFIX_LISTS.iter().any(|(n, _)| *n == name)
}

/// The list a stage has when the config does not set it: Postern is never
/// an open relay, so the recipient list starts out as Postfix's relay
/// defaults (with reject instead of defer).
pub fn default_list(stage: Stage) -> Vec<Restriction> {
    let items: &[&str] = match stage {
        Stage::Recipient => &[
            "permit_mynetworks",
            "permit_sasl_authenticated",
            "reject_unauth_destination",
        ],
        _ => &[],
    };
    items
        .iter()
        .map(|s| Restriction {
            item: RestrictionItem::Line((*s).to_owned()),
            line: 0,
        })
        .collect()
}

/// A list as a main.cf value: `permit_mynetworks, reject_unauth_destination`.
pub fn describe(list: &[Restriction]) -> String {
    list.iter()
        .map(Restriction::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Sections {
    pub(super) fn read_lists(
        into: &mut RawLists,
        prefix: &str,
        lists: &DeTable<'_>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        for (key, v) in lists.iter() {
            let k = key.get_ref().as_ref();
            let path = format!("{prefix}.{k}");
            match Stage::ALL.iter().find(|s| s.as_str() == k) {
                Some(stage) => Sections::read_list(into, *stage, &path, v, src, errors),
                None => errors.push(src.error(
                    Some(key.span().start),
                    &path,
                    "unknown restriction list (expected client, helo, sender, relay, recipient, data, end_of_data)",
                )),
            }
        }
    }

    pub(super) fn read_list(
        into: &mut RawLists,
        stage: Stage,
        path: &str,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        let at = value.span().start;
        if into.contains_key(&stage) {
            errors.push(src.error(Some(at), path, format!("the {stage} list is set twice")));
            return;
        }
        let items = read_items(path, value, src, errors);
        into.insert(stage, (at, items));
    }
}

/// The entries of one list (a stage's or a restriction class's) as
/// written: a main.cf-style string or an array of strings and tables,
/// each with its offset.
pub(in crate::config) fn read_items(
    path: &str,
    value: &Spanned<DeValue<'_>>,
    src: &Source,
    errors: &mut Vec<ConfigError>,
) -> Vec<(usize, RawItem)> {
    let at = value.span().start;
    let mut items = Vec::new();
    match value.get_ref() {
        // main.cf style: "permit_mynetworks, reject_unauth_destination",
        // separated by commas, spaces or newlines as Postfix reads it.
        // Each entry is placed where its first word is written, so that
        // errors name its line in a multi-line string.
        DeValue::String(s) => {
            let text = src.text();
            let mut cursor = at;
            for entry in postern_policy::entry::split_list(s) {
                let first = entry.split_whitespace().next().unwrap_or_default();
                let pos = text
                    .get(cursor..)
                    .and_then(|rest| rest.find(first))
                    .map_or(at, |i| cursor + i);
                cursor = pos.max(cursor);
                items.push((pos, RawItem::Line(entry)));
            }
        }
        DeValue::Array(entries) => {
            for e in entries.iter() {
                let eat = e.span().start;
                match e.get_ref() {
                    DeValue::String(s) => items.push((eat, RawItem::Line(s.to_string()))),
                    DeValue::Table(t) => {
                        let mut map = BTreeMap::new();
                        for (k, v) in t.iter() {
                            match toml_value::scalar(v) {
                                Ok(raw) => {
                                    map.insert(k.get_ref().to_string(), raw.value);
                                }
                                Err(msg) => errors.push(src.error(
                                    Some(v.span().start),
                                    &format!("{path}.{}", k.get_ref()),
                                    msg,
                                )),
                            }
                        }
                        if !map.contains_key("plugin") {
                            errors.push(src.error(
                                Some(eat),
                                path,
                                "a table entry needs plugin = \"NAME\"",
                            ));
                        }
                        items.push((eat, RawItem::Table(map)));
                    }
                    other => errors.push(src.error(
                        Some(eat),
                        path,
                        format!(
                            "entries must be strings or tables, found {}",
                            other.type_str()
                        ),
                    )),
                }
            }
        }
        other => errors.push(src.error(
            Some(at),
            path,
            format!(
                "expected a list of restrictions, found {}",
                other.type_str()
            ),
        )),
    }
    items
}

/// Postfix's words when no list protects the relay.
pub(super) const OPEN_RELAY: &str = "in the relay or recipient list, specify at least one working instance of: reject_unauth_destination, reject, defer (Postern must never be an open relay)";

/// Every stage's list: `raw`'s where it sets one, else `base`'s, else the
/// default; and the stages `raw` set.
pub(super) fn resolve_lists(
    raw: &RawLists,
    base: &RawLists,
    prefix: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    src: &Source,
    errors: &mut Vec<ConfigError>,
) -> (BTreeMap<Stage, Vec<Restriction>>, Vec<Stage>) {
    let mut restrictions = BTreeMap::new();
    let mut set = Vec::new();
    for stage in Stage::ALL {
        let (items, key) = match (raw.get(&stage), base.get(&stage)) {
            (Some((_, items)), _) => {
                set.push(stage);
                (items, format!("{prefix}.{stage}"))
            }
            (None, Some((_, items))) => (items, format!("smtpd.restrictions.{stage}")),
            (None, None) => {
                restrictions.insert(stage, default_list(stage));
                continue;
            }
        };
        let list = resolve_items(items, &key, lookup, src, errors);
        restrictions.insert(stage, list);
    }
    (restrictions, set)
}

/// `$name`-expands the entries of one list; errors name `key`.
pub(in crate::config) fn resolve_items(
    items: &[(usize, RawItem)],
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    src: &Source,
    errors: &mut Vec<ConfigError>,
) -> Vec<Restriction> {
    let mut list = Vec::with_capacity(items.len());
    for (at, item) in items {
        let item = match item {
            RawItem::Line(l) => match expand_at(l, *at, key, lookup, src, errors) {
                Some(l) => RestrictionItem::Line(l),
                None => continue,
            },
            RawItem::Table(t) => {
                let mut out = BTreeMap::new();
                for (k, v) in t {
                    if let Some(v) = expand_at(v, *at, key, lookup, src, errors) {
                        out.insert(k.clone(), v);
                    }
                }
                RestrictionItem::Table(out)
            }
        };
        list.push(Restriction {
            item,
            line: src.line_of(*at),
        });
    }
    list
}

/// Postfix's start-up check: the relay or recipient list must contain an
/// entry that refuses unauthorized destinations, or refuses everything.
pub(super) fn relay_protected(lists: &BTreeMap<Stage, Vec<Restriction>>) -> bool {
    [Stage::Relay, Stage::Recipient].iter().any(|stage| {
        lists.get(stage).is_some_and(|l| {
            l.iter().any(|r| {
                let name = match &r.item {
                    RestrictionItem::Line(l) => l.split_whitespace().next().unwrap_or(""),
                    RestrictionItem::Table(t) => t.get("plugin").map_or("", String::as_str),
                };
                let shadow = matches!(&r.item, RestrictionItem::Table(t) if t.get("mode").is_some_and(|m| m == "shadow"));
                !shadow && matches!(name, "reject_unauth_destination" | "defer_unauth_destination" | "reject" | "defer")
            })
        })
    })
}
