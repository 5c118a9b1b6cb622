//! The aliases file, /etc/aliases format (Postfix's aliases(5)), read
//! into memory at start-up: no database file to rebuild.
//!
//! ```text
//! # comment
//! postmaster: root
//! team:   alice, bob@example.org,
//!         carol                       a continuation line (leading space)
//! archive: /var/mail/archive          append to a file (mbox)
//! ticket: "|/usr/bin/ticket --new"    pipe to a command
//! staff:  :include:/etc/postern/staff a list kept in another file
//! ```
//!
//! Names are case-insensitive. A value is an address, a bare local name,
//! `/path`, `|command` or `:include:/path`; double quotes keep commas and
//! spaces inside one value. Every problem is reported as `file:line: what`.

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use postern_mail::Address;

/// One value of an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `user@domain`: forwarded there.
    Address(Address),
    /// A bare name: the local user (or alias) of that name.
    Local(String),
    /// `/path`: appended to that file, mbox style.
    File(PathBuf),
    /// `|command`: run with the message on its standard input.
    Command(String),
    /// `:include:/path`: the values listed in that file.
    Include(PathBuf),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(a) => write!(f, "{a}"),
            Target::Local(n) => f.write_str(n),
            Target::File(p) => write!(f, "{}", p.display()),
            Target::Command(c) => write!(f, "|{c}"),
            Target::Include(p) => write!(f, ":include:{}", p.display()),
        }
    }
}

/// Where a value came from: its file, line, and the file's owner, whose
/// uid and gid files and commands run as (never root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The aliases or include file.
    pub file: PathBuf,
    /// The 1-based line of the entry.
    pub line: usize,
    /// The file owner's uid.
    pub uid: u32,
    /// The file's gid.
    pub gid: u32,
}

/// One `name: values` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Its values, in order.
    pub targets: Vec<Target>,
    /// Where it was written.
    pub origin: Origin,
}

/// A problem in an aliases or include file, at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {what}", file.display())]
pub struct AliasError {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line (0 when the file cannot be read at all).
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

/// Every alias of the `alias_maps` files, by lower-case name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasMap {
    entries: HashMap<String, Alias>,
}

impl AliasMap {
    /// No aliases (`alias_maps` empty).
    pub fn new() -> AliasMap {
        AliasMap::default()
    }

