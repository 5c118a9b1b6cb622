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
    }
}
