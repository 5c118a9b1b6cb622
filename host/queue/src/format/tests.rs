//! Tests of the queue file format: round trips through [`super::header`]
//! and [`super::parse()`], the documented byte layout, and files cut,
//! torn or corrupted at every byte. Apart because they are as long as the
//! code, and most of them exercise the writer and the parser together.

use std::time::{Duration, UNIX_EPOCH};

use postern_mail::{Address, EnhancedCode, Notify, Orcpt, Ret, ReversePath};

use super::*;
use crate::error::ParseError;
use crate::testing::{envelope, sample_content};

fn file(id: &QueueId, env: &Envelope, content: &[u8]) -> Vec<u8> {
    new_file(id, env, content)
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
    assert!(text.contains("\nrcpt dan@example.net dan@example.net - utf-8;d%C3%A4n@example.net\n"));
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
    // The sum is zlib's CRC-32 of the rest of these lines, the content
    // and the end marker (Python: `zlib.crc32(rest + content + end)`).
    let want = "POSTERN-QUEUE 1\nsum 2bad3028\nid 0005F3A1B2C3D4E000A1F2\n\
                arrival 1700000000.000000005\nsender alice@example.org\n\
                client 192.0.2.7:41234\nclient_name mx.example.org\n\
                helo h%C3%A9lo%20x\nprotocol ESMTP\nhold 0\n\
                rcpt bob@example.net \"B%25b\"@example.net\nsize 12\n\n";
    assert_eq!(
        String::from_utf8(header(&id(), &env, b"Subject: x\r\n")).unwrap(),
        want
    );
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
    let mut huge = header(&id(), &env, b"");
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

/// The bytes after the `sum` line, up to and including the end marker:
/// whichever of them changes, the file no longer parses.
#[test]
fn the_sum_covers_the_envelope_the_content_and_the_end_marker() {
    let content = sample_content();
    let f = file(&id(), &envelope(&["bob@example.net"]), &content);
    let from = "POSTERN-QUEUE 1\nsum 00000000\n".len();
    for i in from..f.len() {
        let mut g = f.clone();
        g[i] ^= 0x01;
        assert!(parse(&g).is_err(), "byte {i} changed unnoticed");
    }
    // A changed content byte, which nothing else in the file could tell.
    let mut g = f.clone();
    g[f.len() - END_MARKER.len() - 10] ^= 0x20;
    assert!(matches!(parse(&g), Err(ParseError::Checksum { .. })));
}

/// What a power cut can leave of a spare written over in place
/// (spare.rs): the new message's first page, then a page of the message
/// the spare held before, whose end marker sits where the new length
/// says. Without the sum it would parse, as a message nobody sent.
#[test]
fn a_page_of_the_last_message_under_a_new_header_is_caught() {
    let env = envelope(&["bob@example.net"]);
    let old = file(&id(), &env, &[b'o'; 9000]);
    let new = file(&id(), &env, &[b'n'; 9000]);
    assert_eq!(old.len(), new.len());
    let mut torn = new.clone();
    torn[4096..8192].copy_from_slice(&old[4096..8192]);
    assert!(matches!(parse(&torn), Err(ParseError::Checksum { .. })));
    // And zeros where the pages were allocated but never written.
    let mut zeroed = new;
    zeroed[4096..8192].fill(0);
    assert!(matches!(parse(&zeroed), Err(ParseError::Checksum { .. })));
}

/// A file written before the sum record existed reads as it always did;
/// a sum that is not eight hex digits is refused.
#[test]
fn a_file_without_a_sum_still_parses_a_malformed_one_does_not() {
    let env = envelope(&["bob@example.net"]);
    let content = sample_content();
    let f = file(&id(), &env, &content);
    let sum_line = "sum 00000000\n".len();
    let start = "POSTERN-QUEUE 1\n".len();
    let mut old = f[..start].to_vec();
    old.extend_from_slice(&f[start + sum_line..]);
    let parsed = parse(&old).unwrap();
    assert_eq!(parsed.message.envelope, env);
    assert_eq!(parsed.message.content, content);
    assert_eq!(parsed.valid_len, old.len());
    for bad in ["sum 2bad302", "sum 2bad302g", "sum 2bad30281"] {
        let mut g = f[..start].to_vec();
        g.extend_from_slice(bad.as_bytes());
        g.extend_from_slice(&f[start + sum_line - 1..]);
        assert!(
            matches!(parse(&g), Err(ParseError::Header { line: 2, .. })),
            "{bad}"
        );
    }
    // Only as the second line: elsewhere it is an unknown record.
    let hold = old.windows(7).position(|w| w == b"hold 0\n").unwrap() + 7;
    let mut moved = old[..hold].to_vec();
    moved.extend_from_slice(b"sum 2bad3028\n");
    moved.extend_from_slice(&old[hold..]);
    assert!(matches!(parse(&moved), Err(ParseError::Header { .. })));
}
