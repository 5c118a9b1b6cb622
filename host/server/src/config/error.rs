//! Config errors that name the place: `file:line: key: what is wrong`.

use std::fmt;
use std::path::Path;

/// One thing wrong with a config file, located at a line and a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, or `<embedded default>`.
    pub file: String,
    /// 1-based line, 0 when the problem has no line (a missing file).
    pub line: usize,
    /// The key path, such as `mynetworks` or `smtpd.restrictions.recipient`.
    pub key: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, true) => write!(f, "{}: {}", self.file, self.message),
            (0, false) => write!(f, "{}: {}: {}", self.file, self.key, self.message),
            (_, true) => write!(f, "{}:{}: {}", self.file, self.line, self.message),
            (_, false) => write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.key, self.message
            ),
        }
    }
}

/// Every error found in one file: `postern check` reports them all at once
/// rather than one per run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            e.fmt(f)?;
        }
        Ok(())
    }
}

/// Where a value came from, to build errors that name it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file name as the operator gave it.
    pub file: String,
    /// The file's text, to turn byte offsets into lines.
    text: String,
}

impl Source {
    /// A source for `text` read from `path`.
    pub fn new(path: &Path, text: &str) -> Source {
        Source {
            file: path.display().to_string(),
            text: text.to_owned(),
        }
    }

    /// A source with a symbolic name (the embedded default).
    pub fn named(name: &str, text: &str) -> Source {
        Source {
            file: name.to_owned(),
            text: text.to_owned(),
        }
    }

    /// The 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// An error at byte `offset` (`None`: no line) about `key`.
    pub fn error(
        &self,
        offset: Option<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: offset.map_or(0, |o| self.line_of(o)),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_key() {
        let src = Source::named("main.toml", "a = 1\nb = 2\n");
        let e = src.error(Some(7), "b", "bad");
        assert_eq!(e.to_string(), "main.toml:2: b: bad");
        assert_eq!(src.error(None, "", "gone").to_string(), "main.toml: gone");
    }
}
