//! One entry of a restriction list, as the operator wrote it.
//!
//! Two spellings, as in DESIGN §3: a string in Postfix's words
//! (`"permit_mynetworks"`, `"check_sender_access hash:/etc/postern/access"`,
//! `"warn_if_reject reject_unauth_destination"`) and a table that names any
//! component (`{ plugin = "greylist", delay = "5m", on_error = "dunno" }`).
//! Parsing checks the shape only; whether the plugin exists is known when
//! a snapshot is loaded ([`crate::Runtime::load`]).
//!
//! The Postfix spelling of a whole list (splitting a
//! `smtpd_*_restrictions` value into entries, the renamed restrictions)
//! is in the `list` submodule, its items re-exported here; the tests are
//! in `tests`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::EntryError;
use crate::limits::{Limits, parse_duration, parse_size};

mod list;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use list::WARN_IF_REJECT;
pub use list::{OLD_NAMES, TAKES_ARGUMENT, current_name, split_list};

/// The verdicts that need no plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Builtin {
    /// `permit`: accept; the rest of the list is skipped.
    Permit,
    /// `reject`: 554 5.7.1 Access denied.
    Reject,
    /// `defer`: 450 4.7.1 Try again later.
    Defer,
    /// `dunno`: no opinion; go on. Useful to switch an entry off.
    Dunno,
}

impl Builtin {
    /// The built-in called `name`, if any.
    pub fn from_name(name: &str) -> Option<Builtin> {
        match name {
            "permit" => Some(Builtin::Permit),
            "reject" => Some(Builtin::Reject),
            "defer" => Some(Builtin::Defer),
            "dunno" => Some(Builtin::Dunno),
            _ => None,
        }
    }
}

/// What a plugin failure (trap, timeout, limit, bad answer) turns into:
/// the `on_error` key of a table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OnError {
    /// 451 4.3.0: the client retries later; no mail is lost and none gets
    /// through a check that did not run. The default.
    #[default]
    Defer,
    /// Skip the entry, as if it had no opinion: for advisory checks whose
    /// failure should not hold mail up.
    Dunno,
    /// 554 5.3.0: for checks whose failure must not let anything through.
    Reject,
}

impl OnError {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Defer => "defer",
            OnError::Dunno => "dunno",
            OnError::Reject => "reject",
        }
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an entry's verdict counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// The verdict counts. The default.
    #[default]
    Enforce,
    /// The entry runs and its verdict is logged (`reject_warning: ...`)
    /// but never acted on: how new policy is rolled out (Postfix's
    /// `warn_if_reject`, or `mode = "shadow"`).
    Shadow,
}

/// One entry of a restriction list: a built-in verdict or a plugin with
/// its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    name: String,
    args: Vec<(String, String)>,
    on_error: OnError,
    mode: Mode,
    /// `deadline = "..."` of a table entry: this entry's own.
    deadline: Option<Duration>,
    /// `memory_limit = "..."` of a table entry: this entry's own.
    memory_limit: Option<usize>,
    /// `data_dir = "/path"` of a table entry: a host directory the plugin
    /// may read, seen as [`DATA_DIR_GUEST`].
    data_dir: Option<PathBuf>,
}

/// Where a plugin sees its entry's `data_dir`: a fixed guest path, so that
/// a plugin is written once whatever the operator's layout.
pub const DATA_DIR_GUEST: &str = "/data";

impl Entry {
    /// Parses the string form: the first word names the plugin or
    /// built-in, the following words are its positional arguments `"1"`,
    /// `"2"`, ...; a leading `warn_if_reject` puts it in shadow mode.
    ///
    /// ```
    /// use postern_policy::{Entry, Mode};
    /// let e = Entry::from_line("warn_if_reject check_sender_access hash:/etc/x")?;
    /// assert_eq!(e.name(), "check_sender_access");
    /// assert_eq!(e.args(), [("1".to_owned(), "hash:/etc/x".to_owned())]);
    /// assert_eq!(e.mode(), Mode::Shadow);
    /// # Ok::<(), postern_policy::EntryError>(())
    /// ```
    pub fn from_line(line: &str) -> Result<Entry, EntryError> {
        let mut words = line.split_whitespace();
        let mut name = words.next().ok_or(EntryError::Empty)?;
        let mut mode = Mode::Enforce;
        if name == WARN_IF_REJECT {
            mode = Mode::Shadow;
            name = words.next().ok_or(EntryError::DanglingWarnIfReject)?;
        }
        let args = words
            .enumerate()
            .map(|(i, w)| ((i + 1).to_string(), w.to_owned()))
            .collect();
        Entry::build(name, args, OnError::default(), mode)
    }

