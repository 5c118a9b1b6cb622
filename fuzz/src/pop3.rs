//! POP3: the line reader, the command parser and the multi-line response
//! writer (`postern_pop3::codec`).

use postern_pop3::codec::response;
use postern_pop3::codec::{Command, LineEvent, LineReader};

/// Line caps to try: none, tiny, and RFC 2449 §4's 255.
const MAX_LINE: [usize; 4] = [0, 4, 40, 255];

/// The same lines whatever the read splits, none over the cap; each
/// parsed without a panic, its error a one-line `-ERR`; and the stream,
/// sent as a message body (RETR/TOP), stuffed so that only the last line
/// is `.` and the client gets the content's lines back.
pub fn pop3_command(data: &[u8]) {
    let (ctrl, stream) = crate::control(data);
    let max = MAX_LINE[usize::from(ctrl & 3)];
    let whole = lines(&[stream], max);
    let split = lines(&crate::reads(stream, ctrl), max);
    assert_eq!(whole, split, "lines depend on how the reads were cut");
    for line in whole.iter().flatten() {
        assert!(line.len() <= max, "a line over the cap got through");
        parse(line);
    }
    parse(stream);
    let top = (ctrl & 0x80 != 0).then_some(u32::from(ctrl >> 4 & 7));
    message(stream, top);
}

fn lines(reads: &[&[u8]], max: usize) -> Vec<Option<Vec<u8>>> {
    let mut reader = LineReader::new(max);
    crate::drive(reads, |buf| {
        let (used, event) = reader.decode(buf);
        let unit = event.map(|e| match e {
            LineEvent::Line(text) => Some(text.to_vec()),
            LineEvent::TooLong => None,
        });
        (used, unit)
    })
}

fn parse(line: &[u8]) {
    match Command::parse(line) {
        Ok(command) => {
            let _ = format!("{command:?}");
        }
        Err(e) => crate::assert_one_line(&response::err(&e.to_string())),
    }
}

/// RFC 1939 §3: the body's lines, each dot-stuffed, then `.` alone.
fn message(content: &[u8], top: Option<u32>) {
    let mut out = Vec::new();
    let sent = response::message(&mut out, content, top);
    let body = out
        .strip_suffix(b".\r\n")
        .unwrap_or_else(|| panic!("no final dot: {out:?}"));
    assert!(body.is_empty() || body.ends_with(b"\r\n"));
    let mut got = Vec::new();
    let mut unstuffed = 0u64;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let text = line
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("line without CRLF: {line:?}"));
        assert_ne!(text, b".", "a body line ends the response early");
        let text = text.strip_prefix(b".").unwrap_or(text);
        unstuffed += text.len() as u64 + 2;
        got.push(text.to_vec());
    }
    assert_eq!(sent, unstuffed, "octet count");
    // The content's lines (LF or CRLF ended), in order; TOP stops early.
    let want: Vec<Vec<u8>> = content
        .split_inclusive(|&b| b == b'\n')
        .map(|l| {
            let l = l.strip_suffix(b"\n").unwrap_or(l);
            l.strip_suffix(b"\r").unwrap_or(l).to_vec()
        })
        .collect();
    if top.is_none() {
        assert_eq!(got, want);
    } else {
        assert!(want.starts_with(&got), "TOP sent lines the message lacks");
    }
}
