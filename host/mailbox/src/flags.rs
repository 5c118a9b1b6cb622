//! Message flags as a Maildir file name carries them: the info part
//! `:2,FLAGS` (<https://cr.yp.to/proto/maildir.html>), upper-case letters
//! for the system flags in ASCII order, and Dovecot's lower-case letters
//! `a`..`z` for keywords, each the index of a line of `dovecot-keywords`.

use std::collections::BTreeSet;

/// IMAP's system flags (RFC 3501 §2.3.2) and their Maildir letters.
/// `P` (passed) is Dovecot's `$Forwarded`.
const LETTERS: &[(char, &str)] = &[
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('P', "$Forwarded"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

/// The flags of a message: system flags by their IMAP names (`\Seen`) and
/// keywords (`$Junk`), in one sorted set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(pub BTreeSet<String>);

impl Flags {
    /// No flag.
    pub fn new() -> Flags {
        Flags::default()
    }

    /// Whether `flag` (an IMAP name, system flags case-insensitively) is set.
    pub fn has(&self, flag: &str) -> bool {
        self.0.contains(&canonical(flag))
    }

    /// Sets `flag`.
    pub fn insert(&mut self, flag: &str) {
        self.0.insert(canonical(flag));
    }

    /// Clears `flag`.
    pub fn remove(&mut self, flag: &str) {
        self.0.remove(&canonical(flag));
    }

    /// The flags, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The flags of a file name's info part; `keywords` maps letters to
    /// names (index 0 is `a`). Unknown letters are dropped.
    pub fn from_name(name: &str, keywords: &[String]) -> Flags {
        let mut flags = Flags::new();
        let Some((_, info)) = name.split_once(":2,") else {
            return flags;
        };
        for c in info.chars() {
            if let Some((_, f)) = LETTERS.iter().find(|(l, _)| *l == c) {
                flags.0.insert((*f).to_owned());
            } else if c.is_ascii_lowercase() {
                let i = usize::from(c as u8 - b'a');
                // A gap in dovecot-keywords (`0 a` then `3 b`) leaves
                // empty names: a letter for one is no flag, or IMAP
                // would send an empty atom in FLAGS.
                if let Some(k) = keywords.get(i).filter(|k| !k.is_empty()) {
                    flags.0.insert(k.clone());
                }
            }
        }
        flags
    }

    /// The info part (`2,FS`), adding to `keywords` the keywords it does
    /// not have yet. `None` when a keyword would need a 27th letter.
    pub fn info(&self, keywords: &mut Vec<String>) -> Option<String> {
        let mut system = Vec::new();
        let mut letters = Vec::new();
        for flag in &self.0 {
            if let Some((l, _)) = LETTERS.iter().find(|(_, f)| f == flag) {
                system.push(*l);
            } else if flag.starts_with('\\') {
                // \Recent and unknown system flags are never stored.
            } else {
                let i = match keywords.iter().position(|k| k == flag) {
                    Some(i) => i,
                    None => {
                        keywords.push(flag.clone());
                        keywords.len() - 1
                    }
                };
                let i = u8::try_from(i).ok().filter(|i| *i < 26)?;
                letters.push(char::from(b'a' + i));
            }
        }
        system.sort_unstable();
        letters.sort_unstable();
        Some(format!(
            "2,{}{}",
            system.into_iter().collect::<String>(),
            letters.into_iter().collect::<String>()
        ))
    }
}

/// System flags as RFC 3501 spells them; keywords as given.
pub fn canonical(flag: &str) -> String {
    if flag.starts_with('\\') {
        for name in [
            "\\Seen",
            "\\Answered",
            "\\Flagged",
            "\\Deleted",
            "\\Draft",
            "\\Recent",
        ] {
            if name.eq_ignore_ascii_case(flag) {
                return name.to_owned();
            }
        }
    }
    if flag.eq_ignore_ascii_case("$Forwarded") {
        return "$Forwarded".to_owned();
    }
    flag.to_owned()
}

/// Reads `dovecot-keywords`: `<index> <name>` lines.
pub fn parse_keywords(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some((i, name)) = line.split_once(' ') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else {
            continue;
        };
        // A name that is not an IMAP keyword atom (RFC 3501 §9 flag-keyword:
        // no `\`, space, controls, `(){%*"]`) would pose as a system flag
        // or break a FLAGS response: the letter is then no flag at all.
        if i >= 26 || !is_keyword(name) {
            continue;
        }
        if out.len() <= i {
            out.resize(i + 1, String::new());
        }
        out[i] = name.to_owned();
    }
    out
}

/// Whether `name` can be an IMAP keyword (RFC 3501 §9: an atom, and not a
/// `\` system flag).
fn is_keyword(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b > b' ' && b != 0x7f && !b"(){%*\"\\]".contains(&b))
}

/// Writes `dovecot-keywords`.
pub fn render_keywords(keywords: &[String]) -> String {
    keywords
        .iter()
        .enumerate()
        .filter(|(_, k)| !k.is_empty())
        .map(|(i, k)| format!("{i} {k}\n"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_keywords() {
        let keywords = parse_keywords("0 $Junk\n1 work\n");
        let f = Flags::from_name("1.M2P3.h,S=5:2,FRSb", &keywords);
        let names: Vec<&str> = f.iter().collect();
        assert_eq!(names, ["\\Answered", "\\Flagged", "\\Seen", "work"]);
        let mut kw = keywords.clone();
        let mut g = f.clone();
        g.insert("\\deleted");
        g.insert("new-one");
        g.insert("\\Recent");
        assert_eq!(g.info(&mut kw).unwrap(), "2,FRSTbc");
        assert_eq!(kw, ["$Junk", "work", "new-one"]);
        assert_eq!(render_keywords(&kw), "0 $Junk\n1 work\n2 new-one\n");
        assert!(Flags::from_name("1.M2P3.h", &kw).0.is_empty());
    }

    /// Found by the fuzzer (fuzz/corpus/maildir_name/keywords_gap).
    #[test]
    fn keyword_file_with_a_gap_gives_no_empty_flag() {
        let kw = parse_keywords("3 $Label\n");
        assert_eq!(kw, ["", "", "", "$Label"]);
        let names: Vec<String> = Flags::from_name("1.M2P3.h:2,Sad", &kw)
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(names, ["$Label", "\\Seen"]);
    }

    /// Found by the fuzzer (fuzz/corpus/maildir_name/): a keyword that
    /// looks like a system flag or holds a space is no keyword.
    #[test]
    fn keywords_file_with_bad_names() {
        let kw = parse_keywords("0 \\Deleted\n1 a b\n2 $Junk\n3 x)\n");
        assert_eq!(kw, ["", "", "$Junk"]);
        let names: Vec<String> = Flags::from_name("1.M2P3.h:2,abcd", &kw)
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(names, ["$Junk"]);
    }

    #[test]
    fn keyword_letters_run_out() {
        let mut kw: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
        let mut f = Flags::new();
        f.insert("k27");
        assert_eq!(f.info(&mut kw), None);
    }
}
