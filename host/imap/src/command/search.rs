//! SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8): every key, over
//! flags, sizes, internal dates, MODSEQ (RFC 7162 §3.1.5), and header and
//! body text. Text matches case-insensitively, as Dovecot's does, either
//! the stored octets or what a reader sees: header fields with their
//! RFC 2047 encoded-words decoded, text parts with their quoted-printable
//! or base64 undone, in their charset ([`mime::decode`]).

use std::cell::OnceCell;
use std::collections::HashSet;

use postern_mailbox::{Mailbox, Message};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, Sync, internal};
use crate::codec::date::parse_rfc5322;
use crate::codec::search::SearchKey;
use crate::mime;
use crate::session::Session;
use crate::session::view::blocking;

/// What one message offers to the keys; content and date are loaded
/// only if a key needs them.
struct Candidate<'a> {
    seq: u32,
    largest_seq: u32,
    largest_uid: u32,
    message: &'a Message,
    recent: bool,
    content: Option<Vec<u8>>,
    date: i64,
    /// The decoded text parts, made the first time a key needs them.
    texts: OnceCell<Vec<String>>,
}

impl Candidate<'_> {
    fn texts(&self) -> &[String] {
        self.texts.get_or_init(|| {
            let mut out = Vec::new();
            if let Some(content) = self.content.as_deref() {
                mime::decode::body_texts(content, &mime::parse(content), &mut out);
            }
            out
        })
    }
}

fn needs_content(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_content),
        SearchKey::Or(a, b) => needs_content(a) || needs_content(b),
        SearchKey::Not(k) => needs_content(k),
        SearchKey::Header(..)
        | SearchKey::Body(_)
        | SearchKey::Text(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

fn needs_date(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_date),
        SearchKey::Or(a, b) => needs_date(a) || needs_date(b),
        SearchKey::Not(k) => needs_date(k),
        SearchKey::Before(_) | SearchKey::On(_) | SearchKey::Since(_) => true,
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes().to_ascii_lowercase();
    if needle.is_empty() {
        return true;
    }
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(&needle))
}

/// Unicode case-insensitive (Dovecot's i;unicode-casemap, near enough).
fn contains_text(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// A header field value matches raw or with its encoded-words decoded.
fn value_matches(value: &str, needle: &str) -> bool {
    contains(value.as_bytes(), needle) || contains_text(&mime::decode::header_value(value), needle)
}

fn header_block(content: &[u8]) -> &[u8] {
    let root = mime::parse(content);
    &content[root.start..root.body]
}

fn sent_day(c: &Candidate<'_>) -> Option<i64> {
    let content = c.content.as_deref()?;
    let date = mime::field(header_block(content), "date")?;
    parse_rfc5322(&date).map(|secs| secs.div_euclid(86_400))
}

fn matches(key: &SearchKey, c: &Candidate<'_>) -> bool {
    let day = c.date.div_euclid(86_400);
    match key {
        SearchKey::All => true,
        SearchKey::And(keys) => keys.iter().all(|k| matches(k, c)),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        SearchKey::Not(k) => !matches(k, c),
        SearchKey::Set(set) => set.contains(c.seq, c.largest_seq),
        SearchKey::Uid(set) => set.contains(c.message.uid, c.largest_uid),
        SearchKey::Flag(f) if f == "\\Recent" => c.recent,
        SearchKey::Unflag(f) if f == "\\Recent" => !c.recent,
        SearchKey::Flag(f) => c.message.flags.has(f),
        SearchKey::Unflag(f) => !c.message.flags.has(f),
        SearchKey::New => c.recent && !c.message.flags.has("\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Modseq(n) => c.message.modseq >= *n,
        SearchKey::Larger(n) => c.message.size > u64::from(*n),
        SearchKey::Smaller(n) => c.message.size < u64::from(*n),
        SearchKey::Before(d) => day < *d,
        SearchKey::On(d) => day == *d,
        SearchKey::Since(d) => day >= *d,
        SearchKey::SentBefore(d) => sent_day(c).is_some_and(|s| s < *d),
        SearchKey::SentOn(d) => sent_day(c).is_some_and(|s| s == *d),
        SearchKey::SentSince(d) => sent_day(c).is_some_and(|s| s >= *d),
        SearchKey::Header(name, text) => c.content.as_deref().is_some_and(|content| {
            mime::fields(header_block(content))
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && value_matches(v, text))
        }),
        SearchKey::Body(text) => c.content.as_deref().is_some_and(|content| {
            let root = mime::parse(content);
            contains(&content[root.body..], text)
                || c.texts().iter().any(|t| contains_text(t, text))
        }),
        SearchKey::Text(text) => c.content.as_deref().is_some_and(|content| {
            contains(content, text)
                || mime::fields(header_block(content))
                    .iter()
                    .any(|(_, v)| value_matches(v, text))
                || c.texts().iter().any(|t| contains_text(t, text))
        }),
    }
}

pub(crate) async fn search<S>(s: &mut Session<'_, S>, uid: bool, key: &SearchKey) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(sel) = s.selected.as_ref() else {
        return Done::bad("No mailbox selected.");
    };
    let (content, date) = (needs_content(key), needs_date(key));
    let messages = sel.messages.clone();
    let recent: HashSet<u32> = sel.recent.clone();
    let mailbox: Mailbox = sel.mailbox.clone();
    let with_modseq = key.uses_modseq();
    let key = key.clone();
    let found = blocking(move || {
        let largest_seq = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        let largest_uid = messages.last().map_or(0, |m| m.uid);
        let mut hits = Vec::new();
        let mut highest = 0;
        for (i, message) in messages.iter().enumerate() {
            let candidate = Candidate {
                seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                largest_seq,
                largest_uid,
                message,
                recent: recent.contains(&message.uid),
                content: if content {
                    mailbox.read(message)?
                } else {
                    None
                },
                date: if date {
                    mailbox.internal_date(message)?
                } else {
                    0
                },
                texts: OnceCell::new(),
            };
            if matches(&key, &candidate) {
                hits.push(if uid { message.uid } else { candidate.seq });
                highest = highest.max(message.modseq);
            }
        }
        Ok((hits, highest))
    })
    .await;
    let (hits, highest) = match found {
        Ok(h) => h,
        Err(e) => return internal(s, "search", &e),
    };
    let mut line = String::from("* SEARCH");
    for h in &hits {
        line.push_str(&format!(" {h}"));
    }
    if with_modseq && !hits.is_empty() {
        // RFC 7162 §3.1.5: the highest MODSEQ of the messages found.
        line.push_str(&format!(" (MODSEQ {highest})"));
    }
    line.push_str("\r\n");
    s.io.send(line.as_bytes());
    let sync = if uid { Sync::Full } else { Sync::NoExpunge };
    Done::ok("Search completed.").sync(sync)
}
