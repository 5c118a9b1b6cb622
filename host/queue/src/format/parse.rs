//! Reading a queue file back: the envelope records into an [`Envelope`],
//! the content checked against its length and the end marker, then the
//! status records applied in order. Apart from the writer because it
//! trusts nothing: every length is checked against the file, every value
//! decoded, and a torn last record is told from corruption.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postern_mail::{
    Address, EnhancedCode, Envelope, Notify, Orcpt, QueueId, Recipient, RemoteReply, Ret,
    ReversePath,
};

use super::{END_MARKER, MAGIC, QueuedMessage, SUM, VERSION};
use crate::error::ParseError;
use crate::status::{RecipientStatus, unescape};

/// A parsed file, and how much of it is sound.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub message: QueuedMessage,
    /// The length up to the last complete record; less than the file's
    /// length when a torn last record must be cut off before appending.
    pub valid_len: usize,
    /// Whether the file has a `sum` record (which then matched): only
    /// such a file is trusted to be the message it names where its name
    /// says otherwise (recovery.rs, spare.rs).
    pub summed: bool,
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
    // The checksum of what follows its line, when the file has one (a
    // file written before the record existed has not).
    let mut line_no = 1;
    let after_magic = lines.pos;
    let sum = match lines.next().map(|l| l.split_once(' ')) {
        Some(Some((SUM, hex))) => {
            line_no += 1;
            let sum = (hex.len() == 8)
                .then(|| u32::from_str_radix(hex, 16).ok())
                .flatten()
                .ok_or_else(|| ParseError::Header {
                    line: line_no,
                    what: format!("sum {hex:?} is not eight hex digits"),
                })?;
            Some((sum, lines.pos))
        }
        _ => {
            lines.pos = after_magic;
            None
        }
    };
    let mut h = HeaderFields::default();
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
    if let Some((expected, from)) = sum {
        let found = crc32fast::hash(&bytes[from..end + END_MARKER.len()]);
        if found != expected {
            return Err(ParseError::Checksum { expected, found });
        }
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
    Ok(Parsed {
        message,
        valid_len,
        summed: sum.is_some(),
    })
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
