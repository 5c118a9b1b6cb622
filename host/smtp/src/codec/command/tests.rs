//! Unit tests of the command parser: whole command lines through
//! [`Command::parse`] and the replies its errors earn, in a file of their
//! own for their length.

use super::*;

fn wire(line: &str) -> String {
    match Command::parse(line.as_bytes()) {
        Ok(c) => format!("{c:?}"),
        Err(e) => e.reply().to_wire(),
    }
}

#[test]
fn verbs_are_case_insensitive() {
    assert_eq!(Command::parse(b"noop").unwrap(), Command::Noop);
    assert_eq!(Command::parse(b"QuIt").unwrap(), Command::Quit);
    assert_eq!(Command::parse(b"rset").unwrap(), Command::Rset);
    assert_eq!(Command::parse(b"DATA").unwrap(), Command::Data);
}

#[test]
fn helo_and_ehlo_keep_their_argument() {
    assert_eq!(
        Command::parse(b"EHLO client.example.org").unwrap(),
        Command::Ehlo("client.example.org".into())
    );
    assert_eq!(
        Command::parse(b"helo  a b ").unwrap(),
        Command::Helo("a b".into())
    );
    assert_eq!(wire("EHLO"), "501 Syntax: EHLO hostname\r\n");
    assert_eq!(wire("HELO   "), "501 Syntax: HELO hostname\r\n");
}

#[test]
fn commands_without_arguments() {
    assert_eq!(wire("DATA x"), "501 5.5.4 Syntax: DATA\r\n");
    assert_eq!(wire("RSET now"), "501 5.5.4 Syntax: RSET\r\n");
    assert_eq!(Command::parse(b"NOOP hello").unwrap(), Command::Noop);
    assert_eq!(Command::parse(b"HELP me").unwrap(), Command::Help);
    assert_eq!(Command::parse(b"QUIT ").unwrap(), Command::Quit);
}

#[test]
fn later_verbs_are_recognised() {
    assert_eq!(Command::parse(b"STARTTLS").unwrap(), Command::StartTls);
    assert_eq!(
        Command::parse(b"AUTH").unwrap(),
        Command::Auth(String::new())
    );
    assert_eq!(
        Command::parse(b"AUTH PLAIN AAAA").unwrap(),
        Command::Auth("PLAIN AAAA".to_owned())
    );
    assert_eq!(
        Command::parse(b"BDAT 10 LAST").unwrap(),
        Command::Bdat {
            size: 10,
            last: true
        }
    );
    assert_eq!(
        Command::parse(b"bdat 0").unwrap(),
        Command::Bdat {
            size: 0,
            last: false
        }
    );
    assert_eq!(
        Command::parse(b"ETRN example.org").unwrap(),
        Command::Etrn("example.org".to_owned())
    );
    assert_eq!(wire("ETRN"), "500 Syntax: ETRN domain\r\n");
}

#[test]
fn bdat_syntax_errors_close() {
    for line in [
        "BDAT",
        "BDAT x",
        "BDAT -1",
        "BDAT 10 FIRST",
        "BDAT 10 LAST x",
        "BDAT 99999999999999999999999",
    ] {
        assert_eq!(
            wire(line),
            "521 5.5.4 Syntax: BDAT count [LAST]\r\n",
            "{line}"
        );
    }
}

#[test]
fn vrfy_needs_an_argument() {
    assert_eq!(
        Command::parse(b"VRFY root").unwrap(),
        Command::Vrfy("root".into())
    );
    assert_eq!(
        wire("VRFY"),
        "501 5.5.4 Syntax: VRFY address [SMTPUTF8]\r\n"
    );
}

#[test]
fn unknown_and_garbage() {
    // What Postfix 3.7 answers to each (checked against its smtpd).
    let unknown = "500 5.5.2 Error: command not recognized\r\n";
    assert_eq!(wire("XYZZY"), unknown);
    assert_eq!(wire("MAILFROM:<a@b>"), unknown);
    assert_eq!(wire("FOé"), unknown);
    assert_eq!(wire(""), "500 5.5.2 Error: bad syntax\r\n");
    assert_eq!(wire(" \t "), "500 5.5.2 Error: bad syntax\r\n");
    let bad_utf8 = "500 5.5.2 Error: bad UTF-8 syntax\r\n";
    for line in [
        &b"\xff\xfeMAIL"[..],
        b"MAIL FROM:<\xff@x.org>",
        b"EHLO \xc3",
        b"NOOP \xed\xa0\x80",
    ] {
        let e = Command::parse(line).unwrap_err();
        assert_eq!(e, ParseError::BadUtf8);
        assert_eq!(e.reply().to_wire(), bad_utf8);
        assert_eq!(e.verb(), None);
    }
    assert_eq!(Command::parse(b"\0\0\0").unwrap_err().verb(), None);
}

#[test]
fn error_verbs() {
    assert_eq!(
        Command::parse(b"MAIL FROM:<a b>").unwrap_err().verb(),
        Some(Verb::Mail)
    );
    assert_eq!(
        Command::parse(b"RCPT TO:<>").unwrap_err().verb(),
        Some(Verb::Rcpt)
    );
    assert_eq!(
        Command::parse(b"DATA x").unwrap_err().verb(),
        Some(Verb::Data)
    );
}

#[test]
fn trailing_whitespace_and_stray_cr_are_ignored() {
    assert_eq!(Command::parse(b"QUIT\r").unwrap(), Command::Quit);
    assert_eq!(Command::parse(b"  NOOP\t").unwrap(), Command::Noop);
}

#[test]
fn random_lines_never_panic() {
    // Deterministic LCG; lines biased towards real verbs and the
    // characters the path parser cares about.
    let mut state: u64 = 99;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % bound
    };
    let pieces: [&[u8]; 22] = [
        b"MAIL FROM:",
        b"RCPT TO:",
        b"BDAT ",
        b"ETRN ",
        b" NOTIFY=",
        b" ORCPT=rfc822;",
        b" RET=",
        b" ENVID=",
        b"SMTPUTF8",
        b"+2B",
        b"<",
        b">",
        b"@",
        b"\"",
        b"\\",
        b" ",
        b"SIZE=",
        b"BODY=",
        b"=",
        b"a",
        b"\xff",
        b"\xc3\xa9",
    ];
    for _ in 0..50_000 {
        let mut line = Vec::new();
        for _ in 0..next(12) {
            line.extend_from_slice(pieces[next(pieces.len())]);
        }
        if let Err(e) = Command::parse(&line) {
            let reply = e.reply();
            assert!(reply.code >= 500, "{reply}");
            assert!(!reply.to_wire().contains('\0'));
        }
    }
}
