//! The parts of the config that are not main.cf parameters: `[[service]]`
//! (master.cf), `[auth]`, and `[smtpd.restrictions]` (the
//! `smtpd_*_restrictions` lists, also accepted under their Postfix names).
//!
//! A `[[service]]` may override, for itself, the smtpd parameters in
//! [`SERVICE_OVERRIDES`] and any restriction list, as master.cf's `-o`
//! does: the parameters as keys of the service table, the lists in
//! `[service.restrictions]` (or under their Postfix names).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use postern_mail::Stage;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Source};
use super::main_cf::Main;
use super::socket::{self, UnixListen};
use super::toml_value::Raw;
use super::{expand, params, toml_value};

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
    /// The main.cf parameters in force for this service: the file's, with
    /// this service's overrides (master.cf `-o`) applied and `$name`
    /// expanded against them.
    pub main: Box<Main>,
    /// The parameters this service overrides, by name.
    pub overrides: Vec<&'static str>,
    /// The same with their values, `$name`-expanded (`postern config -P`).
    pub override_values: Vec<(&'static str, String)>,
    /// Every restriction list in force for this service, when it overrides
    /// at least one (`None`: the file's lists).
    pub restrictions: Option<BTreeMap<Stage, Vec<Restriction>>>,
    /// `smtp`, `submission` (AUTH required before MAIL), `smtps`
    /// (implicit TLS), `pop3` (STLS), `pop3s` (implicit TLS), `imap`
    /// (STARTTLS), `imaps` (implicit TLS) or `lmtp` (RFC 2033).
    pub name: String,
    /// Where it listens over TCP (empty for a UNIX socket).
    pub listen: Vec<SocketAddr>,
    /// The UNIX socket it listens on instead (`listen = "unix:/path"`,
    /// lmtp only).
    pub unix: Option<UnixListen>,
    /// 1-based line of the entry.
    pub line: usize,
}

/// The main.cf parameters a `[[service]]` may set for itself (master.cf
/// `-o`): those an SMTP session reads, and `content_filter` (the filter of
/// the mail the service receives).
pub const SERVICE_OVERRIDES: &[&str] = &[
    "content_filter",
    "default_process_limit",
    "disable_vrfy_command",
    "header_size_limit",
    "line_length_limit",
    "message_size_limit",
    "smtpd_banner",
    "smtpd_client_connection_count_limit",
    "smtpd_client_connection_rate_limit",
    "smtpd_client_event_limit_exceptions",
    "smtpd_client_message_rate_limit",
    "smtpd_error_sleep_time",
    "smtpd_forbid_bare_newline",
    "smtpd_hard_error_limit",
    "smtpd_helo_required",
    "smtpd_recipient_limit",
    "smtpd_sasl_auth_enable",
    "smtpd_sasl_authenticated_header",
    "smtpd_soft_error_limit",
    "smtpd_timeout",
    "smtpd_tls_auth_only",
    "smtpd_tls_security_level",
];

/// The services this version can run.
const SERVICES: &[&str] = &[
    "smtp",
    "submission",
    "smtps",
    "pop3",
    "pop3s",
    "imap",
    "imaps",
    "lmtp",
];
/// The services later versions add, refused by name meanwhile.
const LATER_SERVICES: &[&str] = &[];

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

/// Whether `name` is the Postfix parameter of a restriction list
/// (`smtpd_recipient_restrictions`, ...).
pub fn is_postfix_list(name: &str) -> bool {
    POSTFIX_LISTS.iter().any(|(n, _)| *n == name)
}

/// Whether a top-level key is a section (or a list under its Postfix name).
pub fn is_section(name: &str) -> bool {
    matches!(name, "service" | "auth" | "smtpd" | "metrics")
        || POSTFIX_LISTS.iter().any(|(n, _)| *n == name)
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
    /// `[auth] system_accounts`, and where it was set.
    system_accounts: Option<(bool, usize)>,
    /// `[metrics] listen`.
    metrics_listen: Option<(String, usize)>,
    lists: RawLists,
    /// `[smtpd.restriction_classes]` and the top-level classes that
    /// `smtpd_restriction_classes` names.
    pub(super) classes: super::classes::RawClasses,
}

