//! Tests of the wire format: every kind round trips, and truncated,
//! overlong or forged bodies and frames are refused. Apart because they
//! exercise the messages and the frames together.

use std::io;

use super::*;

fn command() -> Request {
    Request::Command {
        ids: Ids {
            uid: 1000,
            gid: 1000,
        },
        args: vec!["/bin/sh".into(), "-c".into(), "id -u".into()],
        env: vec![("HOME".into(), "/home/a".into())],
        dir: "/".into(),
        time_limit: 10,
        input: b"hi\n".to_vec(),
    }
}

#[test]
fn round_trips() {
    let requests = [
        Request::Maildir {
            ids: Ids { uid: 5, gid: 6 },
            home: Some("/h".into()),
            path: "/h/Maildir/".into(),
            message: b"x".to_vec(),
        },
        Request::Mbox {
            ids: Ids { uid: 5, gid: 6 },
            path: "/var/mail/a".into(),
            sender: "a@b".into(),
            lock_wait_ms: 1000,
            message: vec![],
        },
        command(),
        Request::Password {
            login: "a".into(),
            password: "p".into(),
        },
    ];
    for r in requests {
        assert_eq!(Request::decode(&r.encode(7)), (Some(7), Ok(r)));
    }
    for a in [
        Response::Done,
        Response::Exit(-1, "out".into()),
        Response::Password(3, "x".into()),
    ] {
        assert_eq!(Response::decode(&a.encode(9)).unwrap(), (9, a));
    }
}

#[test]
fn forged_bytes_are_refused_not_trusted() {
    let good = command().encode(1);
    // Every truncation, and a byte too many, is an error.
    for n in 0..good.len() {
        assert!(Request::decode(&good[..n]).1.is_err(), "{n}");
    }
    let mut long = good.clone();
    long.push(0);
    assert!(Request::decode(&long).1.is_err());
    // A kind that does not exist.
    let mut kind = good.clone();
    kind[8] = 99;
    assert_eq!(
        Request::decode(&kind).1.unwrap_err(),
        "unknown request kind 99"
    );
    // A count of arguments far beyond the frame allocates nothing.
    let mut count = good.clone();
    count[17..21].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(Request::decode(&count).1.is_err());
    // A frame over the cap is refused before it is read.
    let mut stream = Vec::new();
    write_frame(&mut stream, &good).unwrap();
    let err = read_frame(&mut stream.as_slice(), 8).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        read_frame(&mut stream.as_slice(), 1 << 20).unwrap(),
        Some(good)
    );
    assert_eq!(read_frame(&mut &b""[..], 8).unwrap(), None);
}

#[test]
fn file_requests_and_answers_round_trip() {
    for r in [
        Request::ReadFile {
            path: "/etc/postern/key.pem".into(),
        },
        Request::Forward {
            uid: 1000,
            name: ".forward".into(),
        },
        Request::Refresh,
    ] {
        let body = r.encode(3);
        for n in 0..body.len() {
            assert!(Request::decode(&body[..n]).1.is_err(), "{n}");
        }
        assert_eq!(Request::decode(&body), (Some(3), Ok(r)));
    }
    for a in [
        Response::File {
            uid: 0,
            gid: 5,
            contents: b"key".to_vec(),
        },
        Response::Missing,
        Response::Ignored("file /h/.forward is world writable".into()),
    ] {
        let body = a.encode(4);
        for n in 0..body.len() {
            assert!(Response::decode(&body[..n]).is_err(), "{n}");
        }
        assert_eq!(Response::decode(&body).unwrap(), (4, a));
    }
    // An answer kind this side does not know (a newer helper's) is an
    // error, never taken for another.
    let mut unknown = Response::Missing.encode(4);
    unknown[8] = 99;
    assert_eq!(
        Response::decode(&unknown).unwrap_err(),
        "unknown answer kind 99"
    );
}
