//! [`Entry`]: the arguments `init` parsed, kept for every `check` of the
//! instance. What a plugin with arguments and no other per-instance state
//! (greylist, ratelimit, spf, the DNS list plugins, `reject_unlisted_*`)
//! would otherwise spell out itself: a `static OnceLock`, the first
//! `init` kept, and `dunno` for a `check` that comes before any `init`.

use std::sync::OnceLock;

use crate::Verdict;

/// The parsed arguments of the entry an instance serves. The host gives
/// an instance one entry's arguments, so a second `init` keeps the first.
///
/// ```ignore
/// static ENTRY: Entry<Config> = Entry::new();
///
/// impl Guest for Greylist {
///     fn init(args: Vec<(String, String)>) -> Result<(), String> {
///         ENTRY.init(Config::from_args(args))
///     }
///
///     fn check(req: Request) -> Verdict {
///         ENTRY.check(|config| triplet::decide(config, &Kv, &req))
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Entry<T>(OnceLock<T>);

impl<T> Entry<T> {
    /// Nothing kept yet; `const`, for a `static`.
    pub const fn new() -> Entry<T> {
        Entry(OnceLock::new())
    }

    /// `init`: keeps what parsing the arguments gave (the first time), or
    /// passes its error on, which refuses the entry at load time.
    pub fn init(&self, parsed: Result<T, String>) -> Result<(), String> {
        let _ = self.0.set(parsed?);
        Ok(())
    }

    /// `check`: `decide` with the kept arguments; `dunno` before `init`
    /// (the host always calls `init` first: this is only never a panic).
    pub fn check(&self, decide: impl FnOnce(&T) -> Verdict) -> Verdict {
        self.0.get().map_or(Verdict::Dunno, decide)
    }
}

impl<T> Default for Entry<T> {
    fn default() -> Entry<T> {
        Entry::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(n: &str) -> Result<u32, String> {
        n.parse::<u32>().map_err(|e| e.to_string())
    }

    #[test]
    fn the_first_init_is_kept_and_errors_pass_on() {
        let entry = Entry::new();
        assert_eq!(entry.check(|_: &u32| Verdict::Permit), Verdict::Dunno);
        assert_eq!(
            entry.init(parse("x")),
            Err("invalid digit found in string".to_owned())
        );
        assert_eq!(entry.check(|_| Verdict::Permit), Verdict::Dunno);
        assert_eq!(entry.init(parse("1")), Ok(()));
        assert_eq!(entry.init(parse("2")), Ok(()));
        let seen = |n: &u32| {
            if *n == 1 {
                Verdict::Permit
            } else {
                Verdict::Dunno
            }
        };
        assert_eq!(entry.check(seen), Verdict::Permit);
    }
}
