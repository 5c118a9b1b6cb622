//! The parts of the config that are not main.cf parameters: `[[service]]`
//! (master.cf), `[auth]`, and `[smtpd.restrictions]` (the
//! `smtpd_*_restrictions` lists, also accepted under their Postfix names).
//!
//! A `[[service]]` may override, for itself, the smtpd parameters in
//! [`SERVICE_OVERRIDES`] and any restriction list, as master.cf's `-o`
//! does: the parameters as keys of the service table, the lists in
//! `[service.restrictions]` (or under their Postfix names).
//!
//! # Layout
//! - this file: the sections as read (before `$name` expansion), reading
//!   the top-level keys into them, and resolving them into the config.
//! - `restrictions`: the restriction lists, read and resolved.
//! - `service`: a `[[service]]` (a master.cf line), read and resolved.

mod restrictions;
mod service;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use postern_mail::Stage;
use toml::Spanned;
use toml::de::DeValue;

use super::error::{ConfigError, Source};
use super::main_cf::Main;
use super::toml_value::Raw;
use super::{expand, toml_value};
use restrictions::{OPEN_RELAY, POSTFIX_LISTS, relay_protected, resolve_lists};
use service::{RawService, resolve_service};

pub use restrictions::{Restriction, RestrictionItem, default_list, describe, is_postfix_list};
pub(super) use restrictions::{read_items, resolve_items};
pub use service::{SERVICE_OVERRIDES, Service};

/// Whether a top-level key is a section (or a list under its Postfix name).
pub fn is_section(name: &str) -> bool {
    matches!(name, "service" | "auth" | "smtpd" | "metrics")
        || POSTFIX_LISTS.iter().any(|(n, _)| *n == name)
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
            "service" => self.read_services(value, src, errors),
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

    pub(super) fn resolve(
        self,
        ctx: &Context<'_>,
        main: &Main,
        errors: &mut Vec<ConfigError>,
    ) -> Resolved {
        self.resolve_sections(ctx, main, errors)
    }

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
