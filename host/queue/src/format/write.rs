//! Writing a queue file: the envelope part, escaped record by record,
//! and the status records appended after each attempt. Apart from the
//! parser because this side runs for every message received, before its
//! 250, and is kept lean; [`super::parse()`] reads back what it writes.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use postern_mail::{EnhancedCode, Envelope, QueueId, RemoteReply, ReversePath};

use super::{END_MARKER, MAGIC, SUM, VERSION};
use crate::status::{RecipientStatus, escape};

/// The envelope part, up to and including the blank line, for `content`:
/// its `sum` record is the checksum of what follows it (the rest of the
/// envelope, `content` and the end marker).
pub(crate) fn header(id: &QueueId, envelope: &Envelope, content: &[u8]) -> Vec<u8> {
    let content_len = content.len();
    // One buffer, values escaped into it and numbers written with `write!`:
    // this runs for every message received, before its 250.
    let mut h = String::with_capacity(256 + 128 * envelope.recipients.len());
    // The sum is filled in at the end, once what it covers is written.
    for part in [MAGIC, " ", VERSION, "\n", SUM, " 00000000\n"] {
        h.push_str(part);
    }
    let covered = h.len();
    // Writing to a String cannot fail.
    let mut line = |key: &str, value: &dyn Fn(&mut String)| {
        h.push_str(key);
        h.push(' ');
        value(&mut h);
        h.push('\n');
    };
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
    let mut sum = crc32fast::Hasher::new();
    sum.update(&h.as_bytes()[covered..]);
    sum.update(content);
    sum.update(END_MARKER);
    // Eight hex digits over the eight zeros, before the newline.
    h.replace_range(covered - 9..covered - 1, &format!("{:08x}", sum.finalize()));
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
