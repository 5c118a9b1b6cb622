//! SPF records (RFC 7208 §4.5, §4.6, §5, §6): choosing the one record of
//! a domain among its TXT records, and parsing it whole into directives
//! and modifiers, so that a syntax error anywhere is a permerror before
//! any mechanism is evaluated (§4.6).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::macros::MacroString;

/// A directive's qualifier (§4.6.2): what a match means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// `+` (the default).
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

/// A mechanism (§5), with its arguments parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// `all` (§5.1).
    All,
    /// `include:<domain-spec>` (§5.2).
    Include(MacroString),
    /// `a[:<domain-spec>][/ip4-cidr][//ip6-cidr]` (§5.3).
    A(Option<MacroString>, u8, u8),
    /// `mx[:<domain-spec>][/ip4-cidr][//ip6-cidr]` (§5.4).
    Mx(Option<MacroString>, u8, u8),
    /// `ptr[:<domain-spec>]` (§5.5).
    Ptr(Option<MacroString>),
    /// `ip4:<network>[/cidr]` (§5.6).
    Ip4(Ipv4Addr, u8),
    /// `ip6:<network>[/cidr]` (§5.6).
    Ip6(Ipv6Addr, u8),
    /// `exists:<domain-spec>` (§5.7).
    Exists(MacroString),
}

/// One directive: qualifier, mechanism, and the text as written (for the
/// `mechanism=` of the Received-SPF header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// What a match means.
    pub qualifier: Qualifier,
    /// What is matched.
    pub mechanism: Mechanism,
    /// The term as written in the record.
    pub text: String,
}

/// A parsed SPF record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The directives, in order.
    pub directives: Vec<Directive>,
    /// `redirect=` (§6.1), unless the record has an `all` mechanism, which
    /// makes it dead (§6.1: "MUST be ignored").
    pub redirect: Option<MacroString>,
    /// `exp=` (§6.2).
    pub exp: Option<MacroString>,
}

/// Among a domain's TXT records, the SPF ones (§4.5): those that start
/// with `v=spf1` (any case) followed by a space or nothing.
pub fn select(txt: &[String]) -> Vec<&str> {
    txt.iter()
        .map(String::as_str)
        .filter(|t| {
            let b = t.as_bytes();
            b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"v=spf1") && (b.len() == 6 || b[6] == b' ')
        })
        .collect()
}

impl Record {
    /// Parses a record that [`select`] chose; an error says which term is
    /// wrong.
    pub fn parse(text: &str) -> Result<Record, String> {
        let mut record = Record::default();
        let mut redirect = None;
        // The first term is the version; terms are separated by spaces
        // (§4.6.1: `1*SP`).
        for term in text.split(' ').skip(1).filter(|t| !t.is_empty()) {
            if let Some((name, value)) = modifier(term) {
                let slot = match name.to_ascii_lowercase().as_str() {
                    "redirect" => &mut redirect,
                    "exp" => &mut record.exp,
                    // An unknown modifier is ignored, but its value must
                    // be a macro-string (§6, §A).
                    _ => {
                        MacroString::parse(value, false).map_err(|e| format!("{term}: {e}"))?;
                        continue;
                    }
                };
                if slot.is_some() {
                    return Err(format!("{name}= appears twice (RFC 7208 6)"));
                }
                *slot = Some(MacroString::domain_spec(value).map_err(|e| format!("{term}: {e}"))?);
            } else {
                record.directives.push(directive(term)?);
            }
        }
        let has_all = record
            .directives
            .iter()
            .any(|d| d.mechanism == Mechanism::All);
        if !has_all {
            record.redirect = redirect;
        }
        Ok(record)
    }
}

/// `name "=" value` if the term is a modifier: a name is `ALPHA *( ALPHA
/// / DIGIT / "-" / "_" / "." )` (§A), so `moo.cow/x=y` is not one (and is
/// then an unknown mechanism).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let (name, value) = term.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    .then_some((name, value))
}

/// One `directive` (§4.6.1).
fn directive(term: &str) -> Result<Directive, String> {
    let (qualifier, rest) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &term[1..]),
        Some(b'-') => (Qualifier::Fail, &term[1..]),
        Some(b'~') => (Qualifier::SoftFail, &term[1..]),
        Some(b'?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_end = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, args) = rest.split_at(name_end);
    let bad = |why: &str| format!("{term}: {why}");
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "all" => return Err(bad("all takes no argument (RFC 7208 5.1)")),
        "include" | "exists" => {
            let spec = args
                .strip_prefix(':')
                .ok_or_else(|| bad("needs :domain (RFC 7208 5.2, 5.7)"))?;
            let spec = MacroString::domain_spec(spec).map_err(|e| bad(&e))?;
            if name.eq_ignore_ascii_case("include") {
                Mechanism::Include(spec)
            } else {
                Mechanism::Exists(spec)
            }
        }
        "a" | "mx" => {
            let (spec, v4, v6) = domain_and_cidr(args).map_err(|e| bad(&e))?;
            if name.eq_ignore_ascii_case("a") {
                Mechanism::A(spec, v4, v6)
            } else {
                Mechanism::Mx(spec, v4, v6)
            }
        }
        "ptr" => match args.strip_prefix(':') {
            None if args.is_empty() => Mechanism::Ptr(None),
            None => return Err(bad("ptr takes no prefix length (RFC 7208 5.5)")),
            Some(spec) => {
                Mechanism::Ptr(Some(MacroString::domain_spec(spec).map_err(|e| bad(&e))?))
            }
        },
        "ip4" => {
            let (net, bits) = network(args, 32).map_err(|e| bad(&e))?;
            let ip = net
                .parse::<Ipv4Addr>()
                .map_err(|_| bad("not an IPv4 network (RFC 7208 5.6)"))?;
            Mechanism::Ip4(ip, bits)
        }
        "ip6" => {
            let (net, bits) = network(args, 128).map_err(|e| bad(&e))?;
            let ip = net
                .parse::<Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 network (RFC 7208 5.6)"))?;
            Mechanism::Ip6(ip, bits)
        }
        _ => return Err(bad("unknown mechanism")),
    };
    Ok(Directive {
        qualifier,
        mechanism,
        text: term.to_owned(),
    })
}

