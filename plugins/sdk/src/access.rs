//! Postfix's access maps (access(5)), shared by the `check_*_access`
//! plugins: what each one looks up, in which order, and what it answers.
//!
//! A `check_*_access` entry names one table (`hash:/etc/postfix/access`,
//! declared implicitly by the server, or the name of a `[tables.NAME]`)
//! and looks up keys derived from one request attribute until the table
//! answers; the answer is an access(5) action ([`crate::access_action`]).
//! The keys, as smtpd_check.c derives them:
//! - host names (client, reverse client, HELO): the name, then its parent
//!   domains, `example.com` or `.example.com` per
//!   `parent_domain_matches_subdomains` ("HOST NAME/ADDRESS PATTERNS");
//! - client addresses: `1.2.3.4`, `1.2.3`, `1.2`, `1`; an IPv6 address
//!   loses its last `:`-separated part each time, as Postfix's
//!   `split_at_right` does;
//! - mail addresses: `user+ext@domain`, `user@domain`, the domain and its
//!   parents as above, `user+ext@`, `user@` ("EMAIL ADDRESS PATTERNS");
//!   the null sender is looked up as `smtpd_null_access_lookup_key` (`<>`).
//!
//! Only the first key of a search is a "full" key: pattern tables
//! (`regexp:`, `pcre:`, `cidr:`) see no other, as in Postfix, so a regexp
//! never matches a bare parent domain by accident.
//!
//! The settings that are main.cf parameters in Postfix are the entry's
//! named arguments here, with Postfix's defaults:
//! `{ plugin = "check_sender_access", table = "hash:/etc/postfix/access",
//! recipient_delimiter = "+" }`; the server passes its own main.cf values
//! of them to every `check_*_access` entry.

use crate::access_action::{self, Codes, Outcome};
use crate::{Args, Attribute, Request, Stage, Verdict, restriction};

/// Which attribute an access map checks: one per `check_*_access` plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `check_client_access`: the verified client name, then its address.
    Client,
    /// `check_reverse_client_hostname_access`: the unverified PTR name,
    /// then the address.
    ReverseClient,
    /// `check_helo_access`: the HELO/EHLO name.
    Helo,
    /// `check_sender_access`: the MAIL FROM address.
    Sender,
    /// `check_recipient_access`: the RCPT TO address.
    Recipient,
    /// `check_sasl_access`: the SASL login name, looked up as a mail
    /// address (`user@domain`, the domain and its parents, `user@`; a
    /// name without a domain whole, then as `user@`).
    Sasl,
}

impl Kind {
    /// What Postfix calls the rejected thing in replies (smtpd_check.h
    /// `SMTPD_NAME_*`): `<x>: Sender address rejected: ...`.
    pub fn reply_class(self) -> &'static str {
        match self {
            Kind::Client => "Client host",
            Kind::ReverseClient => "Unverified Client host",
            Kind::Helo => "Helo command",
            Kind::Sender => "Sender address",
            Kind::Recipient => "Recipient address",
            Kind::Sasl => "SASL login name",
        }
    }
}

/// One `check_*_access` entry, checked at `init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessMap {
    kind: Kind,
    /// The table's name as the `tables` import knows it.
    table: String,
    /// A regexp, pcre or cidr table: full keys only.
    pattern: bool,
    /// `parent_domain_matches_subdomains` lists `smtpd_access_maps`:
    /// `example.com` matches its subdomains, `.example.com` means nothing.
    parent_matches_subdomains: bool,
    /// `recipient_delimiter`: any of these characters starts an extension.
    delimiters: String,
    /// `smtpd_null_access_lookup_key`.
    null_key: String,
    /// `access_map_reject_code`, `access_map_defer_code`.
    codes: Codes,
}

/// Postfix's default of `parent_domain_matches_subdomains` lists
/// `smtpd_access_maps`.
const PARENT_DEFAULT: bool = true;

