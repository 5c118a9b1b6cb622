//! The arithmetic of Postfix 2.5's concurrency scheduler (qmgr_queue.c,
//! qmgr_feedback.c, SCHEDULER_README "concurrency scheduling"): how many
//! deliveries to one destination may run at once, and when a destination
//! is dead.
//!
//! A destination starts at `initial_destination_concurrency` (5). Every
//! delivery that completes without a connection or handshake failure is
//! positive feedback: the window grows by one at the end of each run of
//! 1/feedback successes, up to `<transport>_destination_concurrency_limit`
//! (20), and never more than `initial_destination_concurrency` beyond the
//! deliveries actually in flight, so that a trickle of mail does not
//! build a window nobody uses. A connection or handshake failure is
//! negative feedback: the window shrinks by one at the start of each run
//! of 1/feedback failures, never below one. Each failure also adds
//! 1/window to a count of failed pseudo-cohorts (a cohort: as many
//! deliveries as the window is wide); when that count reaches
//! `destination_concurrency_failed_cohort_limit` (1) the destination is
//! dead (window 0) until `minimal_backoff_time` has passed. A success
//! resets the count.
//!
//! Feedback is a number in 0..=1, a fraction (`1/8`), or `N/concurrency`
//! (N divided by the window at the moment of the feedback).

use std::fmt;

/// Rounding slack when summing fractional feedback (Postfix's EPSILON).
const EPSILON: f64 = 1.0e-5;

/// An amount of concurrency feedback, as `main.cf` writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    base: f64,
    /// `N/concurrency`: `base` is divided by the window.
    per_window: bool,
}

// `parse` only makes finite values in 0..=1: never NaN.
impl Eq for Feedback {}

impl Feedback {
    /// Feedback of `value` per delivery.
    pub const ONE: Feedback = Feedback {
        base: 1.0,
        per_window: false,
    };

    /// Reads `1`, `0.25`, `1/8` or `1/concurrency`; the result must lie
    /// in 0..=1 (as Postfix requires).
    pub fn parse(text: &str) -> Result<Feedback, String> {
        let bad = || {
            format!(
                "expected a number from 0 to 1, a fraction such as 1/8, or 1/concurrency, found {text:?}"
            )
        };
        let number = |s: &str| -> Result<f64, String> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(bad)
        };
        let feedback = match text.split_once('/') {
            None => Feedback {
                base: number(text)?,
                per_window: false,
            },
            Some((num, den)) if den.trim().eq_ignore_ascii_case("concurrency") => Feedback {
                base: number(num)?,
                per_window: true,
            },
            Some((num, den)) => {
                let den = number(den)?;
                if den < 1.0 / f64::from(i32::MAX) {
                    return Err(bad());
                }
                Feedback {
                    base: number(num)? / den,
                    per_window: false,
                }
            }
        };
        if feedback.base > 1.0 {
            return Err(bad());
        }
        Ok(feedback)
    }

    /// The amount at concurrency `window`.
    fn at(self, window: u32) -> f64 {
        if self.per_window {
            self.base / f64::from(window.max(1))
        } else {
            self.base
        }
    }
}

impl fmt::Display for Feedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per_window {
            write!(f, "{}/concurrency", self.base)
        } else {
            write!(f, "{}", self.base)
        }
    }
}

/// A transport's concurrency parameters, under Postfix's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// `initial_destination_concurrency` (5): the window of a destination
    /// that has no history.
    pub initial: u32,
    /// `<transport>_destination_concurrency_limit`
    /// ($default_destination_concurrency_limit, 20); 0: no limit.
    pub limit: u32,
    /// `default_destination_concurrency_positive_feedback` (1).
    pub positive: Feedback,
    /// `default_destination_concurrency_negative_feedback` (1).
    pub negative: Feedback,
    /// `default_destination_concurrency_failed_cohort_limit` (1); 0:
    /// never declared dead.
    pub failed_cohort_limit: u32,
}

impl Default for Concurrency {
    fn default() -> Concurrency {
        Concurrency {
            initial: 5,
            limit: 20,
            positive: Feedback::ONE,
            negative: Feedback::ONE,
            failed_cohort_limit: 1,
        }
    }
}