/// The `:network[/cidr]` of `ip4`/`ip6`.
fn network(args: &str, max: u8) -> Result<(&str, u8), String> {
    let args = args
        .strip_prefix(':')
        .ok_or("needs :network (RFC 7208 5.6)")?;
    match args.rsplit_once('/') {
        Some((net, bits)) => Ok((net, cidr(bits, max)?)),
        None => Ok((args, max)),
    }
}

/// A prefix length: digits without leading zeros, at most `max` (§5.6).
fn cidr(digits: &str, max: u8) -> Result<u8, String> {
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => Err(format!(
            "bad prefix length /{digits} (0 to {max}, RFC 7208 5.6)"
        )),
    }
}

/// The `[:domain-spec][dual-cidr-length]` of `a` and `mx`. The prefix
/// lengths are taken from the end, so a domain-spec may hold `/` and `:`
/// itself (`a:foo:bar/baz.example.com`).
fn domain_and_cidr(args: &str) -> Result<(Option<MacroString>, u8, u8), String> {
    let mut rest = args;
    let mut v6 = 128;
    let mut v4 = 32;
    if let Some((before, digits)) = rest.rsplit_once("//")
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        v6 = cidr(digits, 128)?;
        rest = before;
    }
    if let Some((before, digits)) = rest.rsplit_once('/')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        v4 = cidr(digits, 32)?;
        rest = before;
    }
    if rest.is_empty() {
        return Ok((None, v4, v6));
    }
    let spec = rest
        .strip_prefix(':')
        .ok_or_else(|| format!("unexpected {rest:?}"))?;
    Ok((Some(MacroString::domain_spec(spec)?), v4, v6))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Record, String> {
        Record::parse(text)
    }

    #[test]
    fn selects_version_1_records_only() {
        let txt: Vec<String> = ["v=spf1 -all", "V=SpF1", "v=spf10", "v=spf1mx", "other"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(select(&txt), ["v=spf1 -all", "V=SpF1"]);
    }

    #[test]
    fn parses_every_mechanism() {
        let r = parse(
            "v=spf1 +all -include:_spf.example.com ~a ?a:x.example.com/24 a//64 \
             mx:m.example.com/24//48 ptr ptr:example.com ip4:192.0.2.0/24 ip6:2001:db8::/32 \
             exists:%{i}.example.com exp=e.example.com unknown=%{d}",
        )
        .unwrap();
        let m: Vec<&Mechanism> = r.directives.iter().map(|d| &d.mechanism).collect();
        assert_eq!(m.len(), 11);
        assert_eq!(r.directives[1].qualifier, Qualifier::Fail);
        assert!(matches!(m[3], Mechanism::A(Some(_), 24, 128)));
        assert!(matches!(m[4], Mechanism::A(None, 32, 64)));
        assert!(matches!(m[5], Mechanism::Mx(Some(_), 24, 48)));
        assert_eq!(*m[8], Mechanism::Ip4(Ipv4Addr::new(192, 0, 2, 0), 24));
        assert!(matches!(m[9], Mechanism::Ip6(_, 32)));
        assert!(r.exp.is_some());
        // An `all` anywhere makes redirect dead (§6.1).
        assert!(
            parse("v=spf1 redirect=a.example all")
                .unwrap()
                .redirect
                .is_none()
        );
        assert!(
            parse("v=spf1 redirect=a.example")
                .unwrap()
                .redirect
                .is_some()
        );
        assert!(parse("v=spf1 a:foo:bar/baz.example.com moo.cow-far_out=man:dog/cat").is_ok());
    }

    #[test]
    fn syntax_errors_anywhere_are_found() {
        for bad in [
            "v=spf1 ip4:1.2.3.4 -all moo",
            "v=spf1 -all.",
            "v=spf1 -all:foobar",
            "v=spf1 -all/8",
            "v=spf1 ptr/0",
            "v=spf1 ptr:",
            "v=spf1 a:",
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 mx:example.com:8080",
            "v=spf1 include",
            "v=spf1 include:",
            "v=spf1 include:ip5.example.com/24",
            "v=spf1 exists",
            "v=spf1 exists:mail.example.com/24",
            "v=spf1 ip4",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip6",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 ip6:::1.1.1.1/129",
            "v=spf1 ip6:::1.1.1.1//33",
            "v=spf1 redirect:t2.example.com",
            "v=spf1 redirect=",
            "v=spf1 redirect=-all ?all",
            "v=spf1 exp=",
            "v=spf1 exp=-all",
            "v=spf1 redirect=a.example redirect=a.example",
            "v=spf1 exp=a.example -all exp=b.example",
            "v=spf1 =all",
            "v=spf1 1up=foo",
            "v=spf1 -all foo=%abc",
            "v=spf1 moo.cow/far_out=man:dog/cat -all",
            "v=spf1 moo.cow:far_out=man:dog/cat -all",
            "v=spf1 a:\u{feff}garbage.example.net -all",
            "v=spf1 exp=%{r}.example.com -all",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
