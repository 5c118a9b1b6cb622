//! A short, deterministic fuzz run over the framer, the command parser,
//! the MIME parser and SEARCH's decoders: IMAP-shaped fragments in
//! random order, none of
//! which may panic or loop (rustls runs its fuzz targets the same way
//! in CI, briefly).

use super::{Frame, Framer, Request};

const PIECES: &[&[u8]] = &[
    b"a1 ",
    b"FETCH ",
    b"UID ",
    b"1:*",
    b" (",
    b")",
    b"BODY[",
    b"]",
    b"<0.5>",
    b"\"",
    b"\\",
    b"{3}\r\n",
    b"{2+}\r\n",
    b"{99999999999}\r\n",
    b"\r\n",
    b"\n",
    b"SEARCH ",
    b"OR ",
    b"NOT ",
    b"HEADER.FIELDS ",
    b"*",
    b"%",
    b"\xff",
    b" ",
    b"APPEND ",
    b"INBOX",
    b"STORE ",
    b"+FLAGS ",
    b"\\Seen",
    b"0",
    b"4294967296",
    b"LIST ",
    b"STATUS ",
    b"CHARSET ",
    b"1.2.MIME",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"--b\r\n",
    b"--b--",
    b"From: <a@b>, (c",
    b"(CHANGEDSINCE ",
    b"(UNCHANGEDSINCE ",
    b"VANISHED",
    b"MODSEQ ",
    b"SELECT ",
    b"(QRESYNC (",
    b"(CONDSTORE)",
    b"9223372036854775808",
    b"=?utf-8?b?w6k=?=",
    b"=?koi8-r?q?=F0_",
    b"Content-Transfer-Encoding: base64\r\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut input = Vec::new();
        for _ in 0..rng.below(16) {
            input.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
        let _ = Request::parse(&input);
        let mut framer = Framer::new(256, 64);
        let mut at = 0;
        loop {
            let (used, frame) = framer.decode(&input[at..]);
            at += used;
            match frame {
                Some(Frame::Command(c)) => {
                    let _ = Request::parse(&c);
                }
                Some(_) => {}
                None => break,
            }
        }
        let root = crate::mime::parse(&input);
        let mut out = Vec::new();
        crate::mime::structure::write(&mut out, &input, &root, true);
        crate::mime::envelope::envelope(&mut out, &input[root.start..root.body]);
        let mut texts = Vec::new();
        crate::mime::decode::body_texts(&input, &root, &mut texts);
        let _ = crate::mime::decode::header_value(&String::from_utf8_lossy(&input));
    }
}
