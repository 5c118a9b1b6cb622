//! The `message` import: what an end-of-data plugin reads of the message
//! being received, and the header fields it adds (Postfix's milter
//! `SMFIR_ADDHEADER`, or an access map's PREPEND, from inside the plugin).
//!
//! The host hands out a resource per `current()` call; each holds the
//! message by reference count, so reading never copies the body except
//! into the guest's own memory, a bounded slice at a time. The header is
//! split into fields once per message and shared by every handle.
//!
//! Parsed by hand rather than with mail-parser: a plugin asks for the raw
//! fields (unfolded, not decoded), which is a line scan; mail-parser would
//! decode every part of the message to answer it.

use std::sync::{Arc, OnceLock};

use postern_mail::MessageContent;
use wasmtime::component::Resource;

use crate::bindings::postern::policy::message::{HeaderField, Host, HostMessage};
use crate::host::State;

/// The most bytes one `read-body` call returns.
const MAX_READ: u32 = 1 << 20;
/// The most header fields one request may add.
const MAX_ADDED: usize = 32;
/// RFC 5322 §2.1.1: a line is at most 998 characters.
const MAX_FIELD: usize = 998;
/// The most message handles a store holds at once: `current()` in a loop
/// without dropping them would otherwise grow the host's table.
const MAX_HANDLES: usize = 16;

/// The host side of one `message` handle.
#[derive(Debug)]
pub struct MessageView {
    message: Arc<Parsed>,
}

/// The message of one end-of-data request, with its header split once.
#[derive(Debug)]
pub(crate) struct Parsed {
    content: MessageContent,
    /// Where the body starts: after the empty line that ends the header.
    body_start: usize,
    fields: OnceLock<Vec<HeaderField>>,
}

impl Parsed {
    pub(crate) fn new(content: MessageContent) -> Parsed {
        let body_start = body_start(content.bytes());
        Parsed {
            content,
            body_start,
            fields: OnceLock::new(),
        }
    }

    fn fields(&self) -> &[HeaderField] {
        self.fields
            .get_or_init(|| fields(&self.content.bytes()[..self.body_start]))
    }

    fn body(&self) -> &[u8] {
        &self.content.bytes()[self.body_start..]
    }
}

/// The offset of the body: past the first empty line, or the end of the
/// message when there is none (all header). A message that starts with an
/// empty line has no header.
fn body_start(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\r\n") {
        return 2;
    }
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |at| at + 4)
}

/// The header's fields, folded lines joined. A line that is neither a
/// field nor a continuation (no colon) is skipped, as a reader of a
/// damaged header would.
fn fields(header: &[u8]) -> Vec<HeaderField> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, value)) = out.last_mut() {
                value.extend_from_slice(line);
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            out.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
        }
    }
    out.into_iter()
        .map(|(name, value)| HeaderField {
            name: String::from_utf8_lossy(name.trim_ascii()).into_owned(),
            value: String::from_utf8_lossy(value.trim_ascii()).into_owned(),
        })
        .collect()
}

/// Checks a field a plugin adds; returns the line to prepend.
pub(crate) fn header_line(name: &str, value: &str) -> Result<String, String> {
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(format!(
            "header name {:?} is not printable US-ASCII without ':' and spaces",
            crate::host::one_line(name, 64)
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "the value of header {name} holds a line break or control character"
        ));
    }
    let line = format!("{name}: {}", value.trim());
    if line.len() > MAX_FIELD {
        return Err(format!(
            "header {name} is {} bytes long, more than {MAX_FIELD}",
            line.len()
        ));
    }
    Ok(line)
}

impl State {
    fn view(&self, handle: &Resource<MessageView>) -> wasmtime::Result<Arc<Parsed>> {
        Ok(self.table.get(handle)?.message.clone())
    }
}

impl Host for State {
    fn current(&mut self) -> wasmtime::Result<Option<Resource<MessageView>>> {
        let Some(message) = self.message.clone() else {
            return Ok(None);
        };
        // A verdict that read the message is not the request's alone.
        self.uncacheable = true;
        if self.handles >= MAX_HANDLES {
            return Err(wasmtime::Error::msg(format!(
                "message: more than {MAX_HANDLES} handles held at once"
            )));
        }
        self.handles += 1;
        Ok(Some(self.table.push(MessageView { message })?))
    }
}

impl HostMessage for State {
    fn headers(&mut self, handle: Resource<MessageView>) -> wasmtime::Result<Vec<HeaderField>> {
        Ok(self.view(&handle)?.fields().to_vec())
    }

    fn header(
        &mut self,
        handle: Resource<MessageView>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        let message = self.view(&handle)?;
        Ok(message
            .fields()
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(&name))
            .map(|f| f.value.clone())
            .collect())
    }

    fn size(&mut self, handle: Resource<MessageView>) -> wasmtime::Result<u64> {
        Ok(self.view(&handle)?.content.bytes().len() as u64)
    }

    fn body_size(&mut self, handle: Resource<MessageView>) -> wasmtime::Result<u64> {
        Ok(self.view(&handle)?.body().len() as u64)
    }

    fn read_body(
        &mut self,
        handle: Resource<MessageView>,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        let message = self.view(&handle)?;
        let body = message.body();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(body.len());
        let length = length.min(MAX_READ) as usize;
        let end = start.saturating_add(length).min(body.len());
        Ok(body[start..end].to_vec())
    }

    fn add_header(
        &mut self,
        _handle: Resource<MessageView>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        if self.added.len() >= MAX_ADDED {
            return Ok(Err(format!(
                "no more than {MAX_ADDED} header fields may be added"
            )));
        }
        Ok(header_line(&name, &value).map(|line| self.added.push(line)))
    }

    fn drop(&mut self, handle: Resource<MessageView>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.handles = self.handles.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Parsed {
        Parsed::new(MessageContent::new(text.as_bytes().to_vec()))
    }

    #[test]
    fn fields_are_unfolded_and_trimmed() {
        let m = parsed("Subject: a\r\n  b\r\nX-Empty:\r\nbroken line\r\nTo:  c@d \r\n\r\nbody\r\n");
        let fields: Vec<_> = m
            .fields()
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("Subject", "a  b"), ("X-Empty", ""), ("To", "c@d")]
        );
        assert_eq!(m.body(), b"body\r\n");
    }

    #[test]
    fn a_message_without_header_or_body() {
        assert_eq!(parsed("\r\nonly body").body(), b"only body");
        assert!(parsed("\r\nonly body").fields().is_empty());
        let all_header = parsed("A: b\r\n");
        assert_eq!(all_header.body(), b"");
        assert_eq!(all_header.fields().len(), 1);
    }

    #[test]
    fn added_fields_are_checked() {
        assert_eq!(header_line("X-Spam", " yes ").as_deref(), Ok("X-Spam: yes"));
        assert!(header_line("X Spam", "yes").is_err());
        assert!(header_line("X:Spam", "yes").is_err());
        assert!(header_line("", "yes").is_err());
        assert!(header_line("X-A", "a\r\nBcc: evil@example.org").is_err());
        assert!(header_line("X-A", &"a".repeat(1000)).is_err());
        assert_eq!(header_line("X-Ü", "a").ok(), None);
        assert_eq!(
            header_line("X-A", "ünïcode\tok").ok().as_deref(),
            Some("X-A: ünïcode\tok")
        );
    }
}
