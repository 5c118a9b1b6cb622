//! The text of `postern-state` (the parent module shows it): parsing,
//! rendering and the checksum that tells a torn read from a good one.
//! Apart from what the state means and from the locked file it is kept
//! in: text in, a [`State`] out, and back, testable on strings alone.

use std::collections::BTreeMap;

use super::State;

impl State {
    /// Parses the file; `None` if it is not one (then it is rebuilt).
    pub fn parse(text: &str) -> Option<State> {
        State::parse_checked(text).map(|(state, _)| state)
    }

    /// [`State::parse`], and whether the file carried its checksum (then
    /// it may be rewritten in place: a torn read of it is detected).
    pub(super) fn parse_checked(text: &str) -> Option<(State, bool)> {
        let (first, body) = text.split_once('\n').unwrap_or((text, ""));
        let (first, checked) = match first.rsplit_once(" C") {
            Some((rest, sum)) => {
                // Covers the header without the field, and every line.
                let want = u64::from_str_radix(sum, 16).ok()?;
                if checksum(rest, body) != want {
                    return None;
                }
                (rest, true)
            }
            None => (first, false),
        };
        let lines = body.lines();
        let mut header = first.split(' ');
        if header.next()? != "postern-state" || header.next()? != "1" {
            return None;
        }
        let (mut validity, mut highest, mut first_recent) = (None, None, None);
        let mut boot = None;
        for field in header {
            if let Some(v) = field.strip_prefix('V') {
                validity = v.parse().ok();
            } else if let Some(h) = field.strip_prefix('H') {
                highest = h.parse().ok();
            } else if let Some(r) = field.strip_prefix('R') {
                first_recent = r.parse().ok();
            } else if let Some(b) = field.strip_prefix('B') {
                boot = Some(b.to_owned());
            }
        }
        let mut state = State {
            validity: validity?,
            highest: highest?,
            first_recent: first_recent?,
            records: BTreeMap::new(),
            boot,
        };
        for line in lines.filter(|l| !l.is_empty()) {
            let (uid, rest) = line.split_once(' ')?;
            let (modseq, letters) = rest.split_once(" :")?;
            let modseq: u64 = modseq.parse().ok()?;
            if modseq > state.highest {
                return None;
            }
            state
                .records
                .insert(uid.parse().ok()?, (modseq, letters.to_owned()));
        }
        Some((state, checked))
    }

    /// The text of the file.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut header = format!(
            "postern-state 1 V{} H{} R{}",
            self.validity, self.highest, self.first_recent
        );
        if let Some(boot) = &self.boot {
            header.push_str(&format!(" B{boot}"));
        }
        let mut body = String::with_capacity(self.records.len() * 28);
        for (uid, (modseq, letters)) in &self.records {
            let _ = writeln!(body, "{uid} {modseq} :{letters}");
        }
        let sum = checksum(&header, &body);
        format!("{header} C{sum:016x}\n{body}")
    }
}

/// FNV-1a 64 of the header (without its `C` field), a newline and the
/// lines: not a defence against anyone, a test for a read that caught a
/// rewrite half done (or a crash that left one).
fn checksum(header: &str, body: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in header.bytes().chain([b'\n']).chain(body.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut s = State::fresh(7, 1);
        assert!(s.highest > 1_600_000_000_000_000, "from the clock");
        assert!(s.update(&[(1, "S"), (2, "")]));
        assert!(!s.update(&[(1, "S"), (2, "")]), "nothing changed");
        let again = State::parse(&s.render()).unwrap();
        assert_eq!(again, s);
        for bad in [
            "",
            "postern-state 2 V1 H1 R1\n",
            "postern-state 1 V1 R1\n",
            "postern-state 1 V1 H5 R1\n1 9 :S\n",
            "postern-state 1 V1 H5 R1\nx 1 :S\n",
            "postern-state 1 V1 H5 R1\n1 1 S\n",
        ] {
            assert!(State::parse(bad).is_none(), "{bad:?}");
        }
    }

    /// A reader without the lock may catch an in-place rewrite half
    /// done: the checksum makes that a damaged file, never a wrong state.
    #[test]
    fn a_torn_or_changed_file_fails_its_checksum() {
        let mut s = State::fresh(7, 3);
        s.update(&[(1, "S"), (2, ""), (3, "F")]);
        let text = s.render();
        assert!(text.lines().next().unwrap().contains(" C"), "{text}");
        assert_eq!(State::parse_checked(&text), Some((s.clone(), true)));
        // Cut at a line end, a line changed, an old tail left behind.
        let cut = &text[..text.rfind("3 ").unwrap()];
        assert!(State::parse(cut).is_none(), "{cut}");
        assert!(State::parse(&text.replace(":S", ":T")).is_none());
        assert!(State::parse(&format!("{text}4 1 :S\n")).is_none());
        // An older Postern's file, without the field, is read as it is.
        let legacy = "postern-state 1 V7 H9 R3\n1 8 :S\n";
        assert_eq!(State::parse_checked(legacy).map(|(_, c)| c), Some(false));
    }
}
