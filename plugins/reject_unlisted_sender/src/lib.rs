//! `reject_unlisted_sender`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Rejects a MAIL FROM address at a domain delivered here that has no
//! mailbox, so that nobody outside can use a made-up local sender: `550
//! 5.1.0 <ADDR>: Sender address rejected: User unknown in local recipient
//! table`, the code `unknown_local_recipient_reject_code` (`code = "..."`).
//!
//! Where it looks: by default, at the server. The request's
//! `sender-class` says whether the sender's domain is delivered here
//! (local or virtual), and `sender-known` whether the address has a
//! mailbox, as the server's own recipient check answers it (the users
//! file, aliases, `local_recipient_maps`, virtual mailbox maps): `550
//! 5.1.0 ... User unknown in local recipient table` (or `virtual mailbox
//! table`). An operator may name the answer instead: `domains` (space or
//! comma separated: the local domains) and `maps` (tables of existing
//! users, asked for `user+ext@domain`, `user@domain` without the extension
//! after any `delimiter` character, and `user`), which then replace the
//! server's view. `postmaster` always exists (RFC 5321 §4.5.1); the null
//! sender passes.

use postern_plugin_sdk::address::{domain, local_part, without_extension};
use postern_plugin_sdk::resolver::Setting;
use postern_plugin_sdk::{
    Args, DomainClass, Guest, Request, Verdict, export_plugin, reject, tables,
};

/// Postfix's `unknown_local_recipient_reject_code`.
const UNKNOWN_RECIPIENT_REJECT_CODE: u16 = 550;

/// What `init` read.
#[derive(Debug)]
struct Config {
    domains: Vec<String>,
    maps: Vec<String>,
    delimiter: String,
    code: u16,
}

static CONFIG: Setting<Config> = Setting::new();

/// The plugin.
struct RejectUnlistedSender;

/// A space- or comma-separated list.
fn list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase())
            .collect()
    })
    .unwrap_or_default()
}

impl Guest for RejectUnlistedSender {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        let mut args = Args::new(args);
        let domains = list(args.take("domains"));
        let maps = list(args.take("maps"));
        if domains.is_empty() != maps.is_empty() {
            return Err(
                "domains and maps go together: the local domains, and the tables of their users"
                    .to_owned(),
            );
        }
        let delimiter = args.take("delimiter").unwrap_or_default();
        let code = args
            .parse("code", |c| match c.parse::<u16>() {
                Ok(n @ 400..=599) => Ok(n),
                _ => Err("expected a 4xx or 5xx code".to_owned()),
            })?
            .unwrap_or(UNKNOWN_RECIPIENT_REJECT_CODE);
        args.done()?;
        CONFIG.set(Config {
            domains,
            maps,
            delimiter,
            code,
        });
        Ok(())
    }

    fn check(req: Request) -> Verdict {
        CONFIG.with(|c| unlisted(c, &req)).unwrap_or(Verdict::Dunno)
    }
}

fn unlisted(config: &Config, req: &Request) -> Verdict {
    let address = req.sender.as_str();
    if config.domains.is_empty() {
        let table = match req.sender_class {
            Some(DomainClass::Local) => "local recipient table",
            Some(DomainClass::Virtual) => "virtual mailbox table",
            _ => return Verdict::Dunno,
        };
        return if req.sender_known || address.is_empty() {
            Verdict::Dunno
        } else {
            unknown(config.code, address, table)
        };
    }
    let Some(dom) = domain(address) else {
        return Verdict::Dunno;
    };
    if !config.domains.contains(&dom) {
        return Verdict::Dunno;
    }
    let local = local_part(address).to_ascii_lowercase();
    let bare = without_extension(&local, &config.delimiter);
    if bare == "postmaster" {
        return Verdict::Dunno;
    }
    let mut keys = vec![
        format!("{local}@{dom}"),
        format!("{bare}@{dom}"),
        bare.to_owned(),
    ];
    keys.dedup();
    let found = config
        .maps
        .iter()
        .any(|map| keys.iter().any(|k| tables::lookup(map, k).is_some()));
    if found {
        Verdict::Dunno
    } else {
        unknown(config.code, address, "local recipient table")
    }
}

/// Postfix's reply: `550 5.1.0 <ADDR>: Sender address rejected: User
/// unknown in local recipient table` (the sender's 5.1.0, not 5.1.1).
fn unknown(code: u16, address: &str, table: &str) -> Verdict {
    let enhanced = if code >= 500 { "5.1.0" } else { "4.1.0" };
    reject(
        code,
        enhanced,
        format!("<{address}>: Sender address rejected: User unknown in {table}"),
    )
}

export_plugin!(RejectUnlistedSender);

#[cfg(test)]
mod tests {
    use super::*;
    use postern_plugin_sdk::{Reply, Stage};

    fn answer(sender: &str, class: Option<DomainClass>, known: bool) -> Verdict {
        let config = Config {
            domains: Vec::new(),
            maps: Vec::new(),
            delimiter: String::new(),
            code: UNKNOWN_RECIPIENT_REJECT_CODE,
        };
        let req = Request {
            sender: sender.to_owned(),
            sender_class: class,
            sender_known: known,
            ..Request::empty(Stage::Sender)
        };
        unlisted(&config, &req)
    }

    #[test]
    fn without_arguments_the_hosts_answer_decides() {
        assert_eq!(
            answer("ghost@example.test", Some(DomainClass::Local), false),
            Verdict::Reject(Reply {
                code: 550,
                enhanced: "5.1.0".to_owned(),
                text: "<ghost@example.test>: Sender address rejected: User unknown in local recipient table".to_owned(),
            })
        );
        assert!(matches!(
            answer("ghost@example.test", Some(DomainClass::Virtual), false),
            Verdict::Reject(Reply { code: 550, .. })
        ));
        assert_eq!(
            answer("alice@example.test", Some(DomainClass::Local), true),
            Verdict::Dunno
        );
        assert_eq!(
            answer("x@elsewhere.test", Some(DomainClass::Other), false),
            Verdict::Dunno
        );
        assert_eq!(answer("", None, true), Verdict::Dunno);
    }
}
