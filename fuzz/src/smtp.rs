//! SMTP: the command-line reader and parser, and the DATA decoder
//! (`postern_smtp::codec`).

use postern_mail::ReversePath;
use postern_smtp::codec::{
    BareNewline, Body, Command, DataDecoder, DataError, ForwardPath, LineEvent, LineReader, xtext,
};

/// Line limits to try: the minimum, small, Postfix's default
/// (`line_length_limit` 2048) and a large one.
const LINE_LIMITS: [usize; 4] = [3, 16, 2048, 1 << 16];

/// `message_size_limit`s to try: none kept, tiny, and roomy.
const SIZE_LIMITS: [u64; 6] = [0, 1, 5, 16, 100, 1 << 20];

/// The command phase: cut into lines under random read splits (the same
/// lines whatever the split, none over the limit), each parsed; a parsed
/// command, written back out, parses to the same command; every error
/// has a one-line reply.
pub fn smtp_command(data: &[u8]) {
    let (ctrl, stream) = crate::control(data);
    let limit = LINE_LIMITS[usize::from(ctrl & 3)];
    let whole = lines(&[stream], limit);
    let split = lines(&crate::reads(stream, ctrl), limit);
    assert_eq!(whole, split, "lines depend on how the reads were cut");
    for line in whole.iter().flatten() {
        // The limit counts the line end (RFC 5321 §4.5.3.1.4).
        assert!(line.len() < limit, "a line over the limit got through");
        check_command(line);
    }
    check_command(stream);
}

/// The lines a session would see (`None` for a line too long).
fn lines(reads: &[&[u8]], limit: usize) -> Vec<Option<Vec<u8>>> {
    let mut reader = LineReader::new(limit);
    crate::drive(reads, |buf| {
        let (used, event) = reader.decode(buf);
        let unit = event.map(|e| match e {
            LineEvent::Line { text, .. } => Some(text.to_vec()),
            LineEvent::TooLong => None,
        });
        (used, unit)
    })
}

fn check_command(line: &[u8]) {
    match Command::parse(line) {
        Ok(command) => {
            let _ = command.verb();
            if let Some(wire) = write(&command) {
                let again = Command::parse(wire.as_bytes())
                    .unwrap_or_else(|e| panic!("{command:?} written as {wire:?}: {e}"));
                assert_eq!(again, command, "written as {wire:?}");
            }
        }
        Err(e) => {
            let _ = e.verb();
            crate::assert_one_line(e.reply().to_wire().as_bytes());
        }
    }
}

/// The command as a client (our own outbound one included) writes it.
/// `None` for variants this version does not know.
fn write(command: &Command) -> Option<String> {
    Some(match command {
        Command::Helo(s) => format!("HELO {s}"),
        Command::Ehlo(s) => format!("EHLO {s}"),
        Command::Mail(m) => {
            let mut out = match &m.sender {
                ReversePath::Null => "MAIL FROM:<>".to_owned(),
                ReversePath::Address(a) => format!("MAIL FROM:<{a}>"),
            };
            if let Some(size) = m.size {
                out.push_str(&format!(" SIZE={size}"));
            }
            match m.body {
                Some(Body::SevenBit) => out.push_str(" BODY=7BIT"),
                Some(Body::EightBitMime) => out.push_str(" BODY=8BITMIME"),
                None => {}
            }
            if m.smtputf8 {
                out.push_str(" SMTPUTF8");
            }
            if let Some(ret) = m.ret {
                out.push_str(&format!(" RET={}", ret.keyword()));
            }
            if let Some(envid) = &m.envid {
                out.push_str(&format!(" ENVID={}", xtext::encode(envid)));
            }
            out
        }
        Command::Rcpt(r) => {
            let mut out = match &r.recipient {
                ForwardPath::Postmaster => "RCPT TO:<Postmaster>".to_owned(),
                ForwardPath::Address(a) => format!("RCPT TO:<{a}>"),
            };
            if let Some(n) = r.notify {
                out.push_str(&format!(" NOTIFY={}", n.keywords()));
            }
            if let Some(o) = &r.orcpt {
                out.push_str(&format!(
                    " ORCPT={};{}",
                    o.addr_type,
                    xtext::encode(&o.address)
                ));
            }
            out
        }
        Command::Data => "DATA".to_owned(),
        Command::Rset => "RSET".to_owned(),
        Command::Noop => "NOOP".to_owned(),
        Command::Quit => "QUIT".to_owned(),
        Command::Help => "HELP".to_owned(),
        Command::StartTls => "STARTTLS".to_owned(),
        Command::Vrfy(s) => format!("VRFY {s}"),
        Command::Auth(s) if s.is_empty() => "AUTH".to_owned(),
        Command::Auth(s) => format!("AUTH {s}"),
        Command::Etrn(s) => format!("ETRN {s}"),
        Command::Bdat { size, last: true } => format!("BDAT {size} LAST"),
        Command::Bdat { size, last: false } => format!("BDAT {size}"),
        _ => return None,
    })
}

