//! A `[[service]]`: a listener, as a master.cf line is, with the smtpd
//! parameters and restriction lists it overrides for itself (master.cf
//! `-o`). Apart because a service is read and resolved on its own, against
//! the file's parameters and lists.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use postern_mail::Stage;
use toml::Spanned;
use toml::de::DeValue;

use super::restrictions::{OPEN_RELAY, POSTFIX_LISTS, relay_protected, resolve_lists};
use super::{Context, RawLists, Restriction, Sections, expand_at};
use crate::config::error::{ConfigError, Source};
use crate::config::main_cf::Main;
use crate::config::socket::{self, UnixListen};
use crate::config::toml_value::Raw;
use crate::config::{expand, params, toml_value};

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
    "smtpd_delay_reject",
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

/// A `[[service]]` table as read: its offset, and each value with its own.
#[derive(Debug, Default)]
pub(super) struct RawService {
    offset: usize,
    name: Option<(String, usize)>,
    listen: Option<(String, usize)>,
    /// `mode`, `user`, `group`: a UNIX socket's (see [`crate::config::socket`]).
    socket: BTreeMap<&'static str, (String, usize)>,
    overrides: BTreeMap<&'static str, Raw>,
    lists: RawLists,
}

impl Sections {
    /// Reads the `[[service]]` entries.
    pub(super) fn read_services(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        src: &Source,
        errors: &mut Vec<ConfigError>,
    ) {
        let at = Some(value.span().start);
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
                    ("listen", Some(s)) => entry.listen = Some((s.to_owned(), v.span().start)),
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
pub(super) fn resolve_service(
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