impl AccessMap {
    /// Reads the entry's arguments: the table (first word, or `table`),
    /// and the main.cf-named settings.
    pub fn from_args(kind: Kind, args: Vec<(String, String)>) -> Result<AccessMap, String> {
        let mut args = Args::new(args);
        let mut words = args.positional().into_iter();
        let named = args.take("table");
        let table = match (words.next(), named) {
            (Some(t), None) | (None, Some(t)) => t,
            (Some(_), Some(_)) => return Err("table: given twice".to_owned()),
            (None, None) => {
                return Err("missing table, such as hash:/etc/postfix/access".to_owned());
            }
        };
        if let Some(extra) = words.next() {
            return Err(format!("unexpected argument {extra:?}: takes one table"));
        }
        let pattern = match table.split_once(':') {
            None => false,
            Some((kind, path)) => {
                if path.is_empty() {
                    return Err(format!("{table:?}: missing the path after {kind}:"));
                }
                match kind {
                    "hash" | "btree" | "lmdb" | "texthash" => false,
                    "regexp" | "pcre" | "cidr" => true,
                    other => {
                        return Err(format!(
                            "{table:?}: unsupported table type {other:?} (expected hash, cidr, regexp or pcre)"
                        ));
                    }
                }
            }
        };
        let parent_matches_subdomains = args
            .parse("parent_domain_matches_subdomains", |v| {
                Ok(lists_access_maps(v))
            })?
            .unwrap_or(PARENT_DEFAULT);
        let delimiters = args.take("recipient_delimiter").unwrap_or_default();
        let null_key = args
            .take("smtpd_null_access_lookup_key")
            .unwrap_or_else(|| "<>".to_owned());
        let mut codes = Codes::default();
        if let Some(c) = args.parse("access_map_reject_code", |v| reply_code(v, &['4', '5']))? {
            codes.reject = c;
        }
        if let Some(c) = args.parse("access_map_defer_code", |v| reply_code(v, &['4']))? {
            codes.defer = c;
        }
        args.done()?;
        Ok(AccessMap {
            kind,
            table,
            pattern,
            parent_matches_subdomains,
            delimiters,
            null_key,
            codes,
        })
    }

    /// The table this entry looks keys up in.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The attributes of a request this map's verdict depends on, for
    /// `host.cache-verdicts`, given every result its table may answer
    /// (`tables.results`): the looked-up attribute (and the client's
    /// address, which a client's reply names), and what the restrictions
    /// that a result names read in-process. `None` when that cannot be
    /// known: a result with `$` (a `regexp` substitution, which may
    /// become any action), or the sender's map, which tells "no MAIL FROM
    /// yet" from the null sender by the queue id, never the same twice.
    pub fn attributes(&self, results: &[String]) -> Option<Vec<Attribute>> {
        let mut attributes = match self.kind {
            Kind::Client => vec![Attribute::ClientAddress, Attribute::ClientName],
            Kind::ReverseClient => vec![Attribute::ClientAddress, Attribute::ReverseClientName],
            Kind::Helo => vec![Attribute::HeloName],
            Kind::Recipient => vec![Attribute::Recipient],
            Kind::Sasl => vec![Attribute::SaslUsername],
            Kind::Sender => return None,
        };
        for value in results {
            if value.contains('$') {
                return None;
            }
            for name in access_action::restriction_names(value).unwrap_or_default() {
                attributes.extend_from_slice(restriction::attributes(&name).unwrap_or_default());
            }
        }
        Some(attributes)
    }

    /// Answers `req`: looks its keys up with `lookup` (the `tables` import
    /// in a plugin, a map in tests) and turns the first answer into a
    /// verdict, with what to log.
    pub fn check(&self, req: &Request, lookup: &mut dyn FnMut(&str) -> Option<String>) -> Outcome {
        let Some((searches, reply_name)) = self.subject(req) else {
            return Outcome::from(Verdict::Dunno);
        };
        self.search(req, &searches, &reply_name, lookup)
            .unwrap_or_else(|| Outcome::from(Verdict::Dunno))
    }

    /// The subject of this entry's checks: what its kind names in `req`
    /// (the verified client name, the HELO name, the sender or recipient
    /// address, the SASL login), the way replies quote it; `None` when
    /// the attribute is not known yet (or is the null sender).
    pub fn subject_name(&self, req: &Request) -> Option<String> {
        match self.subject(req) {
            Some((_, name)) if !name.is_empty() => Some(name),
            _ => None,
        }
    }

    /// The keys of a host name search with this entry's
    /// `parent_domain_matches_subdomains`.
    pub fn domain_search(&self, name: &str) -> Vec<String> {
        domain_keys(name, self.parent_matches_subdomains)
    }