/// Restriction lists as read: per stage, where the list is and its items.
type RawLists = BTreeMap<Stage, (usize, Vec<(usize, RawItem)>)>;

/// A `[[service]]` table as read: its offset, and each value with its own.
#[derive(Debug, Default)]
struct RawService {
    offset: usize,
    name: Option<(String, usize)>,
    listen: Option<(String, usize)>,
    /// `mode`, `user`, `group`: a UNIX socket's (see [`super::socket`]).
    socket: BTreeMap<&'static str, (String, usize)>,
    overrides: BTreeMap<&'static str, Raw>,
    lists: RawLists,
}

#[derive(Debug)]
pub(super) enum RawItem {
    Line(String),
    Table(BTreeMap<String, String>),
}

/// What the sections resolve to.
pub(super) struct Resolved {
    pub services: Vec<Service>,
    pub users_file: Option<PathBuf>,
    pub system_accounts: bool,
    pub metrics_listen: Option<SocketAddr>,
    pub restrictions: BTreeMap<Stage, Vec<Restriction>>,
    pub restrictions_set: Vec<Stage>,
    pub classes: BTreeMap<String, Vec<Restriction>>,
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
                            (k, Some(s)) if socket::KEYS.contains(&k) => {
                                if let Some(key) = socket::KEYS.iter().find(|n| **n == k) {
                                    entry.socket.insert(key, (s.to_owned(), v.span().start));
                                }
                            }
                            ("name" | "listen" | "mode" | "user" | "group", None) => {
                                errors.push(src.error(
                                    Some(v.span().start),
                                    &path,
                                    format!("expected a string, found {}", v.get_ref().type_str()),
                                ));
                            }
                            _ => read_override(&mut entry, k, v, src, errors),
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
                            ("system_accounts", _) => match v.get_ref().as_bool() {
                                Some(b) => self.system_accounts = Some((b, v.span().start)),
                                None => errors.push(src.error(
                                    Some(v.span().start),
                                    "auth.system_accounts",
                                    "expected true or false",
                                )),
                            },
                            _ => errors.push(src.error(
                                Some(key.span().start),
                                &format!("auth.{k}"),
                                "unknown key (expected users_file or system_accounts)",
                            )),
                        }
                    }
                }
            },
            "metrics" => match toml_value::table(value) {
                Err(msg) => errors.push(src.error(at, "metrics", msg)),
                Ok(table) => {
                    for (key, v) in table.iter() {
                        let k = key.get_ref().as_ref();
                        match (k, v.get_ref().as_str()) {
                            ("listen", Some(s)) => {
                                self.metrics_listen = Some((s.to_owned(), v.span().start))
                            }
                            ("listen", None) => errors.push(src.error(
                                Some(v.span().start),
                                "metrics.listen",
                                "expected an address string such as \"127.0.0.1:9154\"",
                            )),
                            _ => errors.push(src.error(
                                Some(key.span().start),
                                &format!("metrics.{k}"),
                                "unknown key (expected listen)",
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
                        if k == "restriction_classes" {
                            self.classes.read_table(v, src, errors);
                            continue;
                        }
                        if k != "restrictions" {
                            errors.push(src.error(
                                Some(key.span().start),
                                &format!("smtpd.{k}"),
                                "unknown key (expected restrictions, restriction_classes)",
                            ));
                            continue;
                        }
                        match toml_value::table(v) {
                            Err(msg) => errors.push(src.error(
                                Some(v.span().start),
                                "smtpd.restrictions",
                                msg,
                            )),
                            Ok(lists) => Sections::read_lists(
                                &mut self.lists,
                                "smtpd.restrictions",
                                lists,
                                src,
                                errors,
                            ),
                        }
                    }
                }
            },
            postfix_name => {
                if let Some((_, stage)) = POSTFIX_LISTS.iter().find(|(n, _)| *n == postfix_name) {
                    Sections::read_list(&mut self.lists, *stage, postfix_name, value, src, errors);
                }
            }
        }
    }

    fn read_lists(
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

    fn read_list(
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

    pub(super) fn resolve(
        self,
        ctx: &Context<'_>,
        main: &Main,
        errors: &mut Vec<ConfigError>,
    ) -> Resolved {
        self.resolve_sections(ctx, main, errors)
    }
}

/// The entries of one list (a stage's or a restriction class's) as
/// written: a main.cf-style string or an array of strings and tables,
/// each with its offset.
pub(super) fn read_items(
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

impl Sections {
    fn resolve_sections(
        self,
        ctx: &Context<'_>,
        main: &Main,
        errors: &mut Vec<ConfigError>,
    ) -> Resolved {
        let src = ctx.source;
        let (restrictions, restrictions_set) = resolve_lists(
            &self.lists,
            &BTreeMap::new(),
            "smtpd.restrictions",
            ctx.lookup,
            src,
            errors,
        );
        let users_file = self
            .users_file
            .and_then(|(f, at)| expand_at(&f, at, "auth.users_file", ctx.lookup, src, errors))
            .map(PathBuf::from);
        // Accounts that log in must have their mail delivered where they
        // read it: the system's accounts must be recipients too.
        let system_accounts = match self.system_accounts {
            Some((true, at)) if !main.system_accounts => {
                errors.push(src.error(
                    Some(at),
                    "auth.system_accounts",
                    "needs local_recipient_maps to name unix:passwd.byname, so that the \
                     accounts that log in receive mail (local_recipient_maps = \
                     \"unix:passwd.byname, $alias_maps\")",
                ));
                false
            }
            Some((on, _)) => on,
            None => false,
        };
        let metrics_listen = self.metrics_listen.and_then(|(text, at)| {
            let text = expand_at(&text, at, "metrics.listen", ctx.lookup, src, errors)?;
            text.parse()
                .map_err(|_| {
                    errors.push(src.error(
                        Some(at),
                        "metrics.listen",
                        format!("{text:?} is not an address and port such as 127.0.0.1:9154"),
                    ));
                })
                .ok()
        });
        let mut services = Vec::new();
        for raw in self.services {
            if let Some(s) = resolve_service(raw, ctx, main, &self.lists, errors) {
                services.push(s);
            }
        }
        if !relay_protected(&restrictions) {
            let at = self
                .lists
                .get(&Stage::Recipient)
                .or(self.lists.get(&Stage::Relay))
                .map(|(at, _)| *at);
            errors.push(src.error(at, "smtpd.restrictions", OPEN_RELAY));
        }
        let classes = self.classes.resolve(ctx, errors);
        Resolved {
            services,
            users_file,
            system_accounts,
            metrics_listen,
            restrictions,
            restrictions_set,
            classes,
        }
    }
}

/// Postfix's words when no list protects the relay.
const OPEN_RELAY: &str = "in the relay or recipient list, specify at least one working instance of: reject_unauth_destination, reject, defer (Postern must never be an open relay)";

/// What resolving needs of the file: the text (for lines), the `$name`
/// lookup and the parameters as set (for their positions).
pub(super) struct Context<'a> {
    pub source: &'a Source,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub set: &'a BTreeMap<&'static str, Raw>,
}

/// `$name`-expands `s`, pushing an error at `offset` on failure.
fn expand_at(
    s: &str,
    offset: usize,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    src: &Source,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    match expand::expand(s, lookup) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(src.error(Some(offset), key, e.to_string()));
            None
        }
    }
}