    /// Reads every file of `alias_maps`; each item is a path, or
    /// `hash:/path` / `lmdb:/path` (Postfix's spellings, read as the text
    /// source). Returns every problem of every file, or the map. A name
    /// given twice keeps its first entry, as Postfix does, and is reported.
    pub fn load(paths: &[PathBuf]) -> Result<AliasMap, Vec<AliasError>> {
        let mut map = AliasMap::new();
        let mut errors = Vec::new();
        for path in paths {
            let (text, uid, gid) = match read(path) {
                Ok(read) => read,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for (line, name, values) in logical_lines(&text) {
                let origin = Origin {
                    file: path.clone(),
                    line,
                    uid,
                    gid,
                };
                let err = |what: String| AliasError {
                    file: path.clone(),
                    line,
                    what,
                };
                let Some(name) = name else {
                    errors.push(err("expected \"name: value, ...\"".to_owned()));
                    continue;
                };
                match parse_values(&values) {
                    Ok(targets) if targets.is_empty() => {
                        errors.push(err(format!("alias {name:?} has no value")));
                    }
                    Ok(targets) => {
                        if let Some(first) = map.entries.get(&name) {
                            errors.push(err(format!(
                                "alias {name:?} is defined twice (first at line {}); the first wins",
                                first.origin.line
                            )));
                            continue;
                        }
                        map.entries.insert(name, Alias { targets, origin });
                    }
                    Err(what) => errors.push(err(what)),
                }
            }
        }
        if errors.is_empty() {
            Ok(map)
        } else {
            Err(errors)
        }
    }

    /// The alias `name` (any case).
    pub fn get(&self, name: &str) -> Option<&Alias> {
        self.entries.get(&name.to_lowercase())
    }

    /// How many aliases there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The values of an `:include:` file: one or more per line, comments and
/// continuation lines as in the aliases file, no names.
pub fn read_include(path: &Path) -> Result<(Vec<Target>, Origin), AliasError> {
    let (text, uid, gid) = read(path)?;
    let mut targets = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        targets.extend(parse_values(line).map_err(|what| AliasError {
            file: path.to_owned(),
            line: n + 1,
            what,
        })?);
    }
    Ok((
        targets,
        Origin {
            file: path.to_owned(),
            line: 0,
            uid,
            gid,
        },
    ))
}

/// `hash:/etc/aliases` → `/etc/aliases`.
pub fn map_path(item: &str) -> PathBuf {
    let path = ["hash:", "lmdb:", "btree:", "texthash:"]
        .iter()
        .find_map(|p| item.strip_prefix(p))
        .unwrap_or(item);
    PathBuf::from(path)
}

fn read(path: &Path) -> Result<(String, u32, u32), AliasError> {
    let fail = |what: String| AliasError {
        file: path.to_owned(),
        line: 0,
        what,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    // An aliases file only root may read is read by the root helper once
    // the daemon runs as mail_owner (a reload; host/privsep/src/files.rs);
    // its owner (for `|command` and `/file`) is still stat'ed here.
    let bytes =
        postern_privsep::read_file_or_ask(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".to_owned()))?;
    Ok((text, meta.uid(), meta.gid()))
}

/// The entries of an aliases file: (first line, name, joined values).
/// Comment and blank lines are skipped; a line starting with white space
/// continues the entry before it. The name is `None` when the first line
/// has no colon.
fn logical_lines(text: &str) -> Vec<(usize, Option<String>, String)> {
    let mut out: Vec<(usize, Option<String>, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t'])
            && let Some(last) = out.last_mut()
        {
            last.2.push(' ');
            last.2.push_str(trimmed);
            continue;
        }
        match trimmed.split_once(':') {
            Some((name, values)) if valid_name(name.trim().trim_matches('"')) => out.push((
                n + 1,
                Some(name.trim().trim_matches('"').to_lowercase()),
                values.to_owned(),
            )),
            _ => out.push((n + 1, None, String::new())),
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// Splits values at commas outside double quotes and reads each.
pub(crate) fn parse_values(values: &str) -> Result<Vec<Target>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in values.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err("unbalanced double quote".to_owned());
    }
    items.push(current);
    items
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .map(target)
        .collect()
}

fn target(item: &str) -> Result<Target, String> {
    let item = match item.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => item,
    };
    if item.is_empty() {
        // `""`: an empty local name would be looked up as a user.
        return Err("empty value \"\"".to_owned());
    }
    if let Some(cmd) = item.strip_prefix('|') {
        if cmd.trim().is_empty() {
            return Err("empty command after \"|\"".to_owned());
        }
        return Ok(Target::Command(cmd.trim().to_owned()));
    }
    if let Some(path) = item.strip_prefix(":include:") {
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(format!(":include:{path}: the path must be absolute"));
        }
        return Ok(Target::Include(PathBuf::from(path)));
    }
    if item.starts_with('/') {
        if item.ends_with('/') {
            return Err(format!("{item}: delivery to a directory is not supported"));
        }
        return Ok(Target::File(PathBuf::from(item)));
    }
    if item.contains('@') {
        return Address::parse(item)
            .map(Target::Address)
            .map_err(|e| format!("{item:?} is not a valid address: {e}"));
    }
    if item
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\;:\"".contains(c))
    {
        return Err(format!("{item:?} is not a valid local name"));
    }
    Ok(Target::Local(item.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn load(text: &str) -> (tempfile::TempDir, Result<AliasMap, Vec<AliasError>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aliases");
        std::fs::write(&path, text).unwrap();
        let map = AliasMap::load(&[path]);
        (dir, map)
    }

    #[test]
    fn every_form() {
        let (_d, map) = load(
            "# staff\n\
             Team: alice, bob@example.org,\n\
             \tcarol\n\
             \n\
             archive: /var/mail/archive\n\
             ticket: \"|/usr/bin/ticket --new, now\"\n\
             staff: :include:/etc/staff\n",
        );
        let map = map.unwrap();
        assert_eq!(map.len(), 4);
        let team = map.get("TEAM").unwrap();
        assert_eq!(
            team.targets,
            [
                Target::Local("alice".to_owned()),
                Target::Address(Address::parse("bob@example.org").unwrap()),
                Target::Local("carol".to_owned()),
            ]
        );
        assert_eq!(team.origin.line, 2);
        assert_eq!(
            map.get("archive").unwrap().targets,
            [Target::File("/var/mail/archive".into())]
        );
        assert_eq!(
            map.get("ticket").unwrap().targets,
            [Target::Command("/usr/bin/ticket --new, now".to_owned())]
        );
        assert_eq!(
            map.get("staff").unwrap().targets,
            [Target::Include("/etc/staff".into())]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let (dir, map) = load(
            "ok: alice\n\
             no colon here\n\
             bad: a@@b\n\
             empty:\n\
             ok: bob\n\
             q: \"|x\n",
        );
        let errors: Vec<String> = map
            .unwrap_err()
            .iter()
            .map(|e| {
                e.to_string()
                    .replace(&dir.path().display().to_string(), "D")
            })
            .collect();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("D/aliases:2: expected"), "{errors:?}");
        assert!(errors[1].starts_with("D/aliases:3: \"a@@b\""), "{errors:?}");
        assert!(errors[2].starts_with("D/aliases:4: alias \"empty\" has no value"));
        assert!(errors[3].starts_with("D/aliases:5: alias \"ok\" is defined twice"));
        assert!(errors[4].starts_with("D/aliases:6: unbalanced"));
    }

    #[test]
    fn map_names() {
        assert_eq!(map_path("hash:/etc/aliases"), Path::new("/etc/aliases"));
        assert_eq!(map_path("/etc/aliases"), Path::new("/etc/aliases"));
        let missing = AliasMap::load(&["/nonexistent/aliases".into()]).unwrap_err();
        assert!(
            missing[0]
                .to_string()
                .starts_with("/nonexistent/aliases:0: cannot read")
        );
    }

    /// Found by the fuzzer (fuzz/corpus/aliases/): `""` is no local name.
    #[test]
    fn empty_quoted_value_is_an_error() {
        assert!(parse_values("\"\"").is_err());
        assert!(parse_values("a, \" \"").is_err());
    }
}
