//! `reject_sender_domain`: rejects mail from senders in the domains its
//! arguments list, and from their subdomains (as Postfix's
//! `parent_domain_matches_subdomains` does). A starter: copy it, rename
//! it, and change `init` and `check`.
//!
//! ```toml
//! smtpd_sender_restrictions = [
//!     { plugin = "reject_sender_domain", domains = "spam.example, junk.example" },
//! ]
//! # or, in Postfix's words, the domains as positional arguments:
//! smtpd_sender_restrictions = ["reject_sender_domain spam.example junk.example"]
//! ```
//!
//! Arguments (checked by `init`, so a mistake stops `postern check`,
//! start-up and `postern reload` with a message naming it):
//! - `domains`: the domains, separated by commas or spaces (or the
//!   positional arguments `1`, `2`, ... of the string form);
//! - `code`: the reply code, 554 by default (Postfix's
//!   `access_map_reject_code`); a 4xx code makes the client retry later;
//! - `text`: the reply text after `<sender>: Sender address rejected: `,
//!   `Access denied` by default.
//!
//! Anything else is a plugin's whole job too: the request carries every
//! Postfix policy-delegation attribute, and `host`, `dns`, `tables` and
//! `kv` in `bindings::postern::policy` reach the world (see
//! wit/policy.wit).

/// The Rust side of wit/policy.wit, generated at compile time, and the
/// exports that hand the host's calls to [`RejectSenderDomain`].
#[allow(unsafe_code, reason = "the canonical-ABI glue wit-bindgen generates")]
#[allow(missing_docs, reason = "generated from wit/policy.wit, documented there")]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        // The WIT package this plugin implements. Copying the starter out
        // of the Postern repository? Copy wit/ beside it and make this
        // "wit".
        path: "../../wit",
    });

    use super::RejectSenderDomain;
    export!(RejectSenderDomain);
}

use std::sync::Mutex;

use bindings::postern::policy::host::{self, LogLevel};
use bindings::postern::policy::types::Reply;
use bindings::{Guest, Request, Verdict};

/// What `init` read from the arguments.
struct Settings {
    /// Lower-case domains, without a leading or trailing dot.
    domains: Vec<String>,
    code: u16,
    text: String,
}

/// Set by `init`, read by `check`: the entry's arguments, the same for
/// every transaction, so `init` tells the host (`host::reuse_instances`)
/// that an instance may serve one transaction after another (see
/// wit/policy.wit). A plugin that kept something per transaction here
/// would key it by `request.instance`, or not make that call.
///
/// The verdict depends on the sender alone, so `init` could also call
/// `host::cache_verdicts(&[Attribute::Sender], 86_400)`: the host would
/// then answer a sender it has seen without calling `check` (and show
/// `check` only the sender). This starter does not, because it logs
/// every match, and a kept verdict writes no log line.
static SETTINGS: Mutex<Option<Settings>> = Mutex::new(None);

/// The plugin.
struct RejectSenderDomain;

impl Guest for RejectSenderDomain {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        host::reuse_instances();
        let mut settings = Settings {
            domains: Vec::new(),
            code: 554,
            text: "Access denied".to_owned(),
        };
        for (key, value) in args {
            match key.as_str() {
                "domains" => settings.domains.extend(domain_list(&value)?),
                k if k.parse::<u32>().is_ok() => settings.domains.extend(domain_list(&value)?),
                "code" => {
                    settings.code = match value.parse::<u16>() {
                        Ok(code @ 400..=599) => code,
                        _ => return Err(format!("code: {value:?} is not a 4xx or 5xx reply code")),
                    }
                }
                "text" if value.contains(['\r', '\n']) => {
                    return Err("text: must be one line".to_owned());
                }
                "text" => settings.text = value,
                _ => {
                    return Err(format!(
                        "{key}: unknown argument (expected domains, code, text)"
                    ));
                }
            }
        }
        if settings.domains.is_empty() {
            return Err("domains: no domain given (domains = \"spam.example, ...\")".to_owned());
        }
        *SETTINGS.lock().map_err(|_| "poisoned".to_owned())? = Some(settings);
        Ok(())
    }

    fn check(req: Request) -> Verdict {
        // No sender yet (the client or HELO list), or the null sender of a
        // bounce: no opinion; the next entry decides.
        let Some((_, domain)) = req.sender.rsplit_once('@') else {
            return Verdict::Dunno;
        };
        let Ok(guard) = SETTINGS.lock() else {
            return Verdict::Dunno;
        };
        let Some(settings) = guard.as_ref() else {
            return Verdict::Dunno;
        };
        let domain = domain.to_ascii_lowercase();
        let Some(listed) = settings.domains.iter().find(|d| within(&domain, d)) else {
            return Verdict::Dunno;
        };
        host::log(
            LogLevel::Info,
            &format!("sender <{}>: domain {listed} is listed", req.sender),
        );
        Verdict::Reject(Reply {
            code: settings.code,
            // Empty: the host fills in Postfix's default, 5.7.1 or 4.7.1.
            enhanced: String::new(),
            text: format!("<{}>: Sender address rejected: {}", req.sender, settings.text),
        })
    }
}

/// The domains of one argument, checked.
fn domain_list(value: &str) -> Result<Vec<String>, String> {
    value
        .split([',', ' ', '\t'])
        .filter(|d| !d.is_empty())
        .map(|d| {
            let d = d.trim_matches('.').to_ascii_lowercase();
            let ok = !d.is_empty()
                && d.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if ok {
                Ok(d)
            } else {
                Err(format!("domains: {d:?} is not a domain name"))
            }
        })
        .collect()
}

/// Whether `domain` is `parent` or one of its subdomains.
fn within(domain: &str, parent: &str) -> bool {
    domain == parent
        || domain
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}
