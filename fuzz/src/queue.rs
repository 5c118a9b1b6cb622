//! Queue files (`postern_queue::format`): what the daemon reads back from
//! its own disk at every start and every delivery, after crashes, power
//! cuts and whatever else may have changed the bytes.

use postern_queue::format::{new_file, read_file};

/// `data` is a queue file. Checks: reading never panics; a file that
/// reads is a message the writer can write again, and what it writes
/// reads back as the same message (envelope and content), with a
/// checksum that holds: the parser accepts nothing the writer cannot
/// say, and the writer's output always passes the parser.
pub fn queue_file(data: &[u8]) {
    let Ok(message) = read_file(data) else {
        return;
    };
    let again = new_file(&message.id, &message.envelope, &message.content);
    let back =
        read_file(&again).unwrap_or_else(|e| panic!("the writer's file does not read back: {e}"));
    assert_eq!(back.id, message.id);
    assert_eq!(back.envelope, message.envelope);
    assert_eq!(back.content, message.content);
    // Every recipient of a new file is pending, whatever `data` said.
    assert!(back.statuses.iter().all(|s| !s.is_final()));
    // One changed bit of the content is always caught (CRC-32 misses
    // no single-bit error). The content ends before the end marker,
    // `\nPOSTERN-END\n`.
    if !message.content.is_empty() {
        let at = again.len() - END_MARKER_LEN - message.content.len() / 2 - 1;
        let mut changed = again;
        changed[at] ^= 0x01;
        assert!(
            read_file(&changed).is_err(),
            "a changed content byte read back"
        );
    }
}

/// The length of the end marker after the content.
const END_MARKER_LEN: usize = "\nPOSTERN-END\n".len();
