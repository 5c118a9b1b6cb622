//! The source format shared by Postfix's text tables: one entry per
//! logical line; `#` at the start of a line (after white space) is a
//! comment, even indented; blank lines are ignored; a line that starts with white space
//! continues the previous entry (postmap(1), "INPUT FILE FORMAT").

use std::path::{Path, PathBuf};

use crate::error::Error;

/// One logical line: the entry's text with continuations joined by a
/// space, and the number of the line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The 1-based number of the line where the entry starts.
    pub number: usize,
    /// The text, trimmed.
    pub text: String,
}

/// Reads `path` as a table source: its logical lines, in order.
pub fn read(path: &Path) -> Result<Vec<Line>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    lines(path, &text)
}

/// Splits `text` (from `path`, for messages) into logical lines.
pub fn lines(path: &Path, text: &str) -> Result<Vec<Line>, Error> {
    let mut out: Vec<Line> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            let Some(last) = out.last_mut() else {
                return Err(syntax(
                    path,
                    number,
                    "a continuation line (starting with white space) with no entry before it",
                ));
            };
            last.text.push(' ');
            last.text.push_str(trimmed);
            continue;
        }
        out.push(Line {
            number,
            text: trimmed.to_owned(),
        });
    }
    Ok(out)
}

/// A syntax error at `path:line`.
pub(crate) fn syntax(path: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::Syntax {
        path: PathBuf::from(path),
        line,
        message: message.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_continuations() {
        let text = "# header\n\na  one\n   two\n\t three\n  # indented comment\nb two\n";
        let l = lines(Path::new("t"), text).unwrap();
        assert_eq!(
            l,
            [
                Line {
                    number: 3,
                    text: "a  one two three".to_owned()
                },
                Line {
                    number: 7,
                    text: "b two".to_owned()
                }
            ]
        );
    }

    #[test]
    fn a_leading_continuation_is_an_error_naming_the_line() {
        let err = lines(Path::new("/etc/x"), "# c\n  orphan\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/x:2: a continuation line (starting with white space) with no entry before it"
        );
    }
}
