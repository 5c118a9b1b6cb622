//! `regexp` tables: Postfix's regexp_table(5). Each logical line is
//! `/pattern/flags result`; `!/pattern/ result` matches when the pattern
//! does not; `if /pattern/` ... `endif` guards the lines between. The first
//! matching line wins. The result may use `$1` ... `$9` (or `${1}`) for
//! the pattern's groups and `$$` for a dollar sign.
//!
//! Flags as in Postfix: matching is case-insensitive unless `i` toggles it
//! off; `m` makes `^` and `$` match at line ends; `x` allows white space
//! and comments in the pattern. The delimiter is the first character, `/`
//! by convention. Patterns are compiled by the `regex` crate: linear-time
//! matching whatever the input (no back-references or look-around), so a
//! hostile key cannot make a lookup slow.

use std::path::Path;

use regex::{Regex, RegexBuilder};

use crate::error::Error;
use crate::source::{self, Line, syntax};

/// The largest compiled pattern accepted, in bytes: a table is operator
/// input, but one `{1000}{1000}` typo should be an error, not a gigabyte.
const SIZE_LIMIT: usize = 1 << 20;

/// The deepest nesting of groups, classes and repetitions accepted: the
/// regex crate compiles a pattern by recursion over it, and at its default
/// (250) a pattern such as `/$+++...+/` (found by fuzzing) overflows the
/// 2 MiB stack of the thread a `postern reload` loads tables on. No access
/// pattern needs more than a handful of levels.
const NEST_LIMIT: u32 = 32;

/// One pattern, possibly negated.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    negated: bool,
}

impl Pattern {
    fn matches(&self, key: &str) -> bool {
        self.regex.is_match(key) != self.negated
    }
}

/// One result line with the `if` patterns around it.
#[derive(Debug, Clone)]
struct Rule {
    guards: Vec<Pattern>,
    pattern: Pattern,
    result: String,
}

/// A `regexp` table in memory.
#[derive(Debug, Clone, Default)]
pub struct RegexpTable {
    rules: Vec<Rule>,
}

impl RegexpTable {
    /// Reads the source file at `path`.
    pub fn load(path: &Path) -> Result<RegexpTable, Error> {
        RegexpTable::from_lines(path, source::read(path)?)
    }

