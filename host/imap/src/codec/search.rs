//! SEARCH keys (RFC 3501 §6.4.4), every one of them, and `CHARSET`
//! (UTF-8 and US-ASCII; anything else is `NO [BADCHARSET]`).

use super::parse::{ParseError, Parser, Result, bad};
use super::sequence::SequenceSet;

/// A search criterion; a list of them is [`SearchKey::And`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    /// A message set (sequence numbers).
    Set(SequenceSet),
    Uid(SequenceSet),
    /// A flag is set (`\Seen`, `$Junk`); `Flag("\\Recent")` is RECENT.
    Flag(String),
    /// A flag is not set.
    Unflag(String),
    New,
    Old,
    /// A header field contains the text (empty text: the field exists).
    Header(String, String),
    Body(String),
    Text(String),
    /// Internal date: before, on, since a day (day numbers).
    Before(i64),
    On(i64),
    Since(i64),
    /// Date: header, likewise.
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u32),
    Smaller(u32),
    /// MODSEQ at least this (RFC 7162 §3.1.5); the metadata entry is
    /// parsed and ignored, as Dovecot does: one MODSEQ per message.
    Modseq(u64),
}

impl SearchKey {
    /// Whether a MODSEQ key is in it (then the result carries the
    /// highest MODSEQ found, RFC 7162 §3.1.5).
    pub fn uses_modseq(&self) -> bool {
        match self {
            SearchKey::Modseq(_) => true,
            SearchKey::And(keys) => keys.iter().any(SearchKey::uses_modseq),
            SearchKey::Or(a, b) => a.uses_modseq() || b.uses_modseq(),
            SearchKey::Not(k) => k.uses_modseq(),
            _ => false,
        }
    }
}

/// The error for an unknown charset, which must be a NO, not a BAD.
pub const BAD_CHARSET: &str = "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset";

