//! SPF macros (RFC 7208 §7): the `%{d}`, `%{ir}`, `%{l2r-}` of domain
//! specs and explanation strings, parsed once with the record and
//! expanded for each check. The syntax (§7.1) is here; `expand` holds
//! what the letters stand for in one check and the expansion (§7.2,
//! §7.3).

mod expand;

pub use expand::{Context, MAX_EXPANDED, dotted};

/// One piece of a macro string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text as written, `%%`, `%_` and `%-` already turned into `%`, ` `
    /// and `%20` (§7.1).
    Literal(String),
    /// `%{` letter transformers delimiters `}`.
    Macro(Macro),
}

/// One `%{...}` (§7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Macro {
    /// The macro letter, lower-cased.
    letter: char,
    /// Written in upper case: the value is URL-escaped (§7.3).
    escape: bool,
    /// The DIGIT transformer: how many right-hand parts to keep.
    keep: Option<usize>,
    /// The `r` transformer: reverse the parts.
    reverse: bool,
    /// The characters that split the value into parts; `.` if none.
    delimiters: String,
}

/// A `macro-string` (or an `explain-string`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroString {
    pieces: Vec<Piece>,
    /// The string ends with a `macro-expand` (`%{..}`, `%%`, `%_`, `%-`):
    /// a domain-spec then needs no top label of its own (§7.1
    /// `domain-end`).
    ends_with_expand: bool,
}

/// The letters of §7.2 and whether they are allowed only in explanation
/// strings (`c`, `r`, `t`).
fn letter_allowed(letter: char, explanation: bool) -> bool {
    matches!(letter, 's' | 'l' | 'o' | 'd' | 'i' | 'p' | 'v' | 'h')
        || (explanation && matches!(letter, 'c' | 'r' | 't'))
}

/// The `delimiter` characters of §7.1.
const DELIMITERS: &str = ".-+,/_=";

impl MacroString {
    /// Parses a `macro-string`: visible ASCII (`%x21-7E`), `%` only as a
    /// macro. `explanation`: an `explain-string` (a TXT record that `exp=`
    /// names), where spaces and the letters `c`, `r`, `t` are allowed too.
    pub fn parse(text: &str, explanation: bool) -> Result<MacroString, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut ends_with_expand = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            ends_with_expand = false;
            match c {
                '%' => {
                    ends_with_expand = true;
                    match chars.next() {
                        Some('%') => literal.push('%'),
                        Some('_') => literal.push(' '),
                        Some('-') => literal.push_str("%20"),
                        Some('{') => {
                            let mut body = String::new();
                            loop {
                                match chars.next() {
                                    Some('}') => break,
                                    Some(c) => body.push(c),
                                    None => return Err(format!("unterminated macro in {text:?}")),
                                }
                            }
                            if !literal.is_empty() {
                                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                            }
                            pieces.push(Piece::Macro(Macro::parse(&body, explanation)?));
                        }
                        other => {
                            let after = other.map(String::from).unwrap_or_default();
                            return Err(format!(
                                "'%' followed by {after:?} in {text:?} (only %{{, %%, %_, %-)"
                            ));
                        }
                    }
                }
                ' ' if explanation => literal.push(' '),
                '!'..='~' => literal.push(c),
                _ => return Err(format!("character {c:?} not allowed in {text:?}")),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(MacroString {
            pieces,
            ends_with_expand,
        })
    }

    /// Parses a `domain-spec` (§7.1): a macro string that ends with a
    /// macro or with `.` and a top label (letters, digits and inner
    /// dashes, not all digits), a trailing dot allowed.
    pub fn domain_spec(text: &str) -> Result<MacroString, String> {
        if text.is_empty() {
            return Err("empty domain-spec".to_owned());
        }
        let spec = MacroString::parse(text, false)?;
        if spec.ends_with_expand {
            return Ok(spec);
        }
        let body = text.strip_suffix('.').unwrap_or(text);
        match body.rsplit_once('.') {
            Some((_, top)) if top_label(top) => Ok(spec),
            _ => Err(format!(
                "{text:?} is not a domain-spec (it must end in a macro or a valid top label)"
            )),
        }
    }
}

/// `toplabel` of §7.1: `( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-"
/// *( alphanum / "-" ) alphanum )`.
fn top_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && !bytes.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

impl Macro {
    /// `macro-letter transformers *delimiter`, the inside of `%{...}`.
    fn parse(body: &str, explanation: bool) -> Result<Macro, String> {
        let mut chars = body.chars();
        let Some(first) = chars.next() else {
            return Err("empty macro %{}".to_owned());
        };
        let letter = first.to_ascii_lowercase();
        if !letter_allowed(letter, explanation) {
            return Err(format!("unknown macro letter in %{{{body}}}"));
        }
        let rest = chars.as_str();
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let keep = match &rest[..digits_end] {
            "" => None,
            digits => match digits.parse::<usize>() {
                // §7.1: "If a DIGIT is specified, the value MUST be nonzero."
                Ok(n) if n > 0 => Some(n),
                _ => return Err(format!("bad digit transformer in %{{{body}}}")),
            },
        };
        let mut rest = &rest[digits_end..];
        let reverse = match rest.strip_prefix(['r', 'R']) {
            Some(after) => {
                rest = after;
                true
            }
            None => false,
        };
        if let Some(c) = rest.chars().find(|c| !DELIMITERS.contains(*c)) {
            return Err(format!("bad delimiter {c:?} in %{{{body}}}"));
        }
        Ok(Macro {
            letter,
            escape: first.is_ascii_uppercase(),
            keep,
            reverse,
            delimiters: rest.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors() {
        for bad in [
            "%", "foo%", "%(ir)", "%{", "%{a}", "%{d0}", "%{dx}", "a b", "é",
        ] {
            assert!(MacroString::parse(bad, false).is_err(), "{bad}");
        }
        // c, r, t only in explanations; spaces too.
        assert!(MacroString::parse("%{r}.example.com", false).is_err());
        assert!(MacroString::parse("%{r} and %{t}", true).is_ok());
    }

    #[test]
    fn domain_specs_end_in_a_macro_or_a_top_label() {
        for good in [
            "example.com",
            "example.com.",
            "%{d}",
            "foo:bar/baz.example.com",
            "foo.example.xn--zckzah",
            "e-1.1-2",
            "%{ir}.%{v}._spf.%{d2}",
            "macro%%percent%_%_space%-url-space.example.com",
        ] {
            assert!(MacroString::domain_spec(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "museum",
            "museum.",
            "abc.123",
            "example.-com",
            "example.com:8080",
            "111.222.33.44",
            "mail.example.com/24",
            "-all",
        ] {
            assert!(MacroString::domain_spec(bad).is_err(), "{bad}");
        }
    }
}
