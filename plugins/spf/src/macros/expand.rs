//! Expanding a parsed macro string for one check (RFC 7208 §7.2, §7.3):
//! what each letter stands for ([`Context`]), the transformers applied to
//! its value, URL escaping, and the bound on the result.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Macro, MacroString, Piece};

/// The longest expansion kept: a record of thousands of `%{s}` would
/// otherwise grow to megabytes in the plugin's memory. A domain name is
/// cut to 253 bytes anyway (§7.3), and an explanation is one reply line.
pub const MAX_EXPANDED: usize = 2048;

impl MacroString {
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

    /// Whether expanding needs the validated client name `%{p}`, a DNS
    /// question the caller asks only then.
    pub fn needs_ptr(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Macro(m) if m.letter == 'p'))
    }
}

impl Macro {
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
}
