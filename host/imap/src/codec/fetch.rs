//! FETCH data items (RFC 3501 §6.4.5), with `BODY[section]<partial>`.

use super::parse::{Parser, Result, bad};

/// The text part of a section specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// HEADER
    Header,
    /// HEADER.FIELDS (names)
    Fields(Vec<String>),
    /// HEADER.FIELDS.NOT (names)
    FieldsNot(Vec<String>),
    /// TEXT
    Text,
    /// MIME: the part's own MIME header.
    Mime,
}

/// `BODY[1.2.HEADER.FIELDS (SUBJECT)]`: part numbers, then a text spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// Part numbers, outermost first.
    pub part: Vec<u32>,
    /// What of the part; `None` is the whole part.
    pub text: Option<SectionText>,
}

impl Section {
    /// The specifier as a response names it (RFC 3501 §7.4.2).
    pub fn render(&self) -> String {
        let mut out: Vec<String> = self.part.iter().map(u32::to_string).collect();
        match &self.text {
            None => {}
            Some(SectionText::Header) => out.push("HEADER".into()),
            Some(SectionText::Text) => out.push("TEXT".into()),
            Some(SectionText::Mime) => out.push("MIME".into()),
            Some(SectionText::Fields(f)) => out.push(format!("HEADER.FIELDS ({})", f.join(" "))),
            Some(SectionText::FieldsNot(f)) => {
                out.push(format!("HEADER.FIELDS.NOT ({})", f.join(" ")));
            }
        }
        out.join(".")
    }
}

/// One data item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// FLAGS
    Flags,
    /// INTERNALDATE
    InternalDate,
    /// RFC822.SIZE
    Size,
    /// ENVELOPE
    Envelope,
    /// BODY (the structure without extension data)
    Body,
    /// BODYSTRUCTURE
    BodyStructure,
    /// UID
    Uid,
    /// MODSEQ (RFC 7162 §3.1.4.1)
    Modseq,
    /// `BODY[section]<partial>`, `BODY.PEEK[...]`, and the RFC822 forms.
    Section {
        /// The name the response uses (`BODY`, `RFC822.HEADER`, ...).
        name: &'static str,
        /// What is asked for.
        section: Section,
        /// `<offset.count>`.
        partial: Option<(u32, u32)>,
        /// Leaves \Seen alone (BODY.PEEK, RFC822.HEADER).
        peek: bool,
    },
}

/// The items after the sequence set: one item, a macro, or a list.
pub fn parse_fetch_items(p: &mut Parser<'_>) -> Result<Vec<FetchItem>> {
    if p.eat(b'(') {
        let mut items = Vec::new();
        while !p.eat(b')') {
            if !items.is_empty() {
                p.sp()?;
            }
            items.push(item(p)?);
        }
        if items.is_empty() {
            return bad("Invalid fetch list");
        }
        return Ok(items);
    }
    let word = peek_word(p)?;
    match word.as_str() {
        "ALL" | "FAST" | "FULL" => {
            p.atom()?;
            let mut items = vec![FetchItem::Flags, FetchItem::InternalDate, FetchItem::Size];
            if word != "FAST" {
                items.push(FetchItem::Envelope);
            }
            if word == "FULL" {
                items.push(FetchItem::Body);
            }
            Ok(items)
        }
        _ => Ok(vec![item(p)?]),
    }
}

fn peek_word(p: &mut Parser<'_>) -> Result<String> {
    let mark = p.mark();
    let word = word(p);
    p.reset_to(mark);
    word
}

fn item(p: &mut Parser<'_>) -> Result<FetchItem> {
    let word = word(p)?;
    Ok(match word.as_str() {
        "FLAGS" => FetchItem::Flags,
        "INTERNALDATE" => FetchItem::InternalDate,
        "RFC822.SIZE" => FetchItem::Size,
        "ENVELOPE" => FetchItem::Envelope,
        "BODYSTRUCTURE" => FetchItem::BodyStructure,
        "UID" => FetchItem::Uid,
        "MODSEQ" => FetchItem::Modseq,
        "RFC822" => whole("RFC822", None, false),
        "RFC822.HEADER" => whole("RFC822.HEADER", Some(SectionText::Header), true),
        "RFC822.TEXT" => whole("RFC822.TEXT", Some(SectionText::Text), false),
        "BODY" if p.peek() != Some(b'[') => FetchItem::Body,
        "BODY" | "BODY.PEEK" => {
            let section = section(p)?;
            let partial = if p.eat(b'<') {
                let offset = p.number()?;
                if !p.eat(b'.') {
                    return bad("Invalid partial");
                }
                let count = p.number()?;
                if !p.eat(b'>') || count == 0 {
                    return bad("Invalid partial");
                }
                Some((offset, count))
            } else {
                None
            };
            FetchItem::Section {
                name: "BODY",
                section,
                partial,
                peek: word == "BODY.PEEK",
            }
        }
        _ => return bad(format!("Invalid fetch item {word}")),
    })
}

