//! `reject_unlisted_recipient`: Postfix's restriction of the same name as
//! a Postern plugin.
//!
//! Rejects a recipient at a domain delivered here (local or virtual) that
//! has no mailbox: `550 5.1.1 <ADDR>: Recipient address rejected: User
//! unknown in local recipient table` (or `virtual mailbox table`), the
//! code `unknown_local_recipient_reject_code` (`code = "..."`).
//!
//! Where it looks: the operator's tables named by `maps` (space or comma
//! separated; Postfix's `local_recipient_maps` / `virtual_mailbox_maps`),
//! each asked for `user+ext@domain`, `user@domain` (without the extension
//! after any `delimiter` character) and then, at a local domain, `user`
//! (as the passwd and aliases maps are keyed), at a virtual one `@domain`
//! (a catch-all). `postmaster` at a local domain always exists (RFC 5321
//! §4.5.1).
//!
//! Without `maps` it asks the server: the request's `recipient-known`
//! attribute is the server's own answer (the users file, aliases,
//! `local_recipient_maps`, virtual mailbox maps), the one the SMTP server
//! applies itself after the lists when `smtpd_reject_unlisted_recipient`
//! is on. As an entry it rejects in its place in the list, before a later
//! permit can accept the address.

use postern_plugin_sdk::address::{domain, local_part, without_extension};
use postern_plugin_sdk::resolver::Setting;
use postern_plugin_sdk::{
    Args, DomainClass, Guest, Request, Verdict, export_plugin, reject, tables,
};

/// Postfix's `unknown_local_recipient_reject_code` (and
/// `unknown_virtual_mailbox_reject_code`).
const UNKNOWN_RECIPIENT_REJECT_CODE: u16 = 550;

/// What `init` read.
#[derive(Debug)]
struct Config {
    maps: Vec<String>,
    delimiter: String,
    code: u16,
}

static CONFIG: Setting<Config> = Setting::new();

/// The plugin.
struct RejectUnlistedRecipient;

impl Guest for RejectUnlistedRecipient {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        let mut args = Args::new(args);
        let maps = args
            .take("maps")
            .map(|m| {
                m.split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let delimiter = args.take("delimiter").unwrap_or_default();
        let code = args
            .parse("code", |c| match c.parse::<u16>() {
                Ok(n @ 400..=599) => Ok(n),
                _ => Err("expected a 4xx or 5xx code".to_owned()),
            })?
            .unwrap_or(UNKNOWN_RECIPIENT_REJECT_CODE);
        args.done()?;
        CONFIG.set(Config {
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
    let address = req.recipient.as_str();
    let table = match req.recipient_class {
        Some(DomainClass::Local) => "local recipient table",
        Some(DomainClass::Virtual) => "virtual mailbox table",
        _ => return Verdict::Dunno,
    };
    if config.maps.is_empty() {
        return if req.recipient_known {
            Verdict::Dunno
        } else {
            unknown(config.code, address, table)
        };
    }
    let Some(dom) = domain(address) else {
        return Verdict::Dunno;
    };
    let local = local_part(address).to_ascii_lowercase();
    let bare = without_extension(&local, &config.delimiter);
    let local_domain = req.recipient_class == Some(DomainClass::Local);
    if local_domain && bare == "postmaster" {
        return Verdict::Dunno;
    }
    let mut keys = vec![format!("{local}@{dom}"), format!("{bare}@{dom}")];
    keys.push(if local_domain {
        bare.to_owned()
    } else {
        format!("@{dom}")
    });
    keys.dedup();
    let found = config
        .maps
        .iter()
        .any(|map| keys.iter().any(|k| tables::lookup(map, k).is_some()));
    if found {
        Verdict::Dunno
    } else {
        unknown(config.code, address, table)
    }
}

/// Postfix's reply: `550 5.1.1 <ADDR>: Recipient address rejected: User
/// unknown in local recipient table`.
fn unknown(code: u16, address: &str, table: &str) -> Verdict {
    let enhanced = if code >= 500 { "5.1.1" } else { "4.1.1" };
    reject(
        code,
        enhanced,
        format!("<{address}>: Recipient address rejected: User unknown in {table}"),
    )
}

export_plugin!(RejectUnlistedRecipient);

#[cfg(test)]
mod tests {
    use super::*;
    use postern_plugin_sdk::{Reply, Stage};

    fn answer(class: DomainClass, known: bool) -> Verdict {
        let config = Config {
            maps: Vec::new(),
            delimiter: String::new(),
            code: UNKNOWN_RECIPIENT_REJECT_CODE,
        };
        let req = Request {
            recipient: "nobody@example.test".to_owned(),
            recipient_class: Some(class),
            recipient_known: known,
            ..Request::empty(Stage::Recipient)
        };
        unlisted(&config, &req)
    }

    #[test]
    fn without_maps_the_hosts_answer_decides() {
        assert_eq!(
            answer(DomainClass::Local, false),
            Verdict::Reject(Reply {
                code: 550,
                enhanced: "5.1.1".to_owned(),
                text: "<nobody@example.test>: Recipient address rejected: User unknown in local recipient table".to_owned(),
            })
        );
        assert_eq!(
            answer(DomainClass::Virtual, false),
            Verdict::Reject(Reply {
                code: 550,
                enhanced: "5.1.1".to_owned(),
                text: "<nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table".to_owned(),
            })
        );
        assert_eq!(answer(DomainClass::Local, true), Verdict::Dunno);
        assert_eq!(answer(DomainClass::Relay, false), Verdict::Dunno);
        assert_eq!(answer(DomainClass::Other, false), Verdict::Dunno);
    }
}
