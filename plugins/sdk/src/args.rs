//! The arguments of a restriction-list entry, as `init` receives them: a
//! string entry's words after the plugin name as keys "1", "2", ...; a
//! table entry's keys other than those the host reads, sorted by key.

/// `init`'s arguments, consumed as the plugin reads them; [`Args::done`]
/// then refuses whatever it did not read, so that a misspelt key is an
/// error at load time rather than a setting silently ignored.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    /// Wraps what `init` was given.
    pub fn new(pairs: Vec<(String, String)>) -> Args {
        Args { pairs }
    }

    /// Takes the value of `key`, if given.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(at).1)
    }

    /// Takes the value of `key`, or says it is missing.
    pub fn required(&mut self, key: &str) -> Result<String, String> {
        self.take(key)
            .ok_or_else(|| format!("{key}: missing argument"))
    }

    /// Takes the positional arguments ("1", "2", ...) in order.
    pub fn positional(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for n in 1.. {
            match self.take(&n.to_string()) {
                Some(value) => out.push(value),
                None => break,
            }
        }
        out
    }

    /// Takes `key` and parses it with `parse`; an error names the key and
    /// the value.
    pub fn parse<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => parse(&value)
                .map(Some)
                .map_err(|e| format!("{key}: {value:?}: {e}")),
        }
    }

    /// Takes `code`, a reply code that Postfix lets the operator set
    /// (`unknown_client_reject_code`, `maps_rbl_reject_code`, ...): 4xx
    /// or 5xx, `default` if not given.
    pub fn code(&mut self, default: u16) -> Result<u16, String> {
        let code = self.parse("code", |c| match c.parse::<u16>() {
            Ok(n @ 400..=599) => Ok(n),
            _ => Err("expected a 4xx or 5xx code".to_owned()),
        })?;
        Ok(code.unwrap_or(default))
    }

    /// Refuses any argument not taken.
    pub fn done(self) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((key, value)) if key.parse::<u32>().is_ok() => {
                Err(format!("unexpected argument {value:?}"))
            }
            Some((key, _)) => Err(format!("{key}: unknown argument")),
        }
    }

    /// For a plugin that takes no arguments.
    pub fn none(self) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!("unexpected argument {key:?}: takes none")),
        }
    }
}

/// What `init` receives, from `(key, value)` literals: where plugins'
/// unit tests of their arguments start.
pub fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[(&str, &str)]) -> Args {
        Args::new(pairs(list))
    }

    #[test]
    fn positional_then_named_then_leftovers_refused() {
        let mut a = args(&[("1", "hash:/x"), ("2", "more"), ("delay", "5m")]);
        assert_eq!(a.positional(), ["hash:/x", "more"]);
        assert_eq!(a.take("delay").as_deref(), Some("5m"));
        assert_eq!(a.done(), Ok(()));
        let mut a = args(&[("dela", "5m")]);
        assert_eq!(a.take("delay"), None);
        assert_eq!(a.done(), Err("dela: unknown argument".to_owned()));
        assert_eq!(
            args(&[("1", "x")]).done(),
            Err("unexpected argument \"x\"".to_owned())
        );
    }

    #[test]
    fn codes_are_4xx_or_5xx() {
        assert_eq!(args(&[]).code(450), Ok(450));
        assert_eq!(args(&[("code", "550")]).code(450), Ok(550));
        assert_eq!(
            args(&[("code", "250")]).code(450),
            Err("code: \"250\": expected a 4xx or 5xx code".to_owned())
        );
        assert!(args(&[("code", "x")]).code(450).is_err());
    }

    #[test]
    fn parse_errors_name_the_key_and_value() {
        let mut a = args(&[("n", "x")]);
        let r = a.parse("n", |v| v.parse::<u32>().map_err(|e| e.to_string()));
        assert_eq!(r, Err("n: \"x\": invalid digit found in string".to_owned()));
        assert_eq!(
            args(&[]).required("n"),
            Err("n: missing argument".to_owned())
        );
    }
}