fn whole(name: &'static str, text: Option<SectionText>, peek: bool) -> FetchItem {
    FetchItem::Section {
        name,
        section: Section { part: vec![], text },
        partial: None,
        peek,
    }
}

/// A fetch item's name: letters, digits, `.`, up to `[`, space or `)`.
fn word(p: &mut Parser<'_>) -> Result<String> {
    let mut out = String::new();
    while let Some(b) = p.peek() {
        if b.is_ascii_alphanumeric() || b == b'.' {
            out.push(char::from(b.to_ascii_uppercase()));
            p.eat(b);
        } else {
            break;
        }
    }
    if out.is_empty() {
        return bad("Invalid fetch item");
    }
    Ok(out)
}

/// `[` section-spec `]`.
fn section(p: &mut Parser<'_>) -> Result<Section> {
    if !p.eat(b'[') {
        return bad("Expected [");
    }
    let mut section = Section::default();
    loop {
        if p.eat(b']') {
            return Ok(section);
        }
        if p.peek().is_some_and(|b| b.is_ascii_digit()) {
            let n = p.number()?;
            if n == 0 {
                return bad("Invalid section number");
            }
            section.part.push(n);
            if p.eat(b'.') {
                continue;
            }
            if p.eat(b']') {
                return Ok(section);
            }
            return bad("Invalid section");
        }
        let name = word(p)?;
        section.text = Some(match name.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if !section.part.is_empty() => SectionText::Mime,
            "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                p.sp()?;
                if !p.eat(b'(') {
                    return bad("Expected a header list");
                }
                let mut fields = Vec::new();
                while !p.eat(b')') {
                    if !fields.is_empty() {
                        p.sp()?;
                    }
                    let f = p.astring()?;
                    fields.push(String::from_utf8_lossy(&f).to_ascii_uppercase());
                }
                if fields.is_empty() {
                    return bad("Empty header list");
                }
                if name == "HEADER.FIELDS" {
                    SectionText::Fields(fields)
                } else {
                    SectionText::FieldsNot(fields)
                }
            }
            _ => return bad("Invalid section"),
        });
        if !p.eat(b']') {
            return bad("Invalid section");
        }
        return Ok(section);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn items(s: &[u8]) -> Vec<FetchItem> {
        parse_fetch_items(&mut Parser::new(s)).unwrap()
    }

    #[test]
    fn items_and_sections() {
        assert_eq!(items(b"FAST").len(), 3);
        assert_eq!(items(b"(uid flags)"), [FetchItem::Uid, FetchItem::Flags]);
        let got = items(b"(BODY.PEEK[1.2.HEADER.FIELDS (Subject From)]<0.100> BODY)");
        let FetchItem::Section {
            section,
            partial,
            peek,
            ..
        } = &got[0]
        else {
            panic!("{got:?}")
        };
        assert!(*peek);
        assert_eq!(*partial, Some((0, 100)));
        assert_eq!(section.render(), "1.2.HEADER.FIELDS (SUBJECT FROM)");
        assert_eq!(got[1], FetchItem::Body);
        assert_eq!(
            items(b"BODY[]"),
            [FetchItem::Section {
                name: "BODY",
                section: Section::default(),
                partial: None,
                peek: false
            }]
        );
        for bad in [
            &b"BODY[0]"[..],
            b"BODY[MIME]",
            b"(FLAGS",
            b"BODY[1]<5>",
            b"NOPE",
        ] {
            assert!(parse_fetch_items(&mut Parser::new(bad)).is_err(), "{bad:?}");
        }
    }
}
