//! The queue file, version 1: self-describing, appendable, and checked.
//!
//! ```text
//! POSTERN-QUEUE 1                     magic and version
//! id 0005F3A1B2C3D4E000A1F2           envelope records, one per line,
//! arrival 1700000000.123456789        values escaped (see status::escape)
//! sender alice@example.org            (empty value: the null sender <>)
//! client 192.0.2.7:41234              (absent when unknown)
//! client_name mx.example.org
//! helo mx.example.org                 (absent when the client sent none)
//! protocol ESMTP
//! hold 0
//! ret HDRS                            DSN RET (absent when not given)
//! envid QQ314159                      DSN ENVID, decoded (absent: none)
//! smtputf8 1                          SMTPUTF8 / BODY=8BITMIME given
//! 8bitmime 1                          (absent when not)
//! filter smtp:[127.0.0.1]:10025       content filter: every recipient
//!                                     goes there (absent: none)
//! rcpt bob@example.net Bob@example.net   address, then as given in RCPT TO
//! rcpt c@example.net c@example.net SUCCESS,FAILURE rfc822;C@example.net
//!                                     then NOTIFY (or `-`) and ORCPT when given
//! size 1445                           content length in bytes
//!                                     blank line
//! <1445 bytes of content>
//! \nPOSTERN-END\n                     end marker: truncation shows
//! D 0 sent 2.0.0 delivered%20to%20maildir   status records, appended
//! D 1 bounced 5.1.1 host%20mx... mx.example.net 550%205.1.1%20...
//!                                     then, when a server answered, its
//!                                     name and reply (for Remote-MTA)
//! T 1700000300                        a deferral: next attempt (unix time)
//! N 0005F3A1B2C3D4E0FF0A1F 2,3         a bounce notice (its queue id) was
//!                                     queued for recipients 2 and 3
//! W 0005F3A1B2C3D4E0FF0A20            the delay warning (its queue id) was
//!                                     queued: never a second one
//! ```
//!
//! The content length sits before the content and the end marker after it,
//! so a file cut at any byte fails to parse. Status records are appended
//! one `write` and fsync at a time after each delivery; a torn last record
//! (a crash in the middle of appending it) is ignored, which only means
//! that recipient is tried again. Parsing trusts no length beyond the file
//! and never panics.
//!
//! The DSN, SMTPUTF8 and filter records came later: a file without them is a file
//! written before them (or for mail without those parameters), so old
//! queue files stay readable, and a message without them is written
//! exactly as before.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postern_mail::{
    Address, EnhancedCode, Envelope, Notify, Orcpt, QueueId, Recipient, RemoteReply, Ret,
    ReversePath,
};

use crate::error::ParseError;
use crate::status::{RecipientStatus, escape, unescape};

/// The first line of every version 1 queue file.
const MAGIC: &str = "POSTERN-QUEUE";
const VERSION: &str = "1";

/// What follows the content.
pub(crate) const END_MARKER: &[u8] = b"\nPOSTERN-END\n";

/// One message as its queue file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The queue id (also the file name).
    pub id: QueueId,
    /// Sender, recipients and how the message arrived.
    pub envelope: Envelope,
    /// The message, byte for byte as queued.
    pub content: Vec<u8>,
    /// One state per recipient of `envelope.recipients`, same order.
    pub statuses: Vec<RecipientStatus>,
    /// How many delivery attempts ended with a deferral.
    pub deferrals: u32,
    /// When the last deferral scheduled the next attempt.
    pub next_attempt: Option<SystemTime>,
    /// One flag per recipient: whether a bounce notice for it was queued
    /// (an `N` record). A failed recipient without one still owes its
    /// notice, even after a crash.
    pub notified: Vec<bool>,
    /// One entry per recipient: what the remote server said in the
    /// attempt that set its status, when one answered.
    pub remote: Vec<Option<RemoteReply>>,
    /// Whether the `delay_warning_time` notice was queued (a `W` record):
    /// one per message, restarts included.
    pub warned: bool,
}

impl QueuedMessage {
    /// The message as its file reads back right after it was written:
    /// every recipient pending, no record yet. [`parse`] builds on it, so
    /// a message handed from the enqueue to the scheduler in memory is the
    /// one the scheduler would have read.
    pub(crate) fn fresh(id: QueueId, envelope: Envelope, content: Vec<u8>) -> QueuedMessage {
        let count = envelope.recipients.len();
        QueuedMessage {
            id,
            envelope,
            content,
            statuses: vec![RecipientStatus::Pending; count],
            deferrals: 0,
            next_attempt: None,
            notified: vec![false; count],
            remote: vec![None; count],
            warned: false,
        }
    }

