use super::*;
use crate::codec::fetch::{Section, SectionText};

const MIXED: &[u8] = b"From: \"Bob B.\" <bob@example.org>\r\n\
To: alice@example.org, undisclosed: ;\r\n\
Subject: =?utf-8?q?caf=C3=A9?=\r\n\
Message-ID: <1@x>\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
preamble\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
hello\r\n\
there\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: attachment; filename=\"m.eml\"\r\n\
\r\n\
Subject: inner\r\n\
\r\n\
inner body\r\n\
--b1--\r\n\
epilogue\r\n";

fn text(b: Option<std::borrow::Cow<'_, [u8]>>) -> String {
    String::from_utf8(b.unwrap().into_owned()).unwrap()
}

#[test]
fn sections() {
    let root = parse(MIXED);
    assert_eq!(root.children.len(), 2);
    let s = |part: Vec<u32>, t: Option<SectionText>| Section { part, text: t };
    assert_eq!(
        text(section(MIXED, &root, &s(vec![1], None))),
        "hello\r\nthere"
    );
    assert_eq!(
        text(section(MIXED, &root, &s(vec![1], Some(SectionText::Mime)))),
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    assert_eq!(
        text(section(
            MIXED,
            &root,
            &s(vec![2], Some(SectionText::Header))
        )),
        "Subject: inner\r\n\r\n"
    );
    assert_eq!(
        text(section(MIXED, &root, &s(vec![2, 1], None))),
        "inner body"
    );
    assert_eq!(
        text(section(
            MIXED,
            &root,
            &s(vec![], Some(SectionText::Fields(vec!["SUBJECT".into()])))
        )),
        "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
    );
    assert!(section(MIXED, &root, &s(vec![3], None)).is_none());
    assert_eq!(
        section(MIXED, &root, &s(vec![], None)).unwrap().len(),
        MIXED.len()
    );
}

#[test]
fn envelope_and_structure() {
    let root = parse(MIXED);
    let mut out = Vec::new();
    envelope::envelope(&mut out, &MIXED[root.start..root.body]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "(NIL \"=?utf-8?q?caf=C3=A9?=\" ((\"Bob B.\" NIL \"bob\" \"example.org\")) \
         ((\"Bob B.\" NIL \"bob\" \"example.org\")) ((\"Bob B.\" NIL \"bob\" \"example.org\")) \
         ((NIL NIL \"alice\" \"example.org\")(NIL NIL \"undisclosed\" NIL)(NIL NIL NIL NIL)) \
         NIL NIL NIL \"<1@x>\")"
    );
    let mut out = Vec::new();
    structure::write(&mut out, MIXED, &root, false);
    let body = String::from_utf8(out).unwrap();
    assert!(
        body.starts_with("((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 1)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 28 (NIL \"inner\""),
        "{body}"
    );
    assert!(body.ends_with(" 2) \"mixed\")"), "{body}");
    let mut out = Vec::new();
    structure::write(&mut out, MIXED, &root, true);
    let full = String::from_utf8(out).unwrap();
    assert!(
        full.contains("(\"attachment\" (\"filename\" \"m.eml\"))"),
        "{full}"
    );
    assert!(
        full.ends_with("\"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)"),
        "{full}"
    );
}

#[test]
fn hostile_input_is_bounded() {
    // Nesting far past the limit, a missing boundary, no header end.
    let mut deep = Vec::new();
    for i in 0..200 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    let root = parse(&deep);
    let mut out = Vec::new();
    structure::write(&mut out, &deep, &root, true);
    assert!(!out.is_empty());
    let odd = b"Content-Type: multipart/mixed\r\nno end";
    let root = parse(odd);
    assert_eq!(root.body, odd.len());
    let mut out = Vec::new();
    structure::write(&mut out, odd, &root, false);
    assert_eq!(addresses("").len(), 0);
    assert_eq!(addresses("<>, ,").len(), 0);
}

use envelope::addresses;
