//! Postern's lookup tables: what Postfix calls maps (DATABASE_README), read
//! from the operator's source files and held in memory.
//!
//! An operator declares tables in the server config (`[tables.NAME]` with
//! `type` and `path`); policy plugins look keys up through the `tables`
//! host import, `postern table query NAME KEY` does it from the shell
//! (Postfix's `postmap -q`), and later delivery will read `transport_maps`
//! and aliases through the same type. Three kinds of file, in Postfix's
//! syntax, and the system's accounts:
//! - `hash`: the access(5)/text source format, `key value` per line, with
//!   comments and continuation lines; keys are case-insensitive. Postfix
//!   compiles such a file to a `.db` with `postmap`; Postern reads the
//!   source itself, so there is no `.db` to forget to rebuild.
//! - `cidr`: cidr_table(5), `network/prefix result`, first match wins.
//! - `regexp`: regexp_table(5), `/pattern/flags result` with `if`/`endif`
//!   blocks, first match wins, `$1` substitution (the `regex` crate: linear
//!   time, no back-references).
//!
//! Every parse error names `file:line`. A table is immutable once loaded;
//! reload builds a new [`Tables`] and swaps it whole. Not here: Postfix's
//! `pcre`, `lmdb`, `ldap`, `mysql` and socket maps, and access(5)'s
//! partial-key search order (domain parents, `user@`), which belongs to the
//! plugin that knows what kind of key it holds.
//!
//! # Layout
//! - [`source`]: reading a source file into logical lines (comments,
//!   continuations) with their line numbers.
//! - [`hash`]: [`HashTable`], `key value` lines.
//! - [`cidr`]: [`CidrTable`], networks.
//! - [`regexp`]: [`RegexpTable`], patterns.
//! - [`set`]: [`Table`], [`TableSpec`] and [`Tables`], the named set.
//! - [`unix`]: [`UnixTable`], `unix:passwd.byname`, the system's
//!   accounts ([`Account`]), for `local_recipient_maps` and delivery.
//! - [`error`]: [`Error`], naming `file:line`, and [`LoadError`].
//! - [`access`]: what an access(5) table may answer, checked at load for
//!   the tables `check_*_access` entries name.

pub mod access;
pub mod cidr;
pub mod error;
pub mod hash;
pub mod regexp;
pub mod set;
pub mod source;
pub mod unix;

pub use cidr::CidrTable;
pub use error::{Error, LoadError};
pub use hash::HashTable;
pub use regexp::RegexpTable;
pub use set::{Kind, Table, TableSpec, Tables};
pub use unix::{Account, UnixTable};