    /// Whether every recipient has a final state: the file can go.
    pub fn is_done(&self) -> bool {
        self.statuses.iter().all(RecipientStatus::is_final)
    }

    /// The recipients still to deliver, with their index.
    pub fn pending(&self) -> impl Iterator<Item = (usize, &Recipient)> {
        self.envelope
            .recipients
            .iter()
            .enumerate()
            .filter(|(i, _)| self.statuses.get(*i).is_some_and(|s| !s.is_final()))
    }

    /// The recipients that failed for good (bounced or expired) and whose
    /// bounce notice is not queued yet, by index. A recipient whose DSN
    /// `NOTIFY` leaves out `FAILURE` (`NEVER`, say) is never owed one.
    pub fn unnotified_failures(&self) -> Vec<usize> {
        self.unnotified(|s, r| {
            matches!(
                s,
                RecipientStatus::Bounced { .. } | RecipientStatus::Expired { .. }
            ) && r.notify_failure()
        })
    }

    /// The recipients delivered with `NOTIFY=SUCCESS` whose success notice
    /// (RFC 3461 §5.2.2) is not queued yet, by index.
    pub fn unnotified_successes(&self) -> Vec<usize> {
        self.unnotified(|s, r| matches!(s, RecipientStatus::Sent { .. }) && r.notify_success())
    }

