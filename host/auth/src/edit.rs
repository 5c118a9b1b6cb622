//! Changing the users file as text (`postern user add|passwd|del`):
//! comments, blank lines and every other user's line stay as they were,
//! and the result is parsed again before anyone writes it, so an edit can
//! never leave a file that does not load.

use crate::passwd_file::UsersFileError;
use crate::userdb::UserDb;

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// `add` of a user the file already has.
    #[error("user {0:?} already exists")]
    Exists(String),
    /// `passwd` or `del` of a user the file does not have.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// The file, or the file after the edit, does not parse (a bad user
    /// name, say). The message names the line.
    #[error(transparent)]
    Invalid(#[from] UsersFileError),
}

/// The index of `name`'s line (case-insensitive, as lookups), if any.
fn find(lines: &[&str], name: &str) -> Option<usize> {
    lines.iter().position(|line| {
        let line = line.trim_start();
        !line.starts_with('#')
            && line
                .split(':')
                .next()
                .is_some_and(|user| user.eq_ignore_ascii_case(name))
    })
}

fn split(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        Vec::new()
    } else {
        body.split('\n').collect()
    }
}

fn join(lines: &[String], origin: &str) -> Result<String, EditError> {
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    UserDb::parse(&out, origin)?;
    Ok(out)
}

/// `text` with a line for `name` and password `field` (`{SCHEME}hash`)
/// appended.
pub fn add(text: &str, name: &str, field: &str, origin: &str) -> Result<String, EditError> {
    UserDb::parse(text, origin)?;
    let lines = split(text);
    if find(&lines, name).is_some() {
        return Err(EditError::Exists(name.to_owned()));
    }
    let mut lines: Vec<String> = lines.into_iter().map(str::to_owned).collect();
    lines.push(format!("{name}:{field}::::"));
    join(&lines, origin)
}

/// `text` with `name`'s password field replaced by `field`, its other
/// fields kept.
pub fn set_password(
    text: &str,
    name: &str,
    field: &str,
    origin: &str,
) -> Result<String, EditError> {
    let lines = split(text);
    let i = find(&lines, name).ok_or_else(|| EditError::NoSuchUser(name.to_owned()))?;
    let mut lines: Vec<String> = lines.into_iter().map(str::to_owned).collect();
    let line = &lines[i];
    let mut fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 2 {
        fields.push(field);
    } else {
        fields[1] = field;
    }
    lines[i] = fields.join(":");
    join(&lines, origin)
}

/// `text` without `name`'s line.
pub fn remove(text: &str, name: &str, origin: &str) -> Result<String, EditError> {
    let lines = split(text);
    let i = find(&lines, name).ok_or_else(|| EditError::NoSuchUser(name.to_owned()))?;
    let lines: Vec<String> = lines
        .into_iter()
        .enumerate()
        .filter(|&(n, _)| n != i)
        .map(|(_, l)| l.to_owned())
        .collect();
    join(&lines, origin)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE: &str =
        "# users\nalice@example.org:{PLAIN}a:1000:1000::/home/alice\n\nbob:{PLAIN}b\n";

    #[test]
    fn add_passwd_del_keep_the_rest() {
        let t = add(FILE, "carol@example.org", "{PLAIN}c", "users").unwrap();
        assert!(t.starts_with(FILE));
        assert!(t.ends_with("carol@example.org:{PLAIN}c::::\n"));
        assert!(matches!(
            add(&t, "Carol@Example.org", "{PLAIN}x", "users"),
            Err(EditError::Exists(_))
        ));
        let t = set_password(&t, "ALICE@example.org", "{PLAIN}new", "users").unwrap();
        assert!(t.contains("alice@example.org:{PLAIN}new:1000:1000::/home/alice\n"));
        let t = remove(&t, "bob", "users").unwrap();
        assert_eq!(
            t,
            "# users\nalice@example.org:{PLAIN}new:1000:1000::/home/alice\n\ncarol@example.org:{PLAIN}c::::\n"
        );
        assert!(matches!(
            remove(&t, "bob", "users"),
            Err(EditError::NoSuchUser(_))
        ));
        assert_eq!(
            add("", "x", "{PLAIN}y", "users").unwrap(),
            "x:{PLAIN}y::::\n"
        );
    }

    #[test]
    fn a_bad_name_is_refused_before_writing() {
        let e = add(FILE, "bad name", "{PLAIN}x", "users").unwrap_err();
        assert!(e.to_string().starts_with("users:5: bad user name"), "{e}");
    }
}