    /// Looks up `searches` (each a list of keys, most specific first) and
    /// turns the first answer into an outcome whose replies quote
    /// `reply_name`; `None` when no key is in the table.
    pub fn search(
        &self,
        req: &Request,
        searches: &[Vec<String>],
        reply_name: &str,
        lookup: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Option<Outcome> {
        for keys in searches {
            for (i, key) in keys.iter().enumerate() {
                if i > 0 && self.pattern {
                    break;
                }
                if let Some(value) = lookup(key) {
                    let cx = access_action::Context {
                        table: &self.table,
                        key,
                        reply_name,
                        class: self.kind.reply_class(),
                        codes: self.codes,
                        request: req,
                    };
                    return Some(access_action::evaluate(&value, &cx));
                }
            }
        }
        None
    }

    /// The searches to run (each a list of keys, most specific first) and
    /// the name replies quote; `None` when the attribute is not known yet.
    fn subject(&self, req: &Request) -> Option<(Vec<Vec<String>>, String)> {
        let addr = req.client_address.as_str();
        match self.kind {
            Kind::Client | Kind::ReverseClient => {
                if addr.is_empty() {
                    return None;
                }
                let name = if self.kind == Kind::Client {
                    &req.client_name
                } else {
                    &req.reverse_client_name
                };
                let name = if name.is_empty() { "unknown" } else { name };
                let reply_name = if self.kind == Kind::Client {
                    format!("{name}[{addr}]")
                } else {
                    name.to_owned()
                };
                let searches = vec![
                    domain_keys(name, self.parent_matches_subdomains),
                    address_keys(addr),
                ];
                Some((searches, reply_name))
            }
            Kind::Helo => {
                let helo = req.helo_name.as_str();
                (!helo.is_empty()).then(|| {
                    (
                        vec![domain_keys(helo, self.parent_matches_subdomains)],
                        helo.to_owned(),
                    )
                })
            }
            Kind::Sender => {
                if !sender_known(req) {
                    return None;
                }
                if req.sender.is_empty() {
                    return Some((vec![vec![self.null_key.clone()]], String::new()));
                }
                let keys = mail_keys(
                    &req.sender,
                    &self.delimiters,
                    self.parent_matches_subdomains,
                );
                Some((vec![keys], req.sender.clone()))
            }
            Kind::Recipient => {
                let rcpt = req.recipient.as_str();
                (!rcpt.is_empty()).then(|| {
                    let keys = mail_keys(rcpt, &self.delimiters, self.parent_matches_subdomains);
                    (vec![keys], rcpt.to_owned())
                })
            }
            Kind::Sasl => {
                // Nothing to look up for a client that did not log in.
                let login = req.sasl_username.as_str();
                (!login.is_empty()).then(|| {
                    let keys = mail_keys(login, &self.delimiters, self.parent_matches_subdomains);
                    (vec![keys], login.to_owned())
                })
            }
        }
    }
}

/// Whether MAIL FROM was given, so that an empty sender is the null
/// sender `<>` rather than "not yet".
fn sender_known(req: &Request) -> bool {
    !req.queue_id.is_empty() || !matches!(req.stage, Stage::Client | Stage::Helo)
}

/// `parent_domain_matches_subdomains`: a yes/no, or Postfix's list of
/// parameter names, true when it names `smtpd_access_maps`.
fn lists_access_maps(value: &str) -> bool {
    match value.trim() {
        "yes" | "true" => true,
        "no" | "false" => false,
        list => list
            .split(|c: char| c == ',' || c.is_whitespace())
            .any(|w| w == "smtpd_access_maps"),
    }
}

/// A reply code setting: three digits, the first one of `first`.
fn reply_code(value: &str, first: &[char]) -> Result<u16, String> {
    let ok =
        value.len() == 3 && value.chars().all(|c| c.is_ascii_digit()) && value.starts_with(first);
    let want = if first.len() == 1 {
        "a 4xx"
    } else {
        "a 4xx or 5xx"
    };
    ok.then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| format!("expected {want} reply code"))
}

/// The keys of a host name search: the name, then its parent domains
/// (`b.example` with `parent`, `.b.example` without), as
/// `check_domain_access` does. An address (or an address literal) is
/// looked up as it is, with no subdomain magic.
pub fn domain_keys(name: &str, parent: bool) -> Vec<String> {
    let name = name.to_ascii_lowercase();
    let mut keys = vec![name.clone()];
    if name.starts_with('[') || name.parse::<std::net::IpAddr>().is_ok() {
        return keys;
    }
    let mut rest = name.as_str();
    // The first character is skipped, as Postfix's `strchr(name + 1, '.')`
    // does: a name that starts with a dot has no parent at that dot.
    while let Some(at) = rest.get(1..).and_then(|r| r.find('.')).map(|i| i + 1) {
        let next = if parent { &rest[at + 1..] } else { &rest[at..] };
        if next.is_empty() || next == "." {
            break;
        }
        keys.push(next.to_owned());
        rest = &rest[at..];
    }
    keys
}

