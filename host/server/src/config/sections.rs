//! The parts of the config that are not main.cf parameters: `[[service]]`
//! (master.cf), `[auth]`, and `[smtpd.restrictions]` (the
//! `smtpd_*_restrictions` lists, also accepted under their Postfix names).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use postern_mail::Stage;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Source};
use super::main_cf::Main;
use super::{expand, toml_value};

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

/// A listener (a master.cf line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `smtp`, `submission` (AUTH required before MAIL), `smtps`
    /// (implicit TLS), `pop3` (STLS) or `pop3s` (implicit TLS); later:
    /// imap, imaps.
    pub name: String,
    /// Where it listens.
    pub listen: Vec<SocketAddr>,
    /// 1-based line of the entry.
    pub line: usize,
}

/// The services this version can run.
const SERVICES: &[&str] = &["smtp", "submission", "smtps", "pop3", "pop3s"];
/// The services later versions add, refused by name meanwhile.
const LATER_SERVICES: &[&str] = &["imap", "imaps"];

/// Postfix's parameter names for the lists, accepted at the top level.
const POSTFIX_LISTS: &[(&str, Stage)] = &[
    ("smtpd_client_restrictions", Stage::Client),
    ("smtpd_helo_restrictions", Stage::Helo),
    ("smtpd_sender_restrictions", Stage::Sender),
    ("smtpd_relay_restrictions", Stage::Relay),
    ("smtpd_recipient_restrictions", Stage::Recipient),
    ("smtpd_data_restrictions", Stage::Data),
    ("smtpd_end_of_data_restrictions", Stage::EndOfData),
];