    /// The recipients a delay warning tells about (RFC 3461 §4.1): still
    /// deferred, and with no `NOTIFY` or one that names `DELAY` (Postfix
    /// counts a recipient without `NOTIFY` in).
    pub fn delayed(&self) -> Vec<usize> {
        self.statuses
            .iter()
            .zip(&self.envelope.recipients)
            .enumerate()
            .filter(|(_, (s, r))| {
                matches!(s, RecipientStatus::Deferred { .. }) && r.notify.is_none_or(|n| n.delay)
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn unnotified(&self, owed: impl Fn(&RecipientStatus, &Recipient) -> bool) -> Vec<usize> {
        self.statuses
            .iter()
            .zip(&self.envelope.recipients)
            .enumerate()
            .filter(|(i, (s, r))| owed(s, r) && !self.notified.get(*i).copied().unwrap_or(false))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A parsed file, and how much of it is sound.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub message: QueuedMessage,
    /// The length up to the last complete record; less than the file's
    /// length when a torn last record must be cut off before appending.
    pub valid_len: usize,
}

/// The envelope part, up to and including the blank line.
pub(crate) fn header(id: &QueueId, envelope: &Envelope, content_len: usize) -> Vec<u8> {
    // One buffer, values escaped into it and numbers written with `write!`:
    // this runs for every message received, before its 250.
    let mut h = String::with_capacity(256 + 128 * envelope.recipients.len());
    // Writing to a String cannot fail.
    let mut line = |key: &str, value: &dyn Fn(&mut String)| {
        h.push_str(key);
        h.push(' ');
        value(&mut h);
        h.push('\n');
    };
    line(MAGIC, &|h| h.push_str(VERSION));
    line("id", &|h| h.push_str(id.as_str()));
    let arrival = envelope
        .arrival
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    line("arrival", &|h| {
        let _ = write!(h, "{}.{:09}", arrival.as_secs(), arrival.subsec_nanos());
    });
    line("sender", &|h| match &envelope.sender {
        ReversePath::Null => {}
        ReversePath::Address(a) => push_escaped_display(h, a),
    });
    if let Some(client) = envelope.client {
        line("client", &|h| {
            let _ = write!(h, "{client}");
        });
    }
    line("client_name", &|h| push_escaped(h, &envelope.client_name));
    if let Some(helo) = &envelope.helo {
        line("helo", &|h| push_escaped(h, helo));
    }
    line("protocol", &|h| push_escaped(h, &envelope.protocol));
    line("hold", &|h| h.push(if envelope.hold { '1' } else { '0' }));
    if let Some(ret) = envelope.ret {
        line("ret", &|h| h.push_str(ret.keyword()));
    }
    if let Some(envid) = &envelope.envid {
        line("envid", &|h| push_escaped(h, envid));
    }
    if envelope.smtputf8 {
        line("smtputf8", &|h| h.push('1'));
    }
    if envelope.eight_bit_mime {
        line("8bitmime", &|h| h.push('1'));
    }
    if let Some(filter) = &envelope.content_filter {
        line("filter", &|h| push_escaped(h, filter));
    }
    for r in &envelope.recipients {
        line("rcpt", &|h| {
            push_escaped_display(h, &r.address);
            h.push(' ');
            push_escaped_display(h, &r.original);
            if r.notify.is_some() || r.orcpt.is_some() {
                h.push(' ');
                match r.notify {
                    Some(n) => h.push_str(&n.keywords()),
                    None => h.push('-'),
                }
            }
            if let Some(orcpt) = &r.orcpt {
                h.push(' ');
                push_escaped_display(h, orcpt);
            }
        });
    }
    line("size", &|h| {
        let _ = write!(h, "{content_len}");
    });
    h.push('\n');
    h.into_bytes()
}

/// [`escape`] of `value`, appended to `out`. The common value needs no
/// escape and is copied as it is.
fn push_escaped(out: &mut String, value: &str) {
    if value
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b'%')
    {
        out.push_str(value);
    } else {
        out.push_str(&escape(value));
    }
}

/// [`push_escaped`] of what `value` displays as, written in place when it
/// needs no escape.
fn push_escaped_display(out: &mut String, value: &dyn std::fmt::Display) {
    let at = out.len();
    let _ = write!(out, "{value}");
    if !out.as_bytes()[at..]
        .iter()
        .all(|&b| (0x21..=0x7e).contains(&b) && b != b'%')
    {
        let shown = out.split_off(at);
        out.push_str(&escape(&shown));
    }
}

/// The record appended once recipient `index` reached `status`.
#[cfg(test)]
pub(crate) fn status_record(index: usize, status: &RecipientStatus) -> Vec<u8> {
    remote_status_record(index, status, None)
}

/// [`status_record`], with the reply of the server that answered.
pub(crate) fn remote_status_record(
    index: usize,
    status: &RecipientStatus,
    remote: Option<&RemoteReply>,
) -> Vec<u8> {
    let (dsn, detail) = status
        .dsn_detail()
        .unwrap_or((EnhancedCode::new(4, 0, 0), ""));
    let mut record = format!("D {index} {} {dsn} {}", status.word(), escape(detail));
    if let Some(r) = remote {
        record.push_str(&format!(" {} {}", escape(&r.mta), escape(&r.reply)));
    }
    record.push('\n');
    record.into_bytes()
}

/// The record appended once the delay warning `notice` is queued.
pub(crate) fn warning_record(notice: &QueueId) -> Vec<u8> {
    format!("W {notice}\n").into_bytes()
}

/// The record appended when an attempt ends in a deferral.
pub(crate) fn deferral_record(next_attempt: SystemTime) -> Vec<u8> {
    let secs = next_attempt
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!("T {secs}\n").into_bytes()
}

/// The record appended once the bounce notice `notice` for recipients
/// `indexes` is safely queued.
pub(crate) fn notice_record(notice: &QueueId, indexes: &[usize]) -> Vec<u8> {
    let list: Vec<String> = indexes.iter().map(usize::to_string).collect();
    format!("N {notice} {}\n", list.join(",")).into_bytes()
}

/// Parses the queue file of message `id`: [`parse`], and the `id` record
/// must name the file.
pub(crate) fn parse_named(id: &QueueId, bytes: &[u8]) -> Result<Parsed, ParseError> {
    let parsed = parse(bytes)?;
    if parsed.message.id != *id {
        return Err(ParseError::IdMismatch {
            expected: id.to_string(),
            found: parsed.message.id,
        });
    }
    Ok(parsed)
}

/// Parses a whole queue file.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, ParseError> {
    let mut lines = Lines { bytes, pos: 0 };
    match lines.next().map(|l| l.split_once(' ')) {
        Some(Some((MAGIC, VERSION))) => {}
        Some(Some((MAGIC, v))) => return Err(ParseError::Version(v.to_owned())),
        _ => return Err(ParseError::NotAQueueFile),
    }
    let mut h = HeaderFields::default();
    let mut line_no = 1;
    loop {
        line_no += 1;
        let line = lines.next().ok_or(ParseError::HeaderTruncated)?;
        if line.is_empty() {
            break;
        }
        h.apply(line).map_err(|what| ParseError::Header {
            line: line_no,
            what,
        })?;
    }
    let size = h.size.ok_or(ParseError::Missing("size"))?;
    let start = lines.pos;
    let available = bytes.len().saturating_sub(start);
    let end = usize::try_from(size)
        .ok()
        .and_then(|s| start.checked_add(s))
        .filter(|&end| end <= bytes.len())
        .ok_or(ParseError::ContentTruncated {
            expected: size,
            available: available as u64,
        })?;
    let (content, rest) = bytes.split_at(end);
    if !rest.starts_with(END_MARKER) {
        return Err(ParseError::EndMarker(end));
    }
    let mut message = QueuedMessage::fresh(
        h.id.ok_or(ParseError::Missing("id"))?,
        Envelope {
            sender: h.sender.ok_or(ParseError::Missing("sender"))?,
            recipients: h.recipients,
            client: h.client,
            client_name: h.client_name.ok_or(ParseError::Missing("client_name"))?,
            helo: h.helo,
            protocol: h.protocol.ok_or(ParseError::Missing("protocol"))?,
            arrival: h.arrival.ok_or(ParseError::Missing("arrival"))?,
            hold: h.hold.ok_or(ParseError::Missing("hold"))?,
            ret: h.ret,
            envid: h.envid,
            smtputf8: h.smtputf8.unwrap_or(false),
            eight_bit_mime: h.eight_bit_mime.unwrap_or(false),
            content_filter: h.content_filter,
        },
        content[start..].to_vec(),
    );
    let mut valid_len = end + END_MARKER.len();
    lines.pos = valid_len;
    while lines.pos < bytes.len() {
        let offset = lines.pos;
        let Some(line) = lines.next() else {
            break; // a last record without its newline: torn, ignored
        };
        match apply_record(&mut message, line) {
            Ok(()) => valid_len = lines.pos,
            Err(_) if lines.pos == bytes.len() => break, // torn last record
            Err(what) => return Err(ParseError::Record { offset, what }),
        }
    }
    Ok(Parsed { message, valid_len })
}

/// The envelope records seen so far.
#[derive(Default)]
struct HeaderFields {
    id: Option<QueueId>,
    arrival: Option<SystemTime>,
    sender: Option<ReversePath>,
    client: Option<SocketAddr>,
    client_name: Option<String>,
    helo: Option<String>,
    protocol: Option<String>,
    hold: Option<bool>,
    ret: Option<Ret>,
    envid: Option<String>,
    smtputf8: Option<bool>,
    eight_bit_mime: Option<bool>,
    content_filter: Option<String>,
    recipients: Vec<Recipient>,
    size: Option<u64>,
}

impl HeaderFields {
    fn apply(&mut self, line: &str) -> Result<(), String> {
        let (key, value) = line
            .split_once(' ')
            .ok_or_else(|| "expected \"key value\"".to_owned())?;
        fn set<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), String> {
            if slot.is_some() {
                return Err(format!("{key} given twice"));
            }
            *slot = Some(value);
            Ok(())
        }
        match key {
            "id" => set(
                &mut self.id,
                key,
                QueueId::parse(value).ok_or("bad queue id")?,
            ),
            "arrival" => set(&mut self.arrival, key, parse_time(value)?),
            "sender" => {
                let sender = match text(value)?.as_str() {
                    "" => ReversePath::Null,
                    s => ReversePath::Address(address(s)?),
                };
                set(&mut self.sender, key, sender)
            }
            "client" => set(
                &mut self.client,
                key,
                value.parse().map_err(|_| "bad client address")?,
            ),
            "client_name" => set(&mut self.client_name, key, text(value)?),
            "helo" => set(&mut self.helo, key, text(value)?),
            "protocol" => set(&mut self.protocol, key, text(value)?),
            "hold" => set(
                &mut self.hold,
                key,
                match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err("hold is neither 0 nor 1".to_owned()),
                },
            ),
            "ret" => set(
                &mut self.ret,
                key,
                match value {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Headers,
                    _ => return Err("ret is neither FULL nor HDRS".to_owned()),
                },
            ),
            "envid" => set(&mut self.envid, key, text(value)?),
            "smtputf8" => set(&mut self.smtputf8, key, flag(key, value)?),
            "8bitmime" => set(&mut self.eight_bit_mime, key, flag(key, value)?),
            "filter" => match text(value)? {
                f if f.is_empty() => Err("empty filter".to_owned()),
                f => set(&mut self.content_filter, key, f),
            },
            "rcpt" => {
                let mut fields = value.split(' ');
                let (Some(a), Some(o)) = (fields.next(), fields.next()) else {
                    return Err("rcpt needs an address and the original".to_owned());
                };
                let notify = match fields.next() {
                    None | Some("-") => None,
                    Some(n) => Some(notify(n)?),
                };
                let orcpt = fields.next().map(orcpt).transpose()?;
                if fields.next().is_some() {
                    return Err("trailing fields in rcpt".to_owned());
                }
                self.recipients.push(Recipient {
                    address: address(&text(a)?)?,
                    original: address(&text(o)?)?,
                    notify,
                    orcpt,
                });
                Ok(())
            }
            "size" => set(&mut self.size, key, value.parse().map_err(|_| "bad size")?),
            _ => Err(format!("unknown record {key:?}")),
        }
    }
}