/// The keys of an address search: the address, then shorter and shorter
/// networks, cut at the last `.` (IPv4) or `:` (IPv6) each time.
pub fn address_keys(addr: &str) -> Vec<String> {
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let delim = if addr.contains(':') { ':' } else { '.' };
    let mut keys = vec![addr.to_ascii_lowercase()];
    let mut rest = addr;
    while let Some((head, _)) = rest.rsplit_once(delim) {
        if head.is_empty() {
            break;
        }
        keys.push(head.to_ascii_lowercase());
        rest = head;
    }
    keys
}

/// The keys of a mail address search, in access(5)'s order:
/// `user+ext@domain`, `user@domain`, the domain and its parents,
/// `user+ext@`, `user@`. An address without a domain is looked up whole,
/// then as `user@`.
pub fn mail_keys(address: &str, delimiters: &str, parent: bool) -> Vec<String> {
    let (local, domain) = match address.rsplit_once('@') {
        Some((l, d)) => (l, Some(d.to_ascii_lowercase())),
        None => (address, None),
    };
    let bare = crate::address::without_extension(local, delimiters);
    let has_ext = bare.len() < local.len() && !bare.is_empty();
    let mut keys = Vec::new();
    match &domain {
        Some(d) => {
            keys.push(format!("{local}@{d}"));
            if has_ext {
                keys.push(format!("{bare}@{d}"));
            }
            if !d.is_empty() {
                keys.extend(domain_keys(d, parent));
            }
        }
        None => keys.push(local.to_owned()),
    }
    keys.push(format!("{local}@"));
    if has_ext {
        keys.push(format!("{bare}@"));
    }
    keys
}

/// The entry of this plugin instance, set by [`init`].
static MAP: std::sync::OnceLock<AccessMap> = std::sync::OnceLock::new();

/// A `check_*_access` plugin's `init`: checks and keeps the arguments,
/// and declares what the verdicts depend on when the table's results
/// tell ([`AccessMap::attributes`]), so that the host may keep them.
pub fn init(kind: Kind, args: Vec<(String, String)>) -> Result<(), String> {
    let map = AccessMap::from_args(kind, args)?;
    let depends = crate::tables::results(map.table()).and_then(|r| map.attributes(&r));
    if let Some(attributes) = depends {
        // The table and the arguments are the loaded configuration's: a
        // verdict cannot go stale before a reload forgets it.
        crate::host::cache_verdicts(&attributes, crate::CACHE_MAX_SECONDS);
    }
    // A second init in one instance keeps the first: the host gives each
    // instance one entry's arguments.
    let _ = MAP.set(map);
    Ok(())
}

