//! Sequence sets (RFC 3501 §9 `sequence-set`): ranges of message sequence
//! numbers or UIDs, with `*` for the largest one in use.

/// One range, `a:b`, in either order; `u32::MAX` stands for `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    low: u32,
    high: u32,
}

impl SeqRange {
    /// The range between `a` and `b` (RFC 3501: `4:2` is `2:4`).
    pub fn new(a: u32, b: u32) -> SeqRange {
        SeqRange {
            low: a.min(b),
            high: a.max(b),
        }
    }
}

/// A set of ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<SeqRange>);

impl SequenceSet {
    /// Whether `n` is in the set, `*` being `largest`. RFC 3501 §6.4.8: a
    /// UID range `n:*` always takes the largest UID even when `n` is above it.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|r| {
            let star = |v: u32| if v == u32::MAX { largest } else { v };
            let (a, b) = (star(r.low), star(r.high));
            let (a, b) = (a.min(b), a.max(b));
            (a..=b).contains(&n)
        })
    }

    /// Whether every number in the set is at most `max` (`*` counts as
    /// `max`): a sequence set naming a message that does not exist is an
    /// error (RFC 3501 §9 `seq-number`).
    pub fn within(&self, max: u32) -> bool {
        self.0
            .iter()
            .all(|r| (r.low == u32::MAX || r.low <= max) && (r.high == u32::MAX || r.high <= max))
    }

    /// The ranges, low to high, with `*` taken as `largest`.
    pub fn ranges(&self, largest: u32) -> Vec<(u32, u32)> {
        let star = |v: u32| if v == u32::MAX { largest } else { v };
        self.0
            .iter()
            .map(|r| {
                let (a, b) = (star(r.low), star(r.high));
                (a.min(b), a.max(b))
            })
            .collect()
    }

    /// The UIDs from 1 to `last` that are not in `present` (ascending),
    /// within `known` if given, as a compacted set text (QRESYNC's
    /// VANISHED (EARLIER), RFC 7162 §3.2.5.1); `None` if there are none.
    /// Works on ranges, so a sparse UID space costs nothing.
    pub fn missing(present: &[u32], last: u32, known: Option<&SequenceSet>) -> Option<String> {
        let mut gaps = Vec::new();
        let mut next = 1u32;
        for uid in present.iter().copied().filter(|u| *u <= last) {
            if uid > next {
                gaps.push((next, uid - 1));
            }
            next = next.max(uid.saturating_add(1));
        }
        if next <= last && last > 0 {
            gaps.push((next, last));
        }
        let mut out: Vec<(u32, u32)> = match known {
            None => gaps,
            Some(set) => {
                let mut cut = Vec::new();
                for (a, b) in set.ranges(last) {
                    for (c, d) in &gaps {
                        let (lo, hi) = (a.max(*c), b.min(*d));
                        if lo <= hi {
                            cut.push((lo, hi));
                        }
                    }
                }
                cut
            }
        };
        out.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (a, b) in out {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        if merged.is_empty() {
            return None;
        }
        let text: Vec<String> = merged
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}:{b}")
                }
            })
            .collect();
        Some(text.join(","))
    }

    /// The set's text, ranges compacted: `1:3,7` (for COPYUID).
    pub fn render(numbers: &[u32]) -> String {
        let mut sorted = numbers.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < sorted.len() {
            let start = sorted[i];
            let mut end = start;
            while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
                i += 1;
                end = sorted[i];
            }
            out.push(if start == end {
                start.to_string()
            } else {
                format!("{start}:{end}")
            });
            i += 1;
        }
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let set = SequenceSet(vec![SeqRange::new(5, 3), SeqRange::new(9, u32::MAX)]);
        assert!(set.contains(4, 20) && set.contains(20, 20) && !set.contains(7, 20));
        let star = SequenceSet(vec![SeqRange::new(30, u32::MAX)]);
        assert!(star.contains(20, 20), "n:* includes the largest");
        assert!(set.within(9) && !set.within(4));
        assert_eq!(SequenceSet::render(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        let missing = |present: &[u32], last, known: Option<&SequenceSet>| {
            SequenceSet::missing(present, last, known)
        };
        assert_eq!(missing(&[2, 3, 7], 9, None).as_deref(), Some("1,4:6,8:9"));
        assert_eq!(missing(&[1, 2], 2, None), None);
        assert_eq!(missing(&[], 0, None), None);
        let known = SequenceSet(vec![SeqRange::new(3, 5), SeqRange::new(9, u32::MAX)]);
        assert_eq!(
            missing(&[2, 3, 7], 9, Some(&known)).as_deref(),
            Some("4:5,9")
        );
        // A sparse UID space is ranges, not a walk over every UID.
        assert_eq!(
            missing(&[4_000_000_000], u32::MAX - 1, None).as_deref(),
            Some("1:3999999999,4000000001:4294967294")
        );
    }
}