/// DATA: the decoder, fed under random read splits, agrees with a slow
/// obvious oracle on where the data ends and what the content is (so only
/// `<CRLF>.<CRLF>` ends it, whatever the split); keeps no more than the
/// size limit; and content it accepts, dot-stuffed again as a relay would
/// send it, decodes to itself (nothing smuggled on the next hop).
pub fn smtp_data(data: &[u8]) {
    let (ctrl, stream) = crate::control(data);
    let mode = if ctrl & 1 == 0 {
        BareNewline::Normalize
    } else {
        BareNewline::Reject
    };
    let limit = SIZE_LIMITS[usize::from(ctrl >> 1) % SIZE_LIMITS.len()];
    let (used, decoder) = decode(&crate::reads(stream, ctrl), limit, mode);
    match oracle(stream) {
        None => {
            assert_eq!(used, stream.len(), "stopped before any end of data");
            assert!(!decoder.is_done(), "ended without <CRLF>.<CRLF>");
            assert_eq!(decoder.finish(), Err(DataError::Incomplete));
        }
        Some(want) => {
            assert_eq!(used, want.end, "end of data in the wrong place");
            assert!(decoder.is_done());
            assert_eq!(decoder.size(), want.content.len() as u64, "size");
            let expected = if want.bare && mode == BareNewline::Reject {
                Err(DataError::BareNewline)
            } else if want.content.len() as u64 > limit {
                Err(DataError::TooBig {
                    size: want.content.len() as u64,
                })
            } else {
                Ok(want.content)
            };
            let got = decoder.finish();
            assert_eq!(got, expected);
            if let Ok(content) = got {
                relay_round_trip(&content);
            }
        }
    }
}

/// Feeds `reads` as a session does (each read whole, until the decoder
/// says it is done); returns the bytes consumed and the decoder.
fn decode(reads: &[&[u8]], limit: u64, mode: BareNewline) -> (usize, DataDecoder) {
    let mut decoder = DataDecoder::new(limit, mode);
    let mut used = 0;
    for read in reads {
        let n = decoder.decode(read);
        used += n;
        if decoder.is_done() {
            assert_eq!(decoder.decode(b".\r\n"), 0, "consumed after the end");
            break;
        }
        assert_eq!(n, read.len(), "stopped early without the end of data");
    }
    (used, decoder)
}

/// Content that went through the decoder is canonical CRLF text: stuffed
/// and sent on, it must come back byte for byte, ending where it should.
fn relay_round_trip(content: &[u8]) {
    let mut wire = Vec::with_capacity(content.len() + 8);
    for line in content.split_inclusive(|&b| b == b'\n') {
        assert!(
            line.ends_with(b"\r\n"),
            "content line without CRLF: {line:?}"
        );
        assert!(
            !line[..line.len() - 2].contains(&b'\r') && !line[..line.len() - 2].contains(&b'\n'),
            "bare CR or LF kept in content: {line:?}"
        );
        if line.first() == Some(&b'.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    wire.extend_from_slice(b".\r\nQUIT\r\n");
    let mut decoder = DataDecoder::new(u64::MAX, BareNewline::Reject);
    let used = decoder.decode(&wire);
    assert_eq!(used, wire.len() - 6, "the relayed copy ends elsewhere");
    assert_eq!(decoder.finish().as_deref(), Ok(content));
}

/// What the oracle says about a stream that ends.
struct Expected {
    /// Bytes up to and including the final LF.
    end: usize,
    /// The content, unstuffed, line ends made CRLF.
    content: Vec<u8>,
    /// Whether a bare CR or LF came before the end.
    bare: bool,
}

/// The specification, the slow obvious way: the data ends at the first
/// `<CRLF>.<CRLF>` of the stream counting the CRLF of the DATA command
/// (RFC 5321 §4.1.1.4); the content before it is split at CRLF, bare CR
/// and bare LF; a leading dot is removed from lines that follow a CRLF
/// (§4.5.2).
fn oracle(input: &[u8]) -> Option<Expected> {
    let stream = [b"\r\n", input].concat();
    let k = stream.windows(5).position(|w| w == b"\r\n.\r\n")?;
    let raw = &input[..k];
    let mut content = Vec::new();
    let mut bare = false;
    let (mut i, mut after_crlf, mut line_start) = (0, true, true);
    while i < raw.len() {
        let b = raw[i];
        if line_start && after_crlf && b == b'.' {
            i += 1;
            line_start = false;
            continue;
        }
        line_start = false;
        if b == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            content.extend_from_slice(b"\r\n");
            (i, after_crlf, line_start) = (i + 2, true, true);
        } else if b == b'\r' || b == b'\n' {
            content.extend_from_slice(b"\r\n");
            bare = true;
            (i, after_crlf, line_start) = (i + 1, false, true);
        } else {
            content.push(b);
            i += 1;
        }
    }
    Some(Expected {
        end: k + 3,
        content,
        bare,
    })
}
