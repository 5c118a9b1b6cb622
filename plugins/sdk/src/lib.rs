//! What every Postern policy plugin written in Rust shares, so that a
//! plugin crate holds its policy and nothing else: the bindings of the
//! `postern:policy` package (`wit/policy.wit`), the [`export_plugin!`]
//! macro, [`Args`] for `init`'s arguments with errors that name the
//! argument, Postfix-shaped [`reply`](fn@reply)s, and the address helpers Postfix's
//! restrictions use.
//!
//! A plugin is then:
//!
//! ```ignore
//! use postern_plugin_sdk::{Args, Attribute, Guest, Request, Verdict, export_plugin, host};
//!
//! struct PermitMynetworks;
//!
//! impl Guest for PermitMynetworks {
//!     fn init(args: Vec<(String, String)>) -> Result<(), String> {
//!         // Nothing is kept per transaction: an instance may serve many.
//!         host::reuse_instances();
//!         // The verdict is `trusted`'s alone: the host may keep it and
//!         // answer the next request with the same `trusted` without a call.
//!         host::cache_verdicts(&[Attribute::Trusted], postern_plugin_sdk::CACHE_MAX_SECONDS);
//!         Args::new(args).none()
//!     }
//!
//!     fn check(req: Request) -> Verdict {
//!         if req.trusted { Verdict::Permit } else { Verdict::Dunno }
//!     }
//! }
//!
//! export_plugin!(PermitMynetworks);
//! ```
//!
//! It is the guest side only; the server never links it. It is not a
//! plugin itself (an rlib: `host/policy/build.rs` embeds cdylibs only).
//!
//! # Layout
//! - [`bindings`]: what `wit_bindgen::generate!` makes of the `plugin`
//!   world, re-exported at the top ([`Request`], [`Verdict`], [`Reply`],
//!   [`Stage`], [`DomainClass`], [`Attribute`], [`host`], [`dns`],
//!   [`tables`], [`kv`], [`message`]); [`init_pure`],
//!   [`CACHE_MAX_SECONDS`] and [`CACHE_DNS_SECONDS`] for plugins whose
//!   verdict is the request's alone (and the DNS's).
//! - [`args`]: [`Args`], the entry's arguments; [`entry`]: [`Entry`],
//!   them parsed and kept from `init` for every `check`.
//! - [`reply`](mod@reply): [`reply`](fn@reply), [`reject`], [`defer`] with
//!   Postfix's codes.
//! - [`request`]: [`Request::empty`], where plugins' unit tests start.
//! - [`address`]: [`address::domain`], [`address::local_part`] and the
//!   other pieces of an address Postfix's restrictions look at.
//! - [`access`]: access(5) maps, what the `check_*_access` plugins share:
//!   the lookup keys and their order; [`access_action`]: what a table
//!   answer means; [`restriction`]: restriction names on its right-hand
//!   side, evaluated in-process; [`server_access`]: the
//!   `check_*_{a,mx}_access` variants, which look up the hosts behind a
//!   domain.
//! - [`hostname`]: host name and address syntax as Postfix judges it.
//! - [`resolver`]: the `dns` import behind a [`resolver::Resolver`] trait
//!   (unit tests answer with made-up records).
//! - [`lookup`]: the DNS questions of the `reject_unknown_*` checks
//!   (forward-confirmed client names, host names, mail domains).
//! - [`checks`]: Postfix's host-name and address restrictions
//!   (`reject_unknown_*`, `reject_invalid_helo_hostname`,
//!   `reject_non_fqdn_*`) as functions; [`code`]: [`code::Code`], the
//!   reply code that is their one argument.
//! - [`destination`]: the relay test of `permit_auth_destination`,
//!   `reject_unauth_destination` and `defer_unauth_destination`.
//! - [`unlisted`]: `reject_unlisted_recipient` and
//!   `reject_unlisted_sender`, addresses without a mailbox.
//! - [`rbl`]: DNS block and allow lists with reply filters and templated
//!   replies ([`template`]).
//! - [`state`]: the `kv` import and the clock behind a [`state::State`]
//!   trait (unit tests use [`state::Memory`]), store keys that fit, and
//!   time spans as arguments write them: what greylisting and rate limits
//!   share.

pub mod access;
pub mod access_action;
pub mod address;
pub mod args;
pub mod checks;
pub mod code;
pub mod destination;
pub mod entry;
pub mod hostname;
pub mod lookup;
pub mod rbl;
pub mod reply;
pub mod request;
pub mod resolver;
pub mod restriction;
pub mod server_access;
pub mod state;
pub mod template;
pub mod unlisted;

/// The longest the host keeps a verdict (`host.cache-verdicts`), a day:
/// what a plugin whose verdict depends on its arguments and the request
/// alone asks for. Its verdicts cannot go stale: the arguments and the
/// tables are those of the loaded configuration, and a reload forgets
/// every kept verdict.
pub const CACHE_MAX_SECONDS: u32 = 86_400;

/// How long a plugin whose verdict rests on DNS answers asks the host to
/// keep it: 60 s, Postfix's `postscreen_dnsbl_min_ttl`, the least time its
/// postscreen keeps a DNS list's answer. A change in the DNS (a new
/// listing, a domain that comes into being) shows a minute late at most;
/// the verdict of a call whose lookup failed is never kept.
pub const CACHE_DNS_SECONDS: u32 = 60;

/// `init` of a plugin without arguments whose verdict is a function of
/// `attributes` alone: refuses any argument, offers its instances for
/// reuse and its verdicts for [`CACHE_MAX_SECONDS`].
pub fn init_pure(args: Vec<(String, String)>, attributes: &[Attribute]) -> Result<(), String> {
    host::reuse_instances();
    host::cache_verdicts(attributes, CACHE_MAX_SECONDS);
    Args::new(args).none()
}

/// The generated bindings of the `postern:policy` `plugin` world.
#[allow(unsafe_code, reason = "the canonical-ABI glue wit-bindgen generates")]
#[allow(
    missing_docs,
    missing_debug_implementations,
    reason = "generated from wit/policy.wit, documented there"
)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "postern_plugin_sdk::bindings",
        // Verdicts and replies compare in unit tests.
        additional_derives: [PartialEq],
    });
}

pub use args::Args;
pub use bindings::postern::policy::types::{Attribute, DomainClass, Reply, Stage};
pub use bindings::postern::policy::{dns, host, kv, message, tables};
pub use bindings::{Guest, Request, Verdict, export_plugin};
pub use entry::Entry;
pub use reply::{defer, reject, reply};