impl Concurrency {
    /// The starting window: the initial concurrency, within the limit, at
    /// least one.
    fn start(&self) -> u32 {
        let start = if self.limit > 0 {
            self.initial.min(self.limit)
        } else {
            self.initial
        };
        start.max(1)
    }
}

/// One destination's window and feedback counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Deliveries allowed at once; 0: the destination is dead.
    width: u32,
    /// Positive feedback collected towards the next increment.
    success: f64,
    /// Negative feedback still to absorb before the next decrement.
    failure: f64,
    /// Failed pseudo-cohorts since the last success.
    fail_cohorts: f64,
}

impl Window {
    /// A destination with no history.
    pub fn new(c: &Concurrency) -> Window {
        Window {
            width: c.start(),
            success: 0.0,
            failure: 0.0,
            fail_cohorts: 0.0,
        }
    }

    /// Deliveries allowed at once; 0 when dead.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Whether the destination has been declared dead.
    pub fn is_dead(&self) -> bool {
        self.width == 0
    }

    /// A delivery completed without connection or handshake failure;
    /// `busy` deliveries are still in flight (Postfix's
    /// qmgr_queue_unthrottle).
    pub fn succeeded(&mut self, c: &Concurrency, busy: u32) {
        self.fail_cohorts = 0.0;
        if self.is_dead() {
            self.revive(c, busy);
            return;
        }
        let below_limit = c.limit == 0 || c.limit > self.width;
        // Keep the window within reach of the deliveries really running,
        // or negative feedback would take ages to bite.
        if below_limit && self.width < busy.saturating_add(c.start()) {
            self.success += c.positive.at(self.width);
            while self.success + EPSILON >= 1.0 {
                self.width = self.width.saturating_add(1);
                self.success -= 1.0;
                self.failure = 0.0;
            }
            if c.limit > 0 {
                self.width = self.width.min(c.limit);
            }
        }
    }

    /// A delivery failed to connect or in the handshake (Postfix's
    /// qmgr_queue_throttle). True when this declared the destination dead.
    pub fn failed(&mut self, c: &Concurrency) -> bool {
        if self.is_dead() {
            return false;
        }
        self.fail_cohorts += 1.0 / f64::from(self.width);
        if c.failed_cohort_limit > 0
            && self.fail_cohorts + EPSILON >= f64::from(c.failed_cohort_limit)
        {
            self.width = 0;
            return true;
        }
        // Decrement at the start of each run of 1/feedback failures.
        let feedback = c.negative.at(self.width);
        if self.failure < EPSILON && feedback > 0.0 {
            self.width = self.width.saturating_sub(1).max(1);
            self.success = 0.0;
            self.failure += 1.0;
        }
        self.failure = (self.failure - feedback).max(0.0);
        false
    }

