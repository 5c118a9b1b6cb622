//! When a plugin call must be over: after its deadline of CPU time, or at
//! the latest at a wall-clock backstop several times longer.
//!
//! Why CPU time: a wall-clock deadline counts the time a call waits for a
//! core. On an overloaded machine (a load of 20 on 2 cores) a plugin that
//! needs a millisecond of compute can wait longer than its whole 250 ms
//! for its thread to be scheduled, and be cut off: mail that a quiet
//! machine accepts is tempfailed because the machine is busy, by exactly
//! the plugins that did nothing wrong (`bench/deadline-load.py` measures
//! it). What the deadline is for, stopping a plugin that computes too
//! long, is a matter of the CPU the plugin itself burns.
//!
//! How it is measured: the call's future is polled by a wrapper
//! ([`Deadline::metered`]) that reads the polling thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`) when a poll begins and when it returns
//! pending; the guest and the host code it calls run only inside those
//! polls, each poll runs on one thread from start to end, and a tokio task
//! may move to another thread only between polls. The call's CPU time is
//! the sum over its ended polls plus the running one's share so far,
//! which the epoch callback reads on the thread that runs the guest (see
//! `crate::plugin`). Time spent waiting (for a core, for the executor
//! after a yield, for a DNS answer) is not CPU time of the thread and is
//! not counted.
//!
//! Why a backstop: CPU time does not advance while a guest is blocked in
//! a host call (a WASI sleep or poll), and a machine could be so loaded
//! that even a quick plugin takes seconds. [`WALL_FACTOR`] times the
//! deadline of wall-clock time ends any call, pushed back by the time the
//! host waits on DNS (which has a budget of its own, [`crate::DnsConfig`]).

use std::future::Future;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The wall-clock backstop, as a multiple of the deadline: 4, so the
/// default 250 ms of CPU time ends at 1 s of wall-clock time whatever the
/// guest is doing; a plugin that needs 1 ms of CPU finishes within it
/// unless the machine gives its thread less than a 250th of a core.
pub(crate) const WALL_FACTOR: u32 = 4;

/// Which limit a call ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// Its deadline of CPU time.
    Cpu,
    /// The wall-clock backstop.
    Wall,
}

/// The deadline of one call. Shared between the store (the epoch callback
/// asks [`Deadline::over`], DNS lookups push the backstop back), the poll
/// wrapper that meters the call's CPU time, and the watchdog outside.
#[derive(Debug)]
pub(crate) struct Deadline {
    /// The CPU time the call may use.
    cpu: Duration,
    /// The wall-clock backstop.
    wall: Mutex<Instant>,
    meter: Mutex<Meter>,
}

/// The call's CPU time so far.
#[derive(Debug, Default)]
struct Meter {
    /// The CPU time of its polls that have ended.
    used: Duration,
    /// The polling thread's CPU clock when the running poll began; `None`
    /// between polls.
    poll_began: Option<Duration>,
}

impl Deadline {
    /// A call starting now that may use `cpu` of CPU time, and at most
    /// [`WALL_FACTOR`] times that of wall-clock time.
    pub(crate) fn new(cpu: Duration) -> Deadline {
        Deadline {
            cpu,
            wall: Mutex::new(Instant::now() + cpu.saturating_mul(WALL_FACTOR)),
            meter: Mutex::default(),
        }
    }

    /// The wall-clock backstop as it stands now.
    pub(crate) fn wall(&self) -> Instant {
        *lock(&self.wall)
    }

    /// Moves the backstop `by` later: the time the host may wait on DNS.
    pub(crate) fn extend(&self, by: Duration) {
        *lock(&self.wall) += by;
    }

    /// Moves the backstop `by` earlier: what a lookup did not use of its
    /// extension.
    pub(crate) fn retract(&self, by: Duration) {
        let mut at = lock(&self.wall);
        *at = at.checked_sub(by).unwrap_or(*at);
    }

    /// Whether the call is past a limit, and which. Called on the thread
    /// that runs the call, inside one of its polls.
    pub(crate) fn over(&self) -> Option<Over> {
        if Instant::now() >= self.wall() {
            Some(Over::Wall)
        } else if self.cpu_used() >= self.cpu {
            Some(Over::Cpu)
        } else {
            None
        }
    }

    /// The call's CPU time so far (inside a poll: up to this moment).
    pub(crate) fn cpu_used(&self) -> Duration {
        let meter = lock(&self.meter);
        let running = meter
            .poll_began
            .map_or(Duration::ZERO, |began| thread_cpu().saturating_sub(began));
        meter.used + running
    }

    /// `call`, with the CPU time of each of its polls added to this
    /// deadline's meter (but that of the poll that finishes it: nothing
    /// reads the meter after the call, and that spares a clock read).
    pub(crate) async fn metered<F: Future>(&self, call: F) -> F::Output {
        let mut call = pin!(call);
        std::future::poll_fn(|cx| {
            lock(&self.meter).poll_began = Some(thread_cpu());
            let polled = call.as_mut().poll(cx);
            if polled.is_pending() {
                let now = thread_cpu();
                let mut meter = lock(&self.meter);
                if let Some(began) = meter.poll_began.take() {
                    meter.used += now.saturating_sub(began);
                }
            }
            polled
        })
        .await
    }
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Locks, whatever a panicking holder left: every update is one step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let started = thread_cpu();
        while thread_cpu() - started < d {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_the_cpu_of_polls_not_the_waits_between_them() {
        let deadline = Deadline::new(Duration::from_secs(1));
        let used = deadline
            .metered(async {
                spin(Duration::from_millis(20));
                // Waiting: neither the sleep nor a move to another worker
                // thread counts.
                tokio::time::sleep(Duration::from_millis(100)).await;
                tokio::task::yield_now().await;
                spin(Duration::from_millis(20));
                deadline.cpu_used()
            })
            .await;
        assert!(used >= Duration::from_millis(40), "{used:?}");
        assert!(used < Duration::from_millis(60), "{used:?}");
        // Past the CPU deadline: over (unless this machine is so loaded
        // that the backstop came first).
        let deadline = Deadline::new(Duration::from_millis(10));
        let over = deadline
            .metered(async {
                spin(Duration::from_millis(15));
                deadline.over()
            })
            .await;
        assert!(
            over == Some(Over::Cpu) || Instant::now() >= deadline.wall(),
            "{over:?}"
        );
    }

    #[test]
    fn the_backstop_ends_a_call_that_only_waits() {
        let deadline = Deadline::new(Duration::from_millis(10));
        assert_eq!(deadline.over(), None);
        std::thread::sleep(Duration::from_millis(10 * u64::from(WALL_FACTOR) + 5));
        assert_eq!(deadline.over(), Some(Over::Wall));
        deadline.extend(Duration::from_secs(1));
        assert_eq!(deadline.over(), None);
        deadline.retract(Duration::from_secs(1));
        assert_eq!(deadline.over(), Some(Over::Wall));
    }
}