/// `[CHARSET name] key *(SP key)` after `SEARCH`.
pub fn parse_search(p: &mut Parser<'_>) -> Result<SearchKey> {
    p.sp()?;
    let mark = p.mark();
    if p.atom().is_ok_and(|w| w.eq_ignore_ascii_case("CHARSET")) {
        p.sp()?;
        let charset = p.astring()?;
        if !(charset.eq_ignore_ascii_case(b"UTF-8") || charset.eq_ignore_ascii_case(b"US-ASCII")) {
            return Err(ParseError(BAD_CHARSET.into()));
        }
        p.sp()?;
    } else {
        p.reset_to(mark);
    }
    let mut keys = vec![key(p, 0)?];
    while p.eat(b' ') {
        keys.push(key(p, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

/// Nesting deeper than this is refused, so a client cannot make the
/// parser recurse without bound.
const MAX_DEPTH: usize = 32;

fn text(p: &mut Parser<'_>) -> Result<String> {
    p.sp()?;
    String::from_utf8(p.astring()?).or_else(|_| bad("Invalid UTF-8 in search string"))
}

fn date(p: &mut Parser<'_>) -> Result<i64> {
    p.sp()?;
    p.date()
}

fn key(p: &mut Parser<'_>, depth: usize) -> Result<SearchKey> {
    if depth > MAX_DEPTH {
        return bad("Search key nested too deeply");
    }
    if p.eat(b'(') {
        let mut keys = vec![key(p, depth + 1)?];
        while !p.eat(b')') {
            p.sp()?;
            keys.push(key(p, depth + 1)?);
        }
        return Ok(SearchKey::And(keys));
    }
    if p.peek().is_some_and(|b| b.is_ascii_digit() || b == b'*') {
        return Ok(SearchKey::Set(p.sequence_set()?));
    }
    let word = p.atom()?.to_ascii_uppercase();
    let flag = |f: &str| Ok(SearchKey::Flag(f.to_owned()));
    let unflag = |f: &str| Ok(SearchKey::Unflag(f.to_owned()));
    let header = |p: &mut Parser<'_>, name: &str| Ok(SearchKey::Header(name.to_owned(), text(p)?));
    match word.as_str() {
        "ALL" => Ok(SearchKey::All),
        "ANSWERED" => flag("\\Answered"),
        "DELETED" => flag("\\Deleted"),
        "DRAFT" => flag("\\Draft"),
        "FLAGGED" => flag("\\Flagged"),
        "RECENT" => flag("\\Recent"),
        "SEEN" => flag("\\Seen"),
        "UNANSWERED" => unflag("\\Answered"),
        "UNDELETED" => unflag("\\Deleted"),
        "UNDRAFT" => unflag("\\Draft"),
        "UNFLAGGED" => unflag("\\Flagged"),
        "UNSEEN" => unflag("\\Seen"),
        "NEW" => Ok(SearchKey::New),
        "OLD" => Ok(SearchKey::Old),
        "KEYWORD" | "UNKEYWORD" => {
            p.sp()?;
            let k = p.atom()?.to_owned();
            if word == "KEYWORD" {
                flag(&k)
            } else {
                unflag(&k)
            }
        }
        "BCC" => header(p, "BCC"),
        "CC" => header(p, "CC"),
        "FROM" => header(p, "FROM"),
        "SUBJECT" => header(p, "SUBJECT"),
        "TO" => header(p, "TO"),
        "HEADER" => {
            let name = text(p)?.to_ascii_uppercase();
            let value = text(p)?;
            Ok(SearchKey::Header(name, value))
        }
        "BODY" => Ok(SearchKey::Body(text(p)?)),
        "TEXT" => Ok(SearchKey::Text(text(p)?)),
        "BEFORE" => Ok(SearchKey::Before(date(p)?)),
        "ON" => Ok(SearchKey::On(date(p)?)),
        "SINCE" => Ok(SearchKey::Since(date(p)?)),
        "SENTBEFORE" => Ok(SearchKey::SentBefore(date(p)?)),
        "SENTON" => Ok(SearchKey::SentOn(date(p)?)),
        "SENTSINCE" => Ok(SearchKey::SentSince(date(p)?)),
        "LARGER" | "SMALLER" => {
            p.sp()?;
            let n = p.number()?;
            Ok(if word == "LARGER" {
                SearchKey::Larger(n)
            } else {
                SearchKey::Smaller(n)
            })
        }
        "UID" => {
            p.sp()?;
            Ok(SearchKey::Uid(p.sequence_set()?))
        }
        "MODSEQ" => {
            p.sp()?;
            if p.peek() == Some(b'"') {
                // entry-name SP entry-type-req (RFC 7162 §3.1.5).
                p.quoted()?;
                p.sp()?;
                let kind = p.atom()?.to_ascii_lowercase();
                if !["priv", "shared", "all"].contains(&kind.as_str()) {
                    return bad("Invalid MODSEQ entry type");
                }
                p.sp()?;
            }
            Ok(SearchKey::Modseq(p.modseq()?))
        }
        "NOT" => {
            p.sp()?;
            Ok(SearchKey::Not(Box::new(key(p, depth + 1)?)))
        }
        "OR" => {
            p.sp()?;
            let a = key(p, depth + 1)?;
            p.sp()?;
            let b = key(p, depth + 1)?;
            Ok(SearchKey::Or(Box::new(a), Box::new(b)))
        }
        _ => bad(format!("Unknown search key {word}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<SearchKey> {
        parse_search(&mut Parser::new(s))
    }

    #[test]
    fn keys() {
        assert_eq!(parse(b" ALL").unwrap(), SearchKey::All);
        let k = parse(b" CHARSET UTF-8 OR (UNSEEN FROM \"b\xc3\xa9\") NOT 1:3 SINCE 1-Feb-1994")
            .unwrap();
        let SearchKey::And(keys) = k else { panic!() };
        assert_eq!(keys.len(), 2);
        assert!(matches!(keys[0], SearchKey::Or(..)));
        assert_eq!(parse(b" CHARSET KOI8-R ALL").unwrap_err().0, BAD_CHARSET);
        assert!(parse(b" FROB").is_err());
        let deep = format!(" {}ALL{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(b" SUBJECT \xff").is_err());
    }
}