/// Every stage's list: `raw`'s where it sets one, else `base`'s, else the
/// default; and the stages `raw` set.
fn resolve_lists(
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
pub(super) fn resolve_items(
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

/// Reads a service key other than name and listen: an override of a
/// main.cf parameter, `restrictions`, or a list under its Postfix name.
fn read_override(
    entry: &mut RawService,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    src: &Source,
    errors: &mut Vec<ConfigError>,
) {
    let path = format!("service.{key}");
    let at = Some(value.span().start);
    if key == "restrictions" {
        match toml_value::table(value) {
            Ok(lists) => Sections::read_lists(&mut entry.lists, &path, lists, src, errors),
            Err(msg) => errors.push(src.error(at, &path, msg)),
        }
        return;
    }
    if let Some((name, stage)) = POSTFIX_LISTS.iter().find(|(n, _)| *n == key) {
        Sections::read_list(&mut entry.lists, *stage, name, value, src, errors);
        return;
    }
    let Some(name) = SERVICE_OVERRIDES.iter().find(|n| **n == key) else {
        let why = if params::find(key).is_some() {
            format!("{key} cannot be set per service")
        } else {
            "unknown key".to_owned()
        };
        errors.push(src.error(
            at,
            &path,
            format!(
                "{why} (a service takes name, listen, restrictions, and the smtpd parameters {})",
                SERVICE_OVERRIDES.join(", ")
            ),
        ));
        return;
    };
    match toml_value::scalar(value) {
        Ok(raw) => {
            entry.overrides.insert(name, raw);
        }
        Err(msg) => errors.push(src.error(at, &path, msg)),
    }
}

/// One `[[service]]`: its listen addresses, its parameters (the file's
/// with its overrides), and its lists if it overrides any.
fn resolve_service(
    raw: RawService,
    ctx: &Context<'_>,
    main: &Main,
    base_lists: &RawLists,
    errors: &mut Vec<ConfigError>,
) -> Option<Service> {
    let src = ctx.source;
    let Some((name, name_at)) = raw.name else {
        errors.push(src.error(
            Some(raw.offset),
            "service",
            "a service needs name = \"smtp\" (or another service name)",
        ));
        return None;
    };
    // The service's view of the parameters: its overrides first, so that
    // `$name` in them and in the other parameters sees them (as `-o`).
    let overrides = &raw.overrides;
    let lookup = |n: &str| match overrides.get(n) {
        Some(r) => Some(r.value.clone()),
        None => (ctx.lookup)(n),
    };
    let listen = raw.listen.and_then(|(l, at)| {
        expand_at(&l, at, "service.listen", &lookup, src, errors).map(|l| (l, at))
    });
    let svc_main = if overrides.is_empty() {
        main.clone()
    } else {
        let mut set = ctx.set.clone();
        set.extend(overrides.iter().map(|(k, v)| (*k, v.clone())));
        let mut scratch = Vec::new();
        let m = Main::read(&lookup, &set, src, &mut scratch);
        // Errors of parameters the service did not set were reported
        // (once) for the file itself.
        errors.extend(
            scratch
                .into_iter()
                .filter(|e| overrides.contains_key(e.key.as_str()))
                .map(|mut e| {
                    e.key = format!("service.{}", e.key);
                    e
                }),
        );
        m
    };
    let restrictions = if raw.lists.is_empty() {
        None
    } else {
        let prefix = format!("service.{name}.restrictions");
        let (lists, _) = resolve_lists(&raw.lists, base_lists, &prefix, &lookup, src, errors);
        if !relay_protected(&lists) {
            let at = [Stage::Recipient, Stage::Relay]
                .iter()
                .find_map(|s| raw.lists.get(s))
                .or(raw.lists.values().next())
                .map(|(at, _)| *at);
            errors.push(src.error(at, &prefix, OPEN_RELAY));
        }
        Some(lists)
    };
    if name == "lmtp" && restrictions.is_some() {
        let at = raw.lists.values().next().map(|(at, _)| *at);
        errors.push(src.error(
            at,
            "service.lmtp.restrictions",
            "the lmtp service has no restriction lists (the MTA that delivers over LMTP applied its own)",
        ));
        return None;
    }
    let Ok(unix) = socket::unix_listen(&name, listen.as_ref(), &raw.socket, src, errors) else {
        return None;
    };
    let addrs = match unix {
        Some(_) => Ok(Vec::new()),
        None => service(&name, listen.as_ref().map(|(l, _)| l.as_str()), &svc_main),
    };
    match addrs {
        Ok(listen_addrs) => Some(Service {
            main: Box::new(svc_main),
            overrides: overrides.keys().copied().collect(),
            override_values: overrides
                .iter()
                .map(|(k, r)| (*k, expand::expand(&r.value, &lookup).unwrap_or_default()))
                .collect(),
            restrictions,
            name,
            listen: listen_addrs,
            unix,
            line: src.line_of(raw.offset),
        }),
        Err(msg) => {
            let at = if msg.starts_with("listen") {
                listen.map_or(name_at, |(_, at)| at)
            } else {
                name_at
            };
            errors.push(src.error(Some(at), "service", msg));
            None
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