    /// Parses the table form: `plugin` names the plugin or built-in,
    /// `on_error` (`defer`, `dunno`, `reject`), `mode` (`enforce`,
    /// `shadow`), `deadline` (`250ms`), `memory_limit` (`32M`) and
    /// `data_dir` (a directory the plugin may read, at [`DATA_DIR_GUEST`])
    /// are reserved, every other key is an argument.
    pub fn from_table(mut table: BTreeMap<String, String>) -> Result<Entry, EntryError> {
        let name = table
            .remove("plugin")
            .ok_or_else(|| EntryError::MissingPlugin {
                keys: format!(
                    "{{ {} }}",
                    table.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?;
        let name = name.trim();
        let on_error = match table.remove("on_error").as_deref() {
            None | Some("defer") => OnError::Defer,
            Some("dunno") => OnError::Dunno,
            Some("reject") => OnError::Reject,
            Some(other) => {
                return Err(EntryError::BadOnError {
                    entry: name.to_owned(),
                    value: other.to_owned(),
                });
            }
        };
        let mode = match table.remove("mode").as_deref() {
            None | Some("enforce") => Mode::Enforce,
            Some("shadow") => Mode::Shadow,
            Some(other) => {
                return Err(EntryError::BadMode {
                    entry: name.to_owned(),
                    value: other.to_owned(),
                });
            }
        };
        let bad = |key: &str, value: &str, message: String| EntryError::BadLimit {
            entry: name.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            message,
        };
        let deadline = match table.remove("deadline") {
            None => None,
            Some(v) => Some(parse_duration(&v).map_err(|m| bad("deadline", &v, m))?),
        };
        let memory_limit = match table.remove("memory_limit") {
            None => None,
            Some(v) => Some(parse_size(&v).map_err(|m| bad("memory_limit", &v, m))?),
        };
        let data_dir = match table.remove("data_dir") {
            None => None,
            Some(v) if v.trim().is_empty() => {
                return Err(EntryError::BadDataDir {
                    entry: name.to_owned(),
                    value: v,
                });
            }
            Some(v) => Some(PathBuf::from(v)),
        };
        let mut entry = Entry::build(name, table.into_iter().collect(), on_error, mode)?;
        if data_dir.is_some() && entry.builtin().is_some() {
            return Err(EntryError::BuiltinArguments {
                entry: name.to_owned(),
                args: "data_dir".to_owned(),
            });
        }
        entry.deadline = deadline;
        entry.memory_limit = memory_limit;
        entry.data_dir = data_dir;
        Ok(entry)
    }

    fn build(
        name: &str,
        args: Vec<(String, String)>,
        on_error: OnError,
        mode: Mode,
    ) -> Result<Entry, EntryError> {
        let name = current_name(name);
        if name.is_empty() {
            return Err(EntryError::Empty);
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(EntryError::BadName {
                entry: name.to_owned(),
            });
        }
        if Builtin::from_name(name).is_some() && !args.is_empty() {
            return Err(EntryError::BuiltinArguments {
                entry: name.to_owned(),
                args: args
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(Entry {
            name: name.to_owned(),
            args,
            on_error,
            mode,
            deadline: None,
            memory_limit: None,
            data_dir: None,
        })
    }

    /// The plugin or built-in name: what logs and
    /// [`Decision::decided_by`](postern_mail::Decision::decided_by) show.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments handed to the plugin's `init`, in order.
    pub fn args(&self) -> &[(String, String)] {
        &self.args
    }

    /// What a failure of the plugin turns into.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// Whether the verdict counts or is only logged.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The limits a call of this entry runs under: `base` (from
    /// `[plugins]`) with the entry's own `deadline` and `memory_limit`.
    pub fn limits(&self, base: Limits) -> Limits {
        Limits {
            deadline: self.deadline.unwrap_or(base.deadline),
            memory_bytes: self.memory_limit.unwrap_or(base.memory_bytes),
            ..base
        }
    }

    /// The host directory granted read-only to the plugin (`data_dir`),
    /// seen by the plugin as [`DATA_DIR_GUEST`]; `None`: no files at all.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// This entry with argument `key` = `value` added, unless it has one
    /// already: how the server hands main.cf settings to the plugins that
    /// read them, an entry's own argument winning.
    pub fn with_default_arg(mut self, key: &str, value: &str) -> Entry {
        if self.args.iter().all(|(k, _)| k != key) {
            self.args.push((key.to_owned(), value.to_owned()));
        }
        self
    }

    /// The built-in this entry is, if it is one.
    pub fn builtin(&self) -> Option<Builtin> {
        Builtin::from_name(&self.name)
    }
}

impl FromStr for Entry {
    type Err = EntryError;

    fn from_str(s: &str) -> Result<Entry, EntryError> {
        Entry::from_line(s)
    }
}

/// The string form, when the entry has one (positional arguments, default
/// `on_error`); otherwise the table form.
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let positional = self
            .args
            .iter()
            .enumerate()
            .all(|(i, (k, v))| *k == (i + 1).to_string() && !v.contains(char::is_whitespace));
        let own_limits =
            self.deadline.is_some() || self.memory_limit.is_some() || self.data_dir.is_some();
        if positional && self.on_error == OnError::Defer && !own_limits {
            if self.mode == Mode::Shadow {
                write!(f, "{WARN_IF_REJECT} ")?;
            }
            f.write_str(&self.name)?;
            for (_, v) in &self.args {
                write!(f, " {v}")?;
            }
            return Ok(());
        }
        write!(f, "{{ plugin = {:?}", self.name)?;
        for (k, v) in &self.args {
            // A TOML bare key, or a quoted one.
            if !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                write!(f, ", {k} = {v:?}")?;
            } else {
                write!(f, ", {k:?} = {v:?}")?;
            }
        }
        if self.on_error != OnError::Defer {
            write!(f, ", on_error = {:?}", self.on_error.as_str())?;
        }
        if self.mode == Mode::Shadow {
            write!(f, ", mode = \"shadow\"")?;
        }
        if let Some(d) = self.deadline {
            write!(f, ", deadline = \"{}ms\"", d.as_millis())?;
        }
        if let Some(m) = self.memory_limit {
            write!(f, ", memory_limit = \"{m}\"")?;
        }
        if let Some(d) = &self.data_dir {
            write!(f, ", data_dir = {:?}", d.display().to_string())?;
        }
        f.write_str(" }")
    }
}
