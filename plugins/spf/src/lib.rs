//! `spf`: the Sender Policy Framework (RFC 7208) as a Postern plugin:
//! what Postfix sites run postfix-policyd-spf-python for
//! (`check_policy_service unix:private/policyd-spf`), with its option
//! names and its replies.
//!
//! At the recipient stage (or any stage after MAIL FROM) it checks the
//! client address against the SPF records of the HELO name
//! (`postmaster@HELO`) and of the MAIL FROM domain (for the null sender,
//! the HELO result stands for it, §2.4), with the whole of RFC 7208:
//! every mechanism (`all`, `include`, `a`, `mx`, `ptr`, `ip4`, `ip6`,
//! `exists`) with prefix lengths, `redirect=` and `exp=`, macros (§7, all
//! letters and transformers, `%{p}` through PTR lookups), the limits of
//! 10 DNS-querying terms and 2 void lookups (§4.6.4), and the seven
//! results. DNS goes through the host's `dns` import. The results are
//! kept for the transaction (by its `instance` token: the plugin's
//! instances serve many transactions in turn), so later recipients cost no
//! lookups.
//!
//! Then, as policyd-spf does:
//! - a refused result answers `550 5.7.23` (RFC 7372) with the domain's
//!   explanation (`exp=`) or `SPF fail - not authorized. Please see
//!   http://www.open-spf.org/Why?...`; a refused permerror `550 5.7.24`;
//!   a deferred temperror `451 4.7.24`;
//! - otherwise the message gets a `Received-SPF:` header (§9.1) through a
//!   PREPEND verdict: the result, a comment, `client-ip`,
//!   `envelope-from`, `helo`, `receiver`, `identity`, `mechanism` (and
//!   `problem` for errors); or, with `Header_Type = AR`, an
//!   `Authentication-Results: <Authserv_Id>; spf=pass
//!   smtp.mailfrom=example.org` (RFC 8601; `smtp.helo=` when the HELO
//!   identity decided, for the null sender).
//!
//! In `smtpd_end_of_data_restrictions` the entry sees the message: it adds
//! its fields through the `message` import (so `Header_Type = Both` adds
//! both: a verdict carries one field, and an earlier entry adds only
//! Received-SPF), and it answers WARN, logged, when the message arrived
//! with an Authentication-Results field bearing this host's authserv-id
//! (RFC 8601 §5). It cannot remove or rename that field: the `message`
//! resource only adds (see `end_of_data`).
//!
//! ```toml
//! smtpd_recipient_restrictions = [
//!     "permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination",
//!     { plugin = "spf", Mail_From_reject = "Softfail", TempError_Defer = "True" },
//! ]
//! ```
//!
//! Arguments (policyd-spf's names and defaults; values case-insensitive):
//! - `HELO_reject`: `Fail` (refuse a HELO fail), `SPF_Not_Pass` (any result
//!   but pass, none, temperror), `Softfail` (fail and softfail), `Null`
//!   (a fail, for the null sender only), `False` (never), `No_Check`.
//! - `Mail_From_reject`: the same but `Null`; `Fail` by default.
//! - `PermError_reject`: `False`; `True` refuses a permerror (5.7.24).
//! - `TempError_Defer`: `False`; `True` defers a temperror (4.7.24).
//! - `Header_Type`: `SPF` (Received-SPF, also spelt `Received-SPF`), `AR`
//!   (`Authentication-Results`), `Both` or `None`.
//! - `Authserv_Id`: this host's name for `receiver=`, `%{r}` and the
//!   Authentication-Results authserv-id ("unknown" when not given: plugins
//!   are not told `myhostname`; required with `AR` and `Both`).
//! - `Void_Limit`: 2. `Skip_Addresses`: addresses and networks not checked
//!   (empty by default, unlike policyd-spf's loopback: put
//!   `permit_mynetworks` before the entry instead, as Postfix does).
//!
//! Not here: policyd-spf's whitelists (`Whitelist`, `HELO_Whitelist`, `Domain_Whitelist`: an
//! access map before the entry does that), per-domain overrides, and its
//! `Lookup_Time` (the host bounds a call's DNS time itself).
//!
//! # Layout
//! - this file: the plugin glue and the transaction's cache.
//! - `record`: choosing and parsing a domain's record (§4.5, §4.6, §5, §6).
//! - `macros`: macro strings and domain-specs (§7.1); `macros::expand`:
//!   their expansion for one check (§7.2, §7.3).
//! - `eval`: `check_host()` over a [`Resolver`](postern_plugin_sdk::resolver::Resolver) (§4, §6);
//!   `eval::mechanisms`: how each mechanism matches the client (§5).
//! - `config`: the entry's arguments (policyd-spf's names).
//! - `policy`: the checks a request calls for, their cache, and the verdict.
//! - `header`: the Received-SPF (§9.1) and Authentication-Results (RFC
//!   8601) fields.
//! - `end_of_data`: the entry at the end of data: fields added through the
//!   `message` import, forged Authentication-Results found.
//! - `suite` (tests only): RFC 7208 Appendix A and the RFC 7208 test
//!   suite's cases (pyspf, Mail::SPF) over made-up DNS; `suite_policy`
//!   (tests only): verdicts, headers, the cache, arguments;
//!   `suite_headers` (tests only): Authentication-Results, the end of
//!   data.

pub mod config;
pub mod end_of_data;
pub mod eval;
pub mod header;
pub mod macros;
pub mod policy;
pub mod record;
#[cfg(test)]
mod suite;
#[cfg(test)]
mod suite_headers;
#[cfg(test)]
mod suite_policy;

use std::sync::Mutex;

use postern_plugin_sdk::resolver::HostDns;
use postern_plugin_sdk::{Entry, Guest, Request, Stage, Verdict, export_plugin, host, message};

use config::Config;
use policy::Cache;

/// The entry of this instance, set by `init`.
static ENTRY: Entry<Config> = Entry::new();

/// The transaction's results.
static CACHE: Cache = Mutex::new(None);

/// The plugin.
struct Spf;

impl Guest for Spf {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        host::reuse_instances();
        ENTRY.init(Config::from_args(args))
    }

    fn check(req: Request) -> Verdict {
        ENTRY.check(|config| {
            let session = policy::Session::from(&req);
            let now = host::now();
            match message::current() {
                Some(m) if req.stage == Stage::EndOfData => {
                    end_of_data::check(config, &HostDns, &session, &CACHE, now, &Message(m))
                }
                _ => policy::check(config, &HostDns, &session, &CACHE, now),
            }
        })
    }
}

/// The message of an end-of-data request.
struct Message(message::Message);

impl end_of_data::Fields for Message {
    fn header(&self, name: &str) -> Vec<String> {
        self.0.header(name)
    }

    fn add(&self, name: &str, value: &str) -> Result<(), String> {
        self.0.add_header(name, value)
    }
}

export_plugin!(Spf);