    /// Back from the dead once the mark expired: at the concurrency still
    /// in flight, or the initial one ("best concurrency is anyone's
    /// guess").
    pub fn revive(&mut self, c: &Concurrency, busy: u32) {
        let width = if busy > 0 { busy } else { c.start() };
        *self = Window::new(c);
        self.width = width;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn defaults() -> Concurrency {
        Concurrency::default()
    }

    #[test]
    fn feedback_spellings() {
        assert_eq!(Feedback::parse("1").unwrap(), Feedback::ONE);
        assert_eq!(Feedback::parse("0.25").unwrap().at(7), 0.25);
        assert_eq!(Feedback::parse("1/8").unwrap().at(3), 0.125);
        let per = Feedback::parse("1/concurrency").unwrap();
        assert_eq!(per.at(4), 0.25);
        assert_eq!(per.at(0), 1.0);
        assert_eq!(per.to_string(), "1/concurrency");
        for bad in [
            "",
            "2",
            "-1",
            "1/0",
            "x",
            "1/x",
            "NaN",
            "inf",
            "3/concurrency",
        ] {
            assert!(Feedback::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slow_start_grows_by_one_per_success_up_to_the_limit() {
        let c = defaults();
        let mut w = Window::new(&c);
        assert_eq!(w.width(), 5);
        // Five in flight: room to grow to 10 before in-flight catches up.
        for expect in 6..=10 {
            w.succeeded(&c, 5);
            assert_eq!(w.width(), expect);
        }
        w.succeeded(&c, 5);
        assert_eq!(w.width(), 10, "no further than busy + initial");
        for _ in 0..50 {
            w.succeeded(&c, 19);
        }
        assert_eq!(w.width(), 20, "capped by the limit");
    }

    #[test]
    fn fractional_positive_feedback_needs_a_run_of_successes() {
        let c = Concurrency {
            positive: Feedback::parse("1/concurrency").unwrap(),
            ..defaults()
        };
        let mut w = Window::new(&c);
        // At width 5, five successes make one increment.
        for _ in 0..4 {
            w.succeeded(&c, 5);
            assert_eq!(w.width(), 5);
        }
        w.succeeded(&c, 5);
        assert_eq!(w.width(), 6);
        for _ in 0..6 {
            w.succeeded(&c, 6);
        }
        assert_eq!(w.width(), 7);
    }

    #[test]
    fn failures_shrink_the_window_then_declare_it_dead() {
        let c = defaults();
        let mut w = Window::new(&c);
        // 1/5 + 1/4 + 1/3 cohorts: still alive at width 2; + 1/2 > 1: dead.
        assert!(!w.failed(&c));
        assert_eq!(w.width(), 4);
        assert!(!w.failed(&c));
        assert_eq!(w.width(), 3);
        assert!(!w.failed(&c));
        assert_eq!(w.width(), 2);
        assert!(w.failed(&c));
        assert!(w.is_dead());
        // Further failures of deliveries that were in flight change nothing.
        assert!(!w.failed(&c));
        assert!(w.is_dead());
        // A success (or the mark's expiry) brings it back.
        w.succeeded(&c, 2);
        assert_eq!(w.width(), 2);
        w.revive(&c, 0);
        assert_eq!(w.width(), 5);
    }

    #[test]
    fn a_success_resets_the_cohort_count() {
        let c = defaults();
        let mut w = Window::new(&c);
        for _ in 0..20 {
            assert!(!w.failed(&c));
            w.succeeded(&c, 0);
        }
        assert!(!w.is_dead());
    }

    #[test]
    fn at_concurrency_one_a_failed_cohort_is_one_failure() {
        let c = Concurrency {
            initial: 1,
            ..defaults()
        };
        let mut w = Window::new(&c);
        assert!(w.failed(&c));
        let c3 = Concurrency {
            initial: 1,
            failed_cohort_limit: 3,
            ..defaults()
        };
        let mut w = Window::new(&c3);
        assert!(!w.failed(&c3));
        assert!(!w.failed(&c3));
        assert_eq!(w.width(), 1, "never below one while alive");
        assert!(w.failed(&c3));
        let never = Concurrency {
            failed_cohort_limit: 0,
            ..defaults()
        };
        let mut w = Window::new(&never);
        for _ in 0..100 {
            assert!(!w.failed(&never));
        }
        assert_eq!(w.width(), 1);
    }

    #[test]
    fn fractional_negative_feedback_decrements_at_the_start_of_each_run() {
        let c = Concurrency {
            initial: 20,
            negative: Feedback::parse("1/4").unwrap(),
            failed_cohort_limit: 0,
            ..defaults()
        };
        let mut w = Window::new(&c);
        let widths: Vec<u32> = (0..9)
            .map(|_| {
                w.failed(&c);
                w.width()
            })
            .collect();
        assert_eq!(widths, [19, 19, 19, 19, 18, 18, 18, 18, 17]);
    }

    #[test]
    fn the_initial_window_stays_within_the_limit() {
        let c = Concurrency {
            initial: 5,
            limit: 2,
            ..defaults()
        };
        assert_eq!(Window::new(&c).width(), 2);
        let unlimited = Concurrency { limit: 0, ..c };
        let mut w = Window::new(&unlimited);
        for _ in 0..100 {
            w.succeeded(&unlimited, 100);
        }
        assert_eq!(w.width(), 105);
    }
}