/// Applies one status record.
fn apply_record(message: &mut QueuedMessage, line: &str) -> Result<(), String> {
    let mut fields = line.split(' ');
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some("D"), Some(index), Some(word), Some(dsn)) => {
            let detail = text(fields.next().ok_or("no detail")?)?;
            let remote = match (fields.next(), fields.next()) {
                (None, _) => None,
                (Some(mta), Some(reply)) => Some(RemoteReply {
                    mta: text(mta)?,
                    reply: text(reply)?,
                }),
                (Some(_), None) => return Err("remote MTA without its reply".to_owned()),
            };
            if fields.next().is_some() {
                return Err("trailing fields".to_owned());
            }
            let dsn = EnhancedCode::parse(dsn).ok_or("bad dsn")?;
            let status =
                RecipientStatus::from_word(word, dsn, detail).ok_or("unknown status word")?;
            let i = index
                .parse::<usize>()
                .ok()
                .filter(|&i| i < message.statuses.len())
                .ok_or("no such recipient")?;
            // A final state is never undone: that could deliver twice.
            if let (Some(slot), Some(remote_slot)) =
                (message.statuses.get_mut(i), message.remote.get_mut(i))
                && !slot.is_final()
            {
                *slot = status;
                *remote_slot = remote;
            }
            Ok(())
        }
        (Some("W"), Some(notice), None, None) => {
            QueueId::parse(notice).ok_or("bad queue id")?;
            message.warned = true;
            Ok(())
        }
        (Some("T"), Some(secs), None, None) => {
            let secs = secs.parse().map_err(|_| "bad time")?;
            message.deferrals = message.deferrals.saturating_add(1);
            message.next_attempt = UNIX_EPOCH.checked_add(Duration::from_secs(secs));
            Ok(())
        }
        (Some("N"), Some(notice), Some(indexes), None) => {
            QueueId::parse(notice).ok_or("bad queue id")?;
            for index in indexes.split(',') {
                let slot = index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| message.notified.get_mut(i))
                    .ok_or("no such recipient")?;
                *slot = true;
            }
            Ok(())
        }
        _ => Err("unknown record".to_owned()),
    }
}

