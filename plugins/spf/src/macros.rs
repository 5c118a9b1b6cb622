//! SPF macros (RFC 7208 §7): the `%{d}`, `%{ir}`, `%{l2r-}` of domain
//! specs and explanation strings, parsed once with the record and
//! expanded for each check.

use std::fmt::Write as _;
use std::net::IpAddr;

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

/// The longest expansion kept: a record of thousands of `%{s}` would
/// otherwise grow to megabytes in the plugin's memory. A domain name is
/// cut to 253 bytes anyway (§7.3), and an explanation is one reply line.
pub const MAX_EXPANDED: usize = 2048;

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

    /// The string with its macros expanded for `ctx`; an error if it
    /// would grow past [`MAX_EXPANDED`].
    pub fn expand(&self, ctx: &Context<'_>) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Macro(m) => out.push_str(&m.expand(ctx)?),
            }
            if out.len() > MAX_EXPANDED {
                return Err(format!("expands to more than {MAX_EXPANDED} bytes"));
            }
        }
        Ok(out)
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

    fn expand(&self, ctx: &Context<'_>) -> Result<String, String> {
        let value = ctx.value(self.letter)?;
        let delimiters = if self.delimiters.is_empty() {
            "."
        } else {
            &self.delimiters
        };
        let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
        if self.reverse {
            parts.reverse();
        }
        if let Some(keep) = self.keep
            && keep < parts.len()
        {
            parts.drain(..parts.len() - keep);
        }
        let joined = parts.join(".");
        Ok(if self.escape {
            url_escape(&joined)
        } else {
            joined
        })
    }
}

/// §7.3: upper-case macros are URL-escaped (RFC 3986): everything but the
/// unreserved characters as `%XX`.
fn url_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What the macro letters stand for in one check (§7.2).
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// `s`: the sender, `local@domain` (`postmaster@` added when the
    /// local part is empty).
    pub sender: &'a str,
    /// `l`: the local part of the sender.
    pub local: &'a str,
    /// `o`: the domain of the sender.
    pub sender_domain: &'a str,
    /// `d`: the domain whose record is being evaluated.
    pub domain: &'a str,
    /// `i`, `c`, `v`: the client address.
    pub ip: IpAddr,
    /// `h`: the HELO/EHLO name.
    pub helo: &'a str,
    /// `p`: the validated name of the client, computed on first use by
    /// the caller (it needs DNS); `None` here means "unknown".
    pub validated: Option<&'a str>,
    /// `r`: the receiving host's name.
    pub receiver: &'a str,
    /// `t`: seconds since the epoch.
    pub now: u64,
}

impl Context<'_> {
    fn value(&self, letter: char) -> Result<String, String> {
        Ok(match letter {
            's' => self.sender.to_owned(),
            'l' => self.local.to_owned(),
            'o' => self.sender_domain.to_owned(),
            'd' => self.domain.to_owned(),
            'i' => dotted(self.ip),
            // The caller computes %{p} before expanding a string that
            // needs it (see `MacroString::needs_ptr`).
            'p' => self.validated.unwrap_or("unknown").to_owned(),
            'v' => match self.ip {
                IpAddr::V4(_) => "in-addr".to_owned(),
                IpAddr::V6(_) => "ip6".to_owned(),
            },
            'h' => self.helo.to_owned(),
            'c' => self.ip.to_string(),
            'r' => self.receiver.to_owned(),
            't' => self.now.to_string(),
            other => return Err(format!("unknown macro letter {other:?}")),
        })
    }
}

impl MacroString {
    /// Whether expanding needs the validated client name `%{p}`, a DNS
    /// question the caller asks only then.
    pub fn needs_ptr(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Macro(m) if m.letter == 'p'))
    }
}

/// `%{i}` (§7.3): the dotted quad, or for IPv6 the 32 nibbles separated
/// by dots.
pub fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(63);
            for byte in v6.octets() {
                for nibble in [byte >> 4, byte & 0xf] {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            out
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The context of RFC 7208 §7.4's examples.
    fn rfc(ip: &str) -> Context<'static> {
        Context {
            sender: "strong-bad@email.example.com",
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            validated: None,
            receiver: "mx.example.net",
            now: 1_234_567_890,
        }
    }

    fn expand(text: &str, ctx: &Context<'_>) -> String {
        MacroString::parse(text, true).unwrap().expand(ctx).unwrap()
    }

    #[test]
    fn rfc7208_section_7_4_examples() {
        let c = rfc("192.0.2.3");
        for (text, want) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
        ] {
            assert_eq!(expand(text, &c), want, "{text}");
        }
        let c = rfc("2001:db8::cb01");
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &c),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
        assert_eq!(expand("%{c} at %{t}", &c), "2001:db8::cb01 at 1234567890");
    }

    #[test]
    fn escapes_and_url_encoding() {
        let mut c = rfc("192.0.2.3");
        c.local = "jack&jill=up";
        assert_eq!(expand("%%%_%-", &c), "% %20");
        assert_eq!(expand("l=%{L}", &c), "l=jack%26jill%3Dup");
        c.local = "foo-bar+zip+quux";
        assert_eq!(expand("%{l2r+-}", &c), "bar.foo");
    }

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