    /// Parses source text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<RegexpTable, Error> {
        RegexpTable::from_lines(path, source::lines(path, text)?)
    }

    fn from_lines(path: &Path, lines: Vec<Line>) -> Result<RegexpTable, Error> {
        let mut rules = Vec::new();
        let mut guards: Vec<(Pattern, usize)> = Vec::new();
        for Line { number, text } in lines {
            let word = text.split_whitespace().next().unwrap_or_default();
            if word.eq_ignore_ascii_case("endif") {
                if guards.pop().is_none() {
                    return Err(syntax(path, number, "endif without a matching if"));
                }
                continue;
            }
            if word.eq_ignore_ascii_case("if") {
                let rest = text[word.len()..].trim_start();
                let (pattern, tail) = pattern(rest).map_err(|m| syntax(path, number, m))?;
                if !tail.is_empty() {
                    return Err(syntax(
                        path,
                        number,
                        format!("if takes a pattern only, found {tail:?} after it"),
                    ));
                }
                guards.push((pattern, number));
                continue;
            }
            let (pattern, result) = pattern(&text).map_err(|m| syntax(path, number, m))?;
            if result.is_empty() {
                return Err(syntax(
                    path,
                    number,
                    "expected \"/pattern/flags result\", found no result",
                ));
            }
            check_substitutions(result, &pattern).map_err(|m| syntax(path, number, m))?;
            rules.push(Rule {
                guards: guards.iter().map(|(g, _)| g.clone()).collect(),
                pattern,
                result: result.to_owned(),
            });
        }
        if let Some((_, line)) = guards.last() {
            return Err(syntax(path, *line, "if without a matching endif"));
        }
        Ok(RegexpTable { rules })
    }

    /// Every result, in the file's order, before substitution.
    pub fn results(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.result.as_str())
    }

    /// The result of the first line that matches `key`, with `$n`
    /// substituted; `None` when no line matches.
    pub fn lookup(&self, key: &str) -> Option<String> {
        let rule = self
            .rules
            .iter()
            .find(|r| r.guards.iter().all(|g| g.matches(key)) && r.pattern.matches(key))?;
        if rule.pattern.negated {
            return Some(substitute(&rule.result, &[]));
        }
        let groups: Vec<&str> = match rule.pattern.regex.captures(key) {
            Some(c) => c.iter().map(|m| m.map_or("", |m| m.as_str())).collect(),
            None => Vec::new(),
        };
        Some(substitute(&rule.result, &groups))
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

/// Reads `[!]/pattern/flags` at the start of `text`; returns the pattern
/// and the rest of the line, trimmed.
fn pattern(text: &str) -> Result<(Pattern, &str), String> {
    let (negated, text) = match text.strip_prefix('!') {
        Some(t) => (true, t.trim_start()),
        None => (false, text),
    };
    let mut chars = text.char_indices();
    let Some((_, delim)) = chars.next() else {
        return Err("expected /pattern/flags".to_owned());
    };
    if delim.is_alphanumeric() || delim.is_whitespace() || delim == '\\' {
        return Err(format!(
            "expected /pattern/flags, found {:?}",
            text.split_whitespace().next().unwrap_or(text)
        ));
    }
    // The closing delimiter is the first one not escaped by a backslash.
    let mut escaped = false;
    let mut end = None;
    for (i, c) in chars.by_ref() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            end = Some(i);
            break;
        }
    }
    let Some(end) = end else {
        return Err(format!("pattern {text:?} has no closing {delim}"));
    };
    let body = &text[delim.len_utf8()..end];
    let after = &text[end + delim.len_utf8()..];
    let flags_end = after.find(char::is_whitespace).unwrap_or(after.len());
    let (flags, rest) = after.split_at(flags_end);
    let mut builder = RegexBuilder::new(body);
    builder.size_limit(SIZE_LIMIT).nest_limit(NEST_LIMIT);
    let mut insensitive = true;
    for f in flags.chars() {
        match f {
            'i' => insensitive = !insensitive,
            'm' => {
                builder.multi_line(true);
            }
            'x' => {
                builder.ignore_whitespace(true);
            }
            other => return Err(format!("unknown flag {other:?} (expected i, m or x)")),
        }
    }
    builder.case_insensitive(insensitive);
    let regex = builder.build().map_err(|e| {
        format!(
            "bad pattern {delim}{body}{delim}: {}",
            one_line(&e.to_string())
        )
    })?;
    Ok((Pattern { regex, negated }, rest.trim()))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every `$n` of `result` must name a group of the pattern; a negated
/// pattern has none (regexp_table(5)).
fn check_substitutions(result: &str, pattern: &Pattern) -> Result<(), String> {
    let groups = if pattern.negated {
        0
    } else {
        pattern.regex.captures_len() - 1
    };
    for n in references(result) {
        if n > groups {
            return Err(format!(
                "result {result:?} uses ${n}, but the pattern has {groups} group(s)"
            ));
        }
    }
    Ok(())
}

/// The group numbers `$n` / `${n}` in `text`.
fn references(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            rest = r;
            continue;
        }
        let (digits, tail) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once('}') {
                Some((d, t)) => (d, t),
                None => continue,
            },
            None => {
                let n = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                rest.split_at(n)
            }
        };
        if let Ok(n) = digits.parse() {
            out.push(n);
        }
        rest = tail;
    }
    out
}

