//! The entry at the end of data (`smtpd_end_of_data_restrictions`), where
//! the plugin sees the message: its fields are added through the
//! `message` import rather than a PREPEND verdict, so `Header_Type = Both`
//! adds both, and the Authentication-Results fields the message arrived
//! with are looked at.
//!
//! RFC 8601 §5: a receiver must not trust an Authentication-Results field
//! bearing its own authserv-id that came from outside; it removes or
//! renames it before adding its own. A plugin cannot: the `message`
//! resource (wit/policy.wit) reads fields and adds new ones at the top,
//! and has no call that removes or renames one, by design (a plugin only
//! ever adds to what the client sent). So the plugin finds such fields
//! and answers WARN, which the server logs (`warn: END-OF-MESSAGE ...`)
//! with how many there were; our own field is added above them, where
//! readers that take the topmost field of an authserv-id find it. The
//! removal itself belongs to the server (the queue's cleanup, where
//! Postfix sites run a milter or `header_checks` for it).

use postern_plugin_sdk::Verdict;
use postern_plugin_sdk::resolver::Resolver;

use crate::config::{Config, UNKNOWN_RECEIVER};
use crate::header::authserv_id;
use crate::policy::{Answer, Cache, Session, answer, evaluate};

/// The part of the `message` resource this needs: read the fields of a
/// name, add one at the top. Unit tests use a list in memory.
pub trait Fields {
    /// The bodies of every field called `name` (case-insensitive).
    fn header(&self, name: &str) -> Vec<String>;
    /// Adds the field `name: value` at the top; an error says why not.
    fn add(&self, name: &str, value: &str) -> Result<(), String>;
}

/// The verdict for an end-of-data request whose message is `message`:
/// a refusal, or the fields added and WARN for what should be logged.
pub fn check<R: Resolver, F: Fields>(
    config: &Config,
    dns: &R,
    req: &Session<'_>,
    cache: &Cache,
    now: u64,
    message: &F,
) -> Verdict {
    let mut notes = Vec::new();
    let forged = forged(config, message);
    if forged > 0 {
        notes.push(format!(
            "{forged} Authentication-Results field(s) with this host's authserv-id {} \
             arrived with the message: not trusted, not removed (RFC 8601 section 5)",
            config.receiver
        ));
    }
    if let Some(results) = evaluate(config, dns, req, cache, now) {
        match answer(config, req, &results) {
            Answer::Refuse(verdict) => return verdict,
            Answer::Accept(fields) => {
                for field in fields {
                    let (name, value) = field.split_once(": ").unwrap_or((&field, ""));
                    if let Err(e) = message.add(name, value) {
                        notes.push(format!("{name} not added: {e}"));
                    }
                }
            }
        }
    }
    if notes.is_empty() {
        Verdict::Dunno
    } else {
        Verdict::Warn(notes.join("; "))
    }
}

/// How many Authentication-Results fields of the message bear this host's
/// authserv-id (compared as a domain name, without case). None when the
/// entry was not told its authserv-id (`Authserv_Id`).
pub fn forged<F: Fields>(config: &Config, message: &F) -> usize {
    if config.receiver == UNKNOWN_RECEIVER {
        return 0;
    }
    message
        .header("Authentication-Results")
        .iter()
        .filter_map(|body| authserv_id(body))
        .filter(|id| {
            id.trim_end_matches('.')
                .eq_ignore_ascii_case(config.receiver.trim_end_matches('.'))
        })
        .count()
}
