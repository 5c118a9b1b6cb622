//! `cidr` tables: Postfix's cidr_table(5). Each logical line is
//! `network/prefix result` (or a bare address, which matches itself);
//! `!network/prefix result` matches addresses outside the network; `if
//! network/prefix` ... `endif` (Postfix 3.2) guards the lines between.
//! Addresses may be written in `[]`. The first matching line wins, so a
//! file is read top to bottom as Postfix does. A network whose host bits
//! are not zero is an error, as in Postfix: it almost always hides a typo.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use crate::error::Error;
use crate::source::{self, Line, syntax};

/// One network pattern, possibly negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pattern {
    net: IpNet,
    negated: bool,
}

impl Pattern {
    fn matches(&self, ip: IpAddr) -> bool {
        self.net.contains(&ip) != self.negated
    }
}

/// One result line with the `if` patterns around it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    guards: Vec<Pattern>,
    pattern: Pattern,
    result: String,
}

/// A `cidr` table in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrTable {
    rules: Vec<Rule>,
}

impl CidrTable {
    /// Reads the source file at `path`.
    pub fn load(path: &Path) -> Result<CidrTable, Error> {
        CidrTable::from_lines(path, source::read(path)?)
    }

    /// Parses source text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<CidrTable, Error> {
        CidrTable::from_lines(path, source::lines(path, text)?)
    }

    fn from_lines(path: &Path, lines: Vec<Line>) -> Result<CidrTable, Error> {
        let mut rules = Vec::new();
        // The open `if` patterns, with the line that opened each.
        let mut guards: Vec<(Pattern, usize)> = Vec::new();
        for Line { number, text } in lines {
            let (first, rest) = match text.split_once(char::is_whitespace) {
                Some((f, r)) => (f, r.trim()),
                None => (text.as_str(), ""),
            };
            if first.eq_ignore_ascii_case("endif") {
                if guards.pop().is_none() {
                    return Err(syntax(path, number, "endif without a matching if"));
                }
                continue;
            }
            if first.eq_ignore_ascii_case("if") {
                let pattern = pattern(rest).map_err(|m| syntax(path, number, m))?;
                guards.push((pattern, number));
                continue;
            }
            let pattern = pattern(first).map_err(|m| syntax(path, number, m))?;
            if rest.is_empty() {
                return Err(syntax(
                    path,
                    number,
                    format!("expected \"network/prefix result\", found only {first:?}"),
                ));
            }
            rules.push(Rule {
                guards: guards.iter().map(|(g, _)| *g).collect(),
                pattern,
                result: rest.to_owned(),
            });
        }
        if let Some((_, line)) = guards.last() {
            return Err(syntax(path, *line, "if without a matching endif"));
        }
        Ok(CidrTable { rules })
    }

    /// The result of the first line that matches the address `key`; `None`
    /// when none does or `key` is not an IP address (with or without `[]`).
    pub fn lookup(&self, key: &str) -> Option<&str> {
        let ip = parse_ip(key)?;
        self.rules
            .iter()
            .find(|r| r.guards.iter().all(|g| g.matches(ip)) && r.pattern.matches(ip))
            .map(|r| r.result.as_str())
    }

    /// Every result, in the file's order.
    pub fn results(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.result.as_str())
    }

    /// How many result lines the table holds.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the table has no result lines.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// Reads `[!]address[/prefix]`.
fn pattern(text: &str) -> Result<Pattern, String> {
    let (negated, text) = match text.strip_prefix('!') {
        Some(t) => (true, t.trim_start()),
        None => (false, text),
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip =
        parse_ip(addr).ok_or_else(|| format!("{text:?} is not an address or network/prefix"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{text:?}: bad prefix length {p:?} (0 to {max})"))?,
    };
    let net = IpNet::new(ip, prefix).map_err(|e| format!("{text:?}: {e}"))?;
    if net.network() != ip {
        return Err(format!(
            "{text:?}: non-null host address bits; the network is {}",
            net.trunc()
        ));
    }
    Ok(Pattern { net, negated })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TABLE: &str = "\
# cidr_table(5)
192.0.2.1          REJECT single host
192.0.2.0/24       OK
[2001:db8::]/32    DUNNO v6
if 198.51.100.0/24
!198.51.100.0/25   554 upper half
endif
0.0.0.0/0          DEFER rest
";

    #[test]
    fn first_match_wins_with_negation_and_if_blocks() {
        let t = CidrTable::parse(Path::new("c"), TABLE).unwrap();
        assert_eq!(t.lookup("192.0.2.1"), Some("REJECT single host"));
        assert_eq!(t.lookup("192.0.2.77"), Some("OK"));
        assert_eq!(t.lookup("[2001:db8::1]"), Some("DUNNO v6"));
        assert_eq!(t.lookup("198.51.100.200"), Some("554 upper half"));
        assert_eq!(t.lookup("198.51.100.1"), Some("DEFER rest"));
        assert_eq!(t.lookup("2001:db9::1"), None);
        assert_eq!(t.lookup("not an address"), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = |text| {
            CidrTable::parse(Path::new("/etc/c"), text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("10.0.0.0/8 OK\n10.1.2.3/16 OK\n"),
            "/etc/c:2: \"10.1.2.3/16\": non-null host address bits; the network is 10.1.0.0/16"
        );
        assert_eq!(
            err("10.0.0.0/33 OK\n"),
            "/etc/c:1: \"10.0.0.0/33\": bad prefix length \"33\" (0 to 32)"
        );
        assert_eq!(
            err("example.com OK\n"),
            "/etc/c:1: \"example.com\" is not an address or network/prefix"
        );
        assert_eq!(
            err("if 10.0.0.0/8\n"),
            "/etc/c:1: if without a matching endif"
        );
        assert_eq!(err("endif\n"), "/etc/c:1: endif without a matching if");
        assert_eq!(
            err("10.0.0.0/8\n"),
            "/etc/c:1: expected \"network/prefix result\", found only \"10.0.0.0/8\""
        );
    }
}