/// A `check_*_access` plugin's `check`: looks the request up through the
/// `tables` import and logs through `host.log`.
pub fn check(req: Request) -> Verdict {
    let outcome = match MAP.get() {
        Some(map) => map.check(&req, &mut |key| crate::tables::lookup(map.table(), key)),
        None => access_action::server_error("check called before init".to_owned()),
    };
    for (level, line) in outcome.log {
        crate::host::log(level, &line);
    }
    outcome.verdict
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_parent_domains() {
        assert_eq!(
            domain_keys("Mail.Spam.Example.org", true),
            [
                "mail.spam.example.org",
                "spam.example.org",
                "example.org",
                "org"
            ]
        );
        assert_eq!(
            domain_keys("mail.spam.example.org", false),
            [
                "mail.spam.example.org",
                ".spam.example.org",
                ".example.org",
                ".org"
            ]
        );
        assert_eq!(domain_keys("localhost", true), ["localhost"]);
        assert_eq!(domain_keys("192.0.2.1", true), ["192.0.2.1"]);
        assert_eq!(domain_keys("[192.0.2.1]", true), ["[192.0.2.1]"]);
        // A HELO name may end in a dot; the empty key is never looked up.
        assert_eq!(domain_keys("a.b.", true), ["a.b.", "b."]);
        assert_eq!(domain_keys(".x.y", false), [".x.y", ".y"]);
    }

    #[test]
    fn addresses_lose_octets() {
        assert_eq!(
            address_keys("192.0.2.66"),
            ["192.0.2.66", "192.0.2", "192.0", "192"]
        );
        assert_eq!(
            address_keys("2001:DB8:1:2::5"),
            [
                "2001:db8:1:2::5",
                "2001:db8:1:2:",
                "2001:db8:1:2",
                "2001:db8:1",
                "2001:db8",
                "2001"
            ]
        );
        assert_eq!(address_keys("::1"), ["::1", ":"]);
    }

    #[test]
    fn mail_address_order() {
        assert_eq!(
            mail_keys("User+Tag@Mail.Example.com", "+", true),
            [
                "User+Tag@mail.example.com",
                "User@mail.example.com",
                "mail.example.com",
                "example.com",
                "com",
                "User+Tag@",
                "User@"
            ]
        );
        assert_eq!(
            mail_keys("user@example.com", "+", false),
            ["user@example.com", "example.com", ".com", "user@"]
        );
        // Without recipient_delimiter, + is part of the user name.
        assert_eq!(
            mail_keys("a+b@x.org", "", true),
            ["a+b@x.org", "x.org", "org", "a+b@"]
        );
        assert_eq!(
            mail_keys("postmaster", "+", true),
            ["postmaster", "postmaster@"]
        );
        // A local part that is all extension keeps it.
        assert_eq!(
            mail_keys("+x@d.org", "+", true),
            ["+x@d.org", "d.org", "org", "+x@"]
        );
    }

    #[test]
    fn arguments() {
        let a =
            |pairs: &[(&str, &str)]| AccessMap::from_args(Kind::Sender, crate::args::pairs(pairs));
        let m = a(&[("1", "hash:/etc/postfix/access")]).unwrap();
        assert_eq!(m.table(), "hash:/etc/postfix/access");
        assert!(!m.pattern && m.parent_matches_subdomains);
        assert!(a(&[("1", "regexp:/x")]).unwrap().pattern);
        assert!(a(&[("table", "access")]).is_ok());
        assert_eq!(
            a(&[]).unwrap_err(),
            "missing table, such as hash:/etc/postfix/access"
        );
        assert_eq!(
            a(&[("1", "ldap:/x")]).unwrap_err(),
            "\"ldap:/x\": unsupported table type \"ldap\" (expected hash, cidr, regexp or pcre)"
        );
        assert!(a(&[("1", "hash:")]).is_err());
        assert!(a(&[("1", "hash:/x"), ("2", "hash:/y")]).is_err());
        let m = a(&[
            ("1", "hash:/x"),
            (
                "parent_domain_matches_subdomains",
                "relay_domains, mynetworks",
            ),
            ("access_map_reject_code", "550"),
        ])
        .unwrap();
        assert!(!m.parent_matches_subdomains);
        assert_eq!(m.codes.reject, 550);
        assert_eq!(
            a(&[("1", "hash:/x"), ("access_map_defer_code", "550")]).unwrap_err(),
            "access_map_defer_code: \"550\": expected a 4xx reply code"
        );
        assert_eq!(
            a(&[("1", "hash:/x"), ("colour", "red")]).unwrap_err(),
            "colour: unknown argument"
        );
    }

    #[test]
    fn what_a_maps_verdicts_depend_on() {
        let map = |kind| AccessMap::from_args(kind, vec![("1".into(), "hash:/x".into())]).unwrap();
        let results = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
        let plain = results(&["OK", "REJECT no spam", "550 5.7.1 go"]);
        assert_eq!(
            map(Kind::Client).attributes(&plain),
            Some(vec![Attribute::ClientAddress, Attribute::ClientName])
        );
        assert_eq!(
            map(Kind::Helo).attributes(&plain),
            Some(vec![Attribute::HeloName])
        );
        // A result naming restrictions adds what they read.
        let named = results(&["OK", "permit_mynetworks, reject_unauth_destination"]);
        assert_eq!(
            map(Kind::Helo).attributes(&named),
            Some(vec![
                Attribute::HeloName,
                Attribute::Trusted,
                Attribute::Recipient,
                Attribute::RecipientClass
            ])
        );
        // What cannot be known: a substitution, the sender's map.
        assert_eq!(map(Kind::Client).attributes(&results(&["REJECT $1"])), None);
        assert_eq!(map(Kind::Sender).attributes(&plain), None);
    }
}