/// Whether a top-level key is a section (or a list under its Postfix name).
pub fn is_section(name: &str) -> bool {
    matches!(name, "service" | "auth" | "smtpd") || POSTFIX_LISTS.iter().any(|(n, _)| *n == name)
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

/// Sections as read, before expansion.
#[derive(Debug, Default)]
pub(super) struct Sections {
    services: Vec<RawService>,
    users_file: Option<(String, usize)>,
    lists: BTreeMap<Stage, (usize, Vec<(usize, RawItem)>)>,
}

/// A `[[service]]` table as read: its offset, and each value with its own.
#[derive(Debug, Default)]
struct RawService {
    offset: usize,
    name: Option<(String, usize)>,
    listen: Option<(String, usize)>,
}

#[derive(Debug)]
enum RawItem {
    Line(String),
    Table(BTreeMap<String, String>),
}

/// What the sections resolve to.
pub(super) struct Resolved {
    pub services: Vec<Service>,
    pub users_file: Option<PathBuf>,
    pub restrictions: BTreeMap<Stage, Vec<Restriction>>,
    pub restrictions_set: Vec<Stage>,
}

impl Sections {
    pub(super) fn read(
        &mut self,
        name: &str,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        let at = Some(value.span().start);
        match name {
            "service" => {
                let Some(items) = value.get_ref().as_array() else {
                    errors.push(src.error(
                        at,
                        "service",
                        "expected [[service]] entries (an array of tables)",
                    ));
                    return;
                };
                for item in items.iter() {
                    let Ok(table) = toml_value::table(item) else {
                        errors.push(src.error(
                            Some(item.span().start),
                            "service",
                            "each service must be a table",
                        ));
                        continue;
                    };
                    let mut entry = RawService {
                        offset: item.span().start,
                        ..RawService::default()
                    };
                    for (key, v) in table.iter() {
                        let k = key.get_ref().as_ref();
                        let path = format!("service.{k}");
                        match (k, v.get_ref().as_str()) {
                            ("name", Some(s)) => entry.name = Some((s.to_owned(), v.span().start)),
                            ("listen", Some(s)) => {
                                entry.listen = Some((s.to_owned(), v.span().start))
                            }
                            ("name" | "listen", None) => {
                                errors.push(src.error(
                                    Some(v.span().start),
                                    &path,
                                    format!("expected a string, found {}", v.get_ref().type_str()),
                                ));
                            }
                            _ => errors.push(src.error(
                                Some(key.span().start),
                                &path,
                                "unknown key (expected name, listen)",
                            )),
                        }
                    }
                    self.services.push(entry);
                }
            }
            "auth" => match toml_value::table(value) {
                Err(msg) => errors.push(src.error(at, "auth", msg)),
                Ok(table) => {
                    for (key, v) in table.iter() {
                        let k = key.get_ref().as_ref();
                        match (k, v.get_ref().as_str()) {
                            ("users_file", Some(s)) => {
                                self.users_file = Some((s.to_owned(), v.span().start))
                            }
                            ("users_file", None) => errors.push(src.error(
                                Some(v.span().start),
                                "auth.users_file",
                                "expected a path string",
                            )),
                            _ => errors.push(src.error(
                                Some(key.span().start),
                                &format!("auth.{k}"),
                                "unknown key (expected users_file)",
                            )),
                        }
                    }
                }
            },
            "smtpd" => match toml_value::table(value) {
                Err(msg) => errors.push(src.error(at, "smtpd", msg)),
                Ok(table) => {
                    for (key, v) in table.iter() {
                        let k = key.get_ref().as_ref();
                        if k != "restrictions" {
                            errors.push(src.error(
                                Some(key.span().start),
                                &format!("smtpd.{k}"),
                                "unknown key (expected restrictions)",
                            ));
                            continue;
                        }
                        match toml_value::table(v) {
                            Err(msg) => errors.push(src.error(
                                Some(v.span().start),
                                "smtpd.restrictions",
                                msg,
                            )),
                            Ok(lists) => self.read_lists(lists, src, errors),
                        }
                    }
                }
            },
            postfix_name => {
                if let Some((_, stage)) = POSTFIX_LISTS.iter().find(|(n, _)| *n == postfix_name) {
                    self.read_list(*stage, postfix_name, value, src, errors);
                }
            }
        }
    }

    fn read_lists(&mut self, lists: &DeTable<'_>, src: &Source, errors: &mut Vec<ConfigError>) {
        for (key, v) in lists.iter() {
            let k = key.get_ref().as_ref();
            let path = format!("smtpd.restrictions.{k}");
            match Stage::ALL.iter().find(|s| s.as_str() == k) {
                Some(stage) => self.read_list(*stage, &path, v, src, errors),
                None => errors.push(src.error(
                    Some(key.span().start),
                    &path,
                    "unknown restriction list (expected client, helo, sender, relay, recipient, data, end_of_data)",
                )),
            }
        }
    }

    fn read_list(
        &mut self,
        stage: Stage,
        path: &str,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        let at = value.span().start;
        if self.lists.contains_key(&stage) {
            errors.push(src.error(Some(at), path, format!("the {stage} list is set twice")));
            return;
        }
        let mut items = Vec::new();
        match value.get_ref() {
            // main.cf style: "permit_mynetworks, reject_unauth_destination".
            DeValue::String(s) => {
                items.extend(
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| (at, RawItem::Line(s.to_owned()))),
                );
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
        self.lists.insert(stage, (at, items));
    }

    pub(super) fn resolve(
        self,
        lookup: &dyn Fn(&str) -> Option<String>,
        main: &Main,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) -> Resolved {
        let mut exp = |s: &str, offset: usize, key: &str| match expand::expand(s, lookup) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(src.error(Some(offset), key, e.to_string()));
                None
            }
        };
        let mut services = Vec::new();
        let mut raw_services = Vec::new();
        for RawService {
            offset,
            name,
            listen,
        } in self.services
        {
            let Some((name, name_at)) = name else {
                raw_services.push(Err(src.error(
                    Some(offset),
                    "service",
                    "a service needs name = \"smtp\" (or another service name)",
                )));
                continue;
            };
            let listen = listen.and_then(|(l, at)| exp(&l, at, "service.listen").map(|l| (l, at)));
            raw_services.push(Ok((name, name_at, listen, offset)));
        }
        let mut restrictions = BTreeMap::new();
        let mut restrictions_set = Vec::new();
        for stage in Stage::ALL {
            let list = match self.lists.get(&stage) {
                None => default_list(stage),
                Some((_, items)) => {
                    restrictions_set.push(stage);
                    let key = format!("smtpd.restrictions.{stage}");
                    items
                        .iter()
                        .filter_map(|(at, item)| {
                            let item = match item {
                                RawItem::Line(l) => RestrictionItem::Line(exp(l, *at, &key)?),
                                RawItem::Table(t) => {
                                    let mut out = BTreeMap::new();
                                    for (k, v) in t {
                                        out.insert(k.clone(), exp(v, *at, &key)?);
                                    }
                                    RestrictionItem::Table(out)
                                }
                            };
                            Some(Restriction {
                                item,
                                line: src.line_of(*at),
                            })
                        })
                        .collect()
                }
            };
            restrictions.insert(stage, list);
        }
        let users_file = self
            .users_file
            .and_then(|(f, at)| exp(&f, at, "auth.users_file"))
            .map(PathBuf::from);
        for s in raw_services {
            match s {
                Err(e) => errors.push(e),
                Ok((name, name_at, listen, offset)) => {
                    match service(&name, listen.as_ref().map(|(l, _)| l.as_str()), main) {
                        Ok(listen_addrs) => services.push(Service {
                            name,
                            listen: listen_addrs,
                            line: src.line_of(offset),
                        }),
                        Err(msg) => {
                            let at = if msg.starts_with("listen") {
                                listen.map_or(name_at, |(_, at)| at)
                            } else {
                                name_at
                            };
                            errors.push(src.error(Some(at), "service", msg));
                        }
                    }
                }
            }
        }
        if !relay_protected(&restrictions) {
            let at = self
                .lists
                .get(&Stage::Recipient)
                .or(self.lists.get(&Stage::Relay))
                .map(|(at, _)| *at);
            errors.push(src.error(
                at,
                "smtpd.restrictions",
                "in the relay or recipient list, specify at least one working instance of: reject_unauth_destination, reject, defer (Postern must never be an open relay)",
            ));
        }
        Resolved {
            services,
            users_file,
            restrictions,
            restrictions_set,
        }
    }
}

