//! IMAP: the framer that cuts input into commands with their literals,
//! and the command parser (`postern_imap::codec`).

use postern_imap::codec::{Frame, Framer, Request};

/// Line caps to try (the command's text, literals excluded). At least 80:
/// the framer names the tag of an over-long line from its first 80 bytes,
/// so under a smaller cap that tag would depend on the read split (found
/// by this target with a cap of 64; the server's cap is 64 KiB).
const MAX_LINE: [usize; 4] = [80, 200, 1024, 65536];

/// Literal caps to try.
const MAX_LITERAL: [usize; 4] = [0, 4, 64, 1 << 20];

/// The same frames whatever the read splits; no command larger than its
/// caps allow (the framer's memory bound); every command parsed without
/// a panic.
pub fn imap_command(data: &[u8]) {
    let (ctrl, stream) = crate::control(data);
    let max_line = MAX_LINE[usize::from(ctrl & 3)];
    let max_literal = MAX_LITERAL[usize::from(ctrl >> 2 & 3)];
    let whole = frames(&[stream], max_line, max_literal);
    let split = frames(&crate::reads(stream, ctrl), max_line, max_literal);
    assert_eq!(whole, split, "frames depend on how the reads were cut");
    for frame in &whole {
        if let Frame::Command(command) = frame {
            assert!(
                command.len() <= max_line + max_literal,
                "a command of {} bytes passed caps of {max_line} + {max_literal}",
                command.len()
            );
            parse(command);
        }
    }
    parse(stream);
}

fn frames(reads: &[&[u8]], max_line: usize, max_literal: usize) -> Vec<Frame> {
    let mut framer = Framer::new(max_line, max_literal);
    crate::drive(reads, |buf| framer.decode(buf))
}

fn parse(command: &[u8]) {
    match Request::parse(command) {
        Ok(request) => {
            let _ = request.command.enables_condstore();
            let _ = format!("{request:?}");
        }
        Err((tag, e)) => {
            // Both go back to the client in a `tag BAD text` line.
            if let Some(tag) = &tag {
                assert!(
                    !tag.is_empty() && !tag.bytes().any(|b| b <= b' ' || b == 0x7f),
                    "tag {tag:?} would break the response line"
                );
            }
            assert!(
                !e.0.contains(['\r', '\n']),
                "error text {:?} would break the response line",
                e.0
            );
        }
    }
}