/// `result` with `$n` replaced by group `n` and `$$` by `$`.
fn substitute(result: &str, groups: &[&str]) -> String {
    let mut out = String::with_capacity(result.len());
    let mut rest = result;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (digits, tail, braced) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once('}') {
                Some((d, t)) => (d, t, true),
                None => ("", rest, false),
            },
            None => {
                let n = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let (d, t) = rest.split_at(n);
                (d, t, false)
            }
        };
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(groups.get(n).copied().unwrap_or_default()),
            Err(_) => {
                out.push('$');
                if braced {
                    out.push('{');
                }
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TABLE: &str = "\
# regexp_table(5)
/^(.*)@spam\\.example$/      REJECT no mail from $1, costs $$5
/^Bounce@/i                 DUNNO case matters here
if /@example\\.org$/
!/^postmaster@/             550 only ${0} may not
endif
/#/                         OK hash
|\\.|                        OK dot
";

    /// Parses `text` on a thread with the stack of a tokio blocking
    /// thread (2 MiB), where a reload loads tables.
    fn parse_on_a_small_stack(text: String) -> Result<usize, String> {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                RegexpTable::parse(Path::new("r"), &text)
                    .map(|t| t.len())
                    .map_err(|e| e.to_string())
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deeply_nested_patterns_are_refused_not_a_stack_overflow() {
        // The fuzzer's input: 250 repetitions of a repetition.
        let e = parse_on_a_small_stack(format!("/${}/ REJECT\n", "+".repeat(250))).unwrap_err();
        assert!(e.starts_with("r:1: bad pattern"), "{e}");
        assert!(e.contains("maximum number of nested"), "{e}");
        let e = parse_on_a_small_stack(format!("/{}a{}/ OK\n", "(".repeat(200), ")".repeat(200)))
            .unwrap_err();
        assert!(e.contains("maximum number of nested"), "{e}");
        // At the limit it loads, on the same stack.
        let depth = usize::try_from(NEST_LIMIT).unwrap() - 1;
        let text = format!(
            "/${}/ REJECT\n/{}a{}/ OK\n",
            "+".repeat(depth),
            "(".repeat(depth),
            ")".repeat(depth)
        );
        assert_eq!(parse_on_a_small_stack(text), Ok(2));
    }

    #[test]
    fn first_match_wins_with_groups_flags_and_if_blocks() {
        let t = RegexpTable::parse(Path::new("r"), TABLE).unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(
            t.lookup("Joe@SPAM.example").as_deref(),
            Some("REJECT no mail from Joe, costs $5")
        );
        assert_eq!(t.lookup("bounce@x").as_deref(), None);
        assert_eq!(
            t.lookup("Bounce@x").as_deref(),
            Some("DUNNO case matters here")
        );
        assert_eq!(
            t.lookup("alice@example.org").as_deref(),
            Some("550 only  may not")
        );
        assert_eq!(
            t.lookup("postmaster@example.org").as_deref(),
            Some("OK dot")
        );
        assert_eq!(t.lookup("a#b").as_deref(), Some("OK hash"));
        assert_eq!(t.lookup("nothing").as_deref(), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = |text| {
            RegexpTable::parse(Path::new("/etc/r"), text)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("/ok/ OK\n/(unclosed/ X\n").starts_with("/etc/r:2: bad pattern /(unclosed/: "),
            "{}",
            err("/ok/ OK\n/(unclosed/ X\n")
        );
        assert_eq!(
            err("/a/q X\n"),
            "/etc/r:1: unknown flag 'q' (expected i, m or x)"
        );
        assert_eq!(err("/a X\n"), "/etc/r:1: pattern \"/a X\" has no closing /");
        assert_eq!(
            err("/a/\n"),
            "/etc/r:1: expected \"/pattern/flags result\", found no result"
        );
        assert_eq!(
            err("/(a)/ $2\n"),
            "/etc/r:1: result \"$2\" uses $2, but the pattern has 1 group(s)"
        );
        assert_eq!(
            err("abc OK\n"),
            "/etc/r:1: expected /pattern/flags, found \"abc\""
        );
        assert_eq!(
            err("if /a/\n/b/ X\n"),
            "/etc/r:1: if without a matching endif"
        );
    }
}