/// `secs.nanoseconds` since the Unix epoch.
fn parse_time(value: &str) -> Result<SystemTime, String> {
    let (secs, nanos) = value.split_once('.').ok_or("bad time")?;
    let secs: u64 = secs.parse().map_err(|_| "bad time")?;
    let nanos: u32 = nanos
        .parse()
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or("bad time")?;
    UNIX_EPOCH
        .checked_add(Duration::new(secs, nanos))
        .ok_or_else(|| "time out of range".to_owned())
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(format!("{key} is neither 0 nor 1")),
    }
}

/// `NEVER` or `SUCCESS,FAILURE,DELAY` in any subset, as written by
/// [`Notify::keywords`].
fn notify(value: &str) -> Result<Notify, String> {
    let mut n = Notify::default();
    if value == "NEVER" {
        return Ok(n);
    }
    for word in value.split(',') {
        match word {
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => return Err(format!("bad notify {value:?}")),
        }
    }
    Ok(n)
}

fn orcpt(value: &str) -> Result<Orcpt, String> {
    let decoded = text(value)?;
    let (addr_type, address) = decoded
        .split_once(';')
        .ok_or_else(|| format!("bad orcpt {value:?}"))?;
    Ok(Orcpt {
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn text(value: &str) -> Result<String, String> {
    unescape(value).ok_or_else(|| format!("bad escape in {value:?}"))
}

fn address(s: &str) -> Result<Address, String> {
    Address::parse(s).map_err(|e| format!("bad address {s:?}: {e}"))
}

/// Newline-terminated lines of `bytes` from `pos`, as text. A line that is
/// not UTF-8 comes back as a marker that no record matches.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The next complete line without its `\n`, or `None` at a line
    /// without one (the file was cut).
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.bytes.get(self.pos..)?;
        let len = rest.iter().position(|&b| b == b'\n')?;
        self.pos += len + 1;
        Some(std::str::from_utf8(&rest[..len]).unwrap_or("\u{fffd}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{envelope, sample_content};

    fn file(id: &QueueId, env: &Envelope, content: &[u8]) -> Vec<u8> {
        let mut f = header(id, env, content.len());
        f.extend_from_slice(content);
        f.extend_from_slice(END_MARKER);
        f
    }

    fn id() -> QueueId {
        QueueId::parse("0005F3A1B2C3D4E000A1F2").unwrap()
    }

    #[test]
    fn round_trip() {
        let mut env = envelope(&["bob@example.net", "carol@example.net"]);
        env.recipients[1].original = Address::parse("Carol@Example.NET").unwrap();
        let content = sample_content();
        let parsed = parse(&file(&id(), &env, &content)).unwrap();
        assert_eq!(parsed.message.envelope, env);
        assert_eq!(parsed.message.content, content);
        assert_eq!(parsed.message.statuses, vec![RecipientStatus::Pending; 2]);
        assert_eq!(parsed.valid_len, file(&id(), &env, &content).len());
    }

    #[test]
    fn a_fresh_message_is_what_its_file_reads_back_as() {
        let mut env = envelope(&["bob@example.net", "carol@example.net"]);
        env.envid = Some("a b".to_owned());
        env.arrival = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let content = sample_content();
        let bytes = file(&id(), &env, &content);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.message, QueuedMessage::fresh(id(), env, content));
        assert_eq!(parsed.valid_len, bytes.len());
    }

    #[test]
    fn dsn_and_smtputf8_round_trip() {
        let mut env = envelope(&["bob@example.net", "carol@example.net", "dan@example.net"]);
        env.ret = Some(Ret::Headers);
        env.envid = Some("QQ 314+159".to_owned());
        env.smtputf8 = true;
        env.eight_bit_mime = true;
        env.recipients[0].notify = Some(Notify::default());
        env.recipients[1].notify = Some(Notify {
            success: true,
            failure: true,
            delay: true,
        });
        env.recipients[1].orcpt = Some(Orcpt {
            addr_type: "rfc822".to_owned(),
            address: "Carol; x@Example.NET".to_owned(),
        });
        env.recipients[2].orcpt = Some(Orcpt {
            addr_type: "utf-8".to_owned(),
            address: "dän@example.net".to_owned(),
        });
        let f = file(&id(), &env, b"x");
        let text = String::from_utf8_lossy(&f);
        assert!(text.contains("\nrcpt bob@example.net bob@example.net NEVER\n"));
        assert!(
            text.contains("\nrcpt dan@example.net dan@example.net - utf-8;d%C3%A4n@example.net\n")
        );
        assert_eq!(parse(&f).unwrap().message.envelope, env);
    }

    #[test]
    fn files_from_before_dsn_still_parse() {
        // A version 1 file as written before the DSN records existed.
        let old = b"POSTERN-QUEUE 1\nid 0005F3A1B2C3D4E000A1F2\narrival 1700000000.000000000\n\
            sender alice@example.org\nclient_name mx.example.org\nprotocol ESMTP\nhold 0\n\
            rcpt bob@example.net Bob@example.net\nsize 2\n\nhi\nPOSTERN-END\nD 0 sent 2.0.0 ok\n";
        let m = parse(old).unwrap().message;
        let r = &m.envelope.recipients[0];
        assert_eq!((r.notify, &r.orcpt), (None, &None));
        assert_eq!(r.original.to_string(), "Bob@example.net");
        assert_eq!((m.envelope.ret, m.envelope.smtputf8), (None, false));
        assert_eq!(m.envelope.content_filter, None);
        assert!(m.is_done());
    }

    #[test]
    fn the_content_filter_round_trips() {
        let mut env = envelope(&["bob@example.net"]);
        env.content_filter = Some("smtp:[127.0.0.1]:10025".to_owned());
        let f = file(&id(), &env, b"x");
        let text = String::from_utf8_lossy(&f);
        assert!(text.contains("\nfilter smtp:[127.0.0.1]:10025\n"), "{text}");
        assert_eq!(parse(&f).unwrap().message.envelope, env);
        // Hostile text stays one record.
        env.content_filter = Some("smtp:x\nrcpt a@b.c a@b.c".to_owned());
        assert_eq!(
            parse(&file(&id(), &env, b"x")).unwrap().message.envelope,
            env
        );
        // Twice, or empty, is corruption.
        let twice = text.replace("filter ", "filter smtp:[a]\nfilter ");
        assert!(parse(twice.as_bytes()).is_err());
        let empty = text.replace("filter smtp:[127.0.0.1]:10025", "filter ");
        assert!(parse(empty.as_bytes()).is_err());
    }

    #[test]
    fn null_sender_no_client_no_helo() {
        let mut env = envelope(&["bob@example.net"]);
        env.sender = ReversePath::Null;
        env.client = None;
        env.helo = Some(String::new());
        let parsed = parse(&file(&id(), &env, b"")).unwrap();
        assert_eq!(parsed.message.envelope, env);
        env.helo = None;
        let parsed = parse(&file(&id(), &env, b"")).unwrap();
        assert_eq!(parsed.message.envelope, env);
    }

    #[test]
    fn header_bytes_are_the_documented_layout() {
        let mut env = envelope(&["bob@example.net"]);
        env.arrival = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        env.recipients[0].original = Address::parse("\"B%b\"@example.net").unwrap();
        env.helo = Some("h\u{e9}lo x".to_owned());
        let want = "POSTERN-QUEUE 1\nid 0005F3A1B2C3D4E000A1F2\n\
                    arrival 1700000000.000000005\nsender alice@example.org\n\
                    client 192.0.2.7:41234\nclient_name mx.example.org\n\
                    helo h%C3%A9lo%20x\nprotocol ESMTP\nhold 0\n\
                    rcpt bob@example.net \"B%25b\"@example.net\nsize 12\n\n";
        assert_eq!(String::from_utf8(header(&id(), &env, 12)).unwrap(), want);
    }

    #[test]
    fn hostile_text_stays_in_its_record() {
        let mut env = envelope(&["\"a\tb\"@example.net"]);
        env.helo = Some("evil\r\nrcpt x@y.z y@y.z\r\n\r\nsize 0".to_owned());
        env.client_name = "a b%20c".to_owned();
        let parsed = parse(&file(&id(), &env, b"x")).unwrap();
        assert_eq!(parsed.message.envelope, env);
    }

    #[test]
    fn status_records() {
        let env = envelope(&["a@x.org", "b@x.org", "c@x.org"]);
        let mut f = file(&id(), &env, b"hi");
        let sent = RecipientStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: "delivered to maildir".to_owned(),
        };
        let deferred = RecipientStatus::Deferred {
            dsn: EnhancedCode::new(4, 3, 0),
            detail: "disk full\r\nD 2 sent 2.0.0 x".to_owned(),
        };
        f.extend(status_record(0, &sent));
        f.extend(status_record(1, &deferred));
        f.extend(deferral_record(UNIX_EPOCH + Duration::from_secs(1000)));
        // A final state is sticky.
        f.extend(status_record(0, &deferred));
        let m = parse(&f).unwrap().message;
        assert_eq!(m.statuses[0], sent);
        assert_eq!(m.statuses[1], deferred);
        assert_eq!(m.statuses[2], RecipientStatus::Pending);
        assert_eq!(m.deferrals, 1);
        assert_eq!(m.next_attempt, Some(UNIX_EPOCH + Duration::from_secs(1000)));
        let pending: Vec<usize> = m.pending().map(|(i, _)| i).collect();
        assert_eq!(pending, [1, 2]);
        assert!(!m.is_done());
    }

    #[test]
    fn remote_replies_and_the_warning_are_recorded() {
        let env = envelope(&["a@x.org", "b@x.org"]);
        let mut f = file(&id(), &env, b"hi");
        let remote = RemoteReply {
            mta: "mx.x.org".to_owned(),
            reply: "450 4.2.0 <a@x.org>: try later".to_owned(),
        };
        let deferred = RecipientStatus::Deferred {
            dsn: EnhancedCode::new(4, 2, 0),
            detail: "host mx.x.org[192.0.2.1] said: 450 4.2.0 try later".to_owned(),
        };
        f.extend(remote_status_record(0, &deferred, Some(&remote)));
        f.extend(status_record(1, &deferred));
        let m = parse(&f).unwrap().message;
        assert_eq!(m.remote, [Some(remote.clone()), None]);
        assert_eq!(m.statuses[0], deferred);
        assert!(!m.warned);
        assert_eq!(m.delayed(), [0, 1]);
        f.extend(warning_record(&id()));
        // A later attempt without a server's answer clears the old one.
        f.extend(status_record(0, &deferred));
        let m = parse(&f).unwrap().message;
        assert!(m.warned);
        assert_eq!(m.remote, [None, None]);
        // Half a remote part is corruption.
        f.extend_from_slice(b"D 0 deferred 4.0.0 x mx.x.org\n");
        f.extend(status_record(1, &deferred));
        assert!(matches!(parse(&f), Err(ParseError::Record { .. })));
    }

    #[test]
    fn delay_warnings_follow_notify() {
        let mut env = envelope(&["a@x.org", "b@x.org", "c@x.org", "d@x.org"]);
        let n = |delay, failure| {
            Some(Notify {
                success: false,
                failure,
                delay,
            })
        };
        env.recipients[1].notify = n(false, true);
        env.recipients[2].notify = n(false, false);
        env.recipients[3].notify = n(true, false);
        let mut f = file(&id(), &env, b"hi");
        let deferred = RecipientStatus::Deferred {
            dsn: EnhancedCode::new(4, 4, 1),
            detail: "connect to x: refused".to_owned(),
        };
        for i in 0..4 {
            f.extend(status_record(i, &deferred));
        }
        assert_eq!(parse(&f).unwrap().message.delayed(), [0, 3]);
    }

    #[test]
    fn torn_last_record_is_ignored() {
        let env = envelope(&["a@x.org", "b@x.org"]);
        let mut f = file(&id(), &env, b"hi");
        let sound = f.len();
        let record = status_record(
            0,
            &RecipientStatus::Sent {
                dsn: EnhancedCode::new(2, 0, 0),
                detail: "ok".to_owned(),
            },
        );
        for cut in 1..record.len() {
            let mut torn = f.clone();
            torn.extend_from_slice(&record[..cut]);
            let p = parse(&torn).unwrap();
            assert_eq!(p.valid_len, sound, "cut {cut}");
            assert!(!p.message.statuses[0].is_final());
        }
        // A malformed record followed by more is corruption, not a tear.
        f.extend_from_slice(b"D 9 sent 2.0.0 x\n");
        f.extend_from_slice(&record);
        assert!(matches!(parse(&f), Err(ParseError::Record { .. })));
    }

    #[test]
    fn every_truncation_fails() {
        let env = envelope(&["bob@example.net"]);
        let f = file(&id(), &env, &sample_content());
        for cut in 0..f.len() {
            assert!(parse(&f[..cut]).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let env = envelope(&["bob@example.net"]);
        let f = file(&id(), &env, b"body");
        // Flip every byte in turn: any outcome but a panic is fine.
        for i in 0..f.len() {
            for x in [0x00u8, 0x0a, 0x20, 0x39, 0xff] {
                let mut g = f.clone();
                g[i] = x;
                let _ = parse(&g);
            }
        }
        let mut huge = header(&id(), &env, 0);
        let s = String::from_utf8(huge.clone()).unwrap();
        huge = s
            .replace("size 0", "size 18446744073709551615")
            .into_bytes();
        assert!(matches!(
            parse(&huge),
            Err(ParseError::ContentTruncated { .. })
        ));
        assert_eq!(
            parse(b"POSTERN-QUEUE 2\n").err(),
            Some(ParseError::Version("2".to_owned()))
        );
        assert_eq!(parse(b"").err(), Some(ParseError::NotAQueueFile));
    }
}