/// Postfix's start-up check: the relay or recipient list must contain an
/// entry that refuses unauthorized destinations, or refuses everything.
fn relay_protected(lists: &BTreeMap<Stage, Vec<Restriction>>) -> bool {
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

/// Reads a service's listen value: `127.0.0.1:2525`, `[::1]:2525`, or a
/// bare port on every `inet_interfaces` address.
fn service(name: &str, listen: Option<&str>, main: &Main) -> Result<Vec<SocketAddr>, String> {
    if LATER_SERVICES.contains(&name) {
        return Err(format!(
            "service {name:?} is not supported by this version of Postern yet"
        ));
    }
    if !SERVICES.contains(&name) {
        return Err(format!(
            "unknown service {name:?} (expected one of: {})",
            SERVICES.join(", ")
        ));
    }
    let listen =
        listen.ok_or_else(|| "listen: missing (such as listen = \"127.0.0.1:2525\")".to_owned())?;
    if let Ok(port) = listen.trim().parse::<u16>() {
        return Ok(main
            .inet_interfaces
            .iter()
            .map(|ip: &IpAddr| SocketAddr::new(*ip, port))
            .collect());
    }
    listen
        .trim()
        .parse::<SocketAddr>()
        .map(|a| vec![a])
        .map_err(|_| format!("listen: {listen:?} is not an address:port such as 127.0.0.1:2525 or [::1]:2525, or a port"))
}
