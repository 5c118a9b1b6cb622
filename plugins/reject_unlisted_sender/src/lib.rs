//! `reject_unlisted_sender`: Postfix's restriction of the same name as a
//! Postern plugin.
//!
//! Rejects a MAIL FROM address at a domain delivered here that has no
//! mailbox, so that nobody outside can use a made-up local sender: `550
//! 5.1.0 <ADDR>: Sender address rejected: User unknown in local recipient
//! table`, the code `unknown_local_recipient_reject_code` (`code = "..."`).
//!
//! The request does not say whether the sender's domain is ours nor
//! whether the address exists (that needs a `sender-class:
//! option<domain-class>` attribute in `wit/policy.wit`'s `request`, and a
//! host import over the server's directory,
//! `directory.recipient-exists(address) -> bool`). Until then the operator
//! names both: `domains` (space or comma separated: the local domains) and
//! `maps` (tables of existing users, asked for `user+ext@domain`,
//! `user@domain` without the extension after any `delimiter` character,
//! and `user`). Without them it has no opinion. `postmaster` always
//! exists (RFC 5321 §4.5.1); the null sender passes.

use postern_plugin_sdk::address::{domain, local_part, without_extension};
use postern_plugin_sdk::resolver::Setting;
use postern_plugin_sdk::{Args, Guest, Request, Verdict, export_plugin, reject, tables};

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
        return Verdict::Dunno;
    }
    let enhanced = if config.code >= 500 { "5.1.0" } else { "4.1.0" };
    reject(
        config.code,
        enhanced,
        format!("<{address}>: Sender address rejected: User unknown in local recipient table"),
    )
}

export_plugin!(RejectUnlistedSender);
