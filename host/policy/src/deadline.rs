//! When a plugin call must be over: after its deadline of CPU time; after
//! a backstop of four times that in time the plugin can be blamed for;
//! and at the latest at a wall-clock ceiling far beyond both.
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
//! (`CLOCK_THREAD_CPUTIME_ID`) and the time when a poll begins and when it
//! returns pending; the guest and the host code it calls run only inside
//! those polls, each poll runs on one thread from start to end, and a
//! tokio task may move to another thread only between polls. The call's
//! CPU time is the sum over its ended polls plus the running one's share
//! so far, which the epoch callback reads on the thread that runs the
//! guest (see `crate::plugin`).
//!
//! Why a backstop, and what it counts: CPU time does not advance while a
//! guest is blocked in a host call (a WASI sleep or poll), so a guest that
//! only waits would never be cut off. The backstop, [`WALL_FACTOR`] times
//! the deadline, counts what the plugin can be blamed for: its CPU time,
//! and the time it waited on something it asked for, from the poll that
//! returned pending to the wake that said the thing was ready. It does
//! not count the waits of the host's or the machine's making: a DNS
//! lookup (which has a timeout and a per-call budget of its own,
//! [`crate::DnsConfig`]); the time a ready call waits for a worker thread
//! that the executor gives to other sessions, after an epoch yield
//! ([`HostWait::Yield`]) or from a wake to the next poll; and the time a
//! poll holds its thread while the kernel runs other processes or the
//! thread waits in the kernel (the CPU clock stops). On an overloaded
//! machine those are what grows: at `bench/deadline-load.py --hogs 40`
//! healthy calls of 0.1 to 2 ms of CPU took up to 0.9 s, up to 0.8 s of it
//! ready but waiting for a thread. The old wall-clock backstop counted it
//! all, and cut off `reject_rbl_client` whenever such a wait passed 1 s:
//! its DNS lookup, right after the wait, let the watchdog look (issue 8).
//! Postfix, too, times a policy server's I/O
//! (`smtpd_policy_service_timeout`), not the time smtpd waits for a CPU.
//! The wake is seen by wrapping the task's waker: the wrapper notes the
//! first wake after each pending poll.
//!
//! Why a ceiling: a machine can be so overloaded that a quick plugin,
//! blameless, takes seconds; it must still end, as a session cannot wait
//! forever. [`OVERLOAD_FACTOR`] times the deadline of wall-clock time
//! (DNS waits excepted, as they have their own bounds) ends any call.

mod meter;

use std::future::Future;
use std::time::Duration;

use meter::Meter;
pub(crate) use meter::{Account, HostWait, Waiting};

/// The backstop, as a multiple of the deadline: 4, so with the default
/// 250 ms a guest blocked in a host call is cut off after 1 s.
pub(crate) const WALL_FACTOR: u32 = 4;

/// The wall-clock ceiling, as a multiple of the deadline: 40, so 10 s for
/// the default 250 ms. Beyond the backstop it only ends calls that the
/// machine, not the plugin, made slow: at `bench/deadline-load.py
/// --hogs 160` (a load of 120 to 150 on 2 cores) the slowest healthy call
/// took 2.5 s, 2.2 s of it ready and waiting for a thread; 10 s leaves a
/// wide margin and still answers the client long before its 5 minutes for
/// a RCPT reply run out (RFC 5321 section 4.5.3.2.3).
pub(crate) const OVERLOAD_FACTOR: u32 = 40;

/// Which limit a call ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// Its deadline of CPU time.
    Cpu,
    /// The backstop: its CPU time and its own waits.
    Wall,
    /// The wall-clock ceiling of an overloaded machine.
    Overload,
}

/// The deadline of one call. Shared between the store (the epoch callback
/// asks [`Deadline::over`], DNS lookups and epoch yields mark their
/// waits), the poll wrapper that meters the call, and the watchdog
/// outside.
#[derive(Debug)]
pub(crate) struct Deadline {
    /// The CPU time the call may use.
    cpu: Duration,
    meter: Meter,
}

impl Deadline {
    /// A call starting now that may use `cpu` of CPU time.
    pub(crate) fn new(cpu: Duration) -> Deadline {
        Deadline {
            cpu,
            meter: Meter::new(),
        }
    }

    /// Whether the call is past a limit, and which. Called on the thread
    /// that runs the call, inside one of its polls (the epoch callback),
    /// or between its polls (the watchdog).
    pub(crate) fn over(&self) -> Option<Over> {
        self.check(Duration::ZERO).err()
    }

    /// The limit the call is past by `grace`; else the least time before
    /// it can be, never zero (each measure advances at most as fast as
    /// real time).
    pub(crate) fn check(&self, grace: Duration) -> Result<Duration, Over> {
        let a = self.account();
        // What is left of `limit`; none once it is used up.
        let left = |limit: Duration, used: Duration| {
            (limit + grace)
                .checked_sub(used)
                .filter(|left| !left.is_zero())
        };
        let cpu = left(self.cpu, a.cpu).ok_or(Over::Cpu)?;
        let blamed =
            left(self.cpu.saturating_mul(WALL_FACTOR), a.cpu + a.waited).ok_or(Over::Wall)?;
        let ceiling = left(
            self.cpu.saturating_mul(OVERLOAD_FACTOR),
            a.elapsed.saturating_sub(a.dns),
        )
        .ok_or(Over::Overload)?;
        Ok(cpu.min(blamed).min(ceiling))
    }

    /// Where the call's time went, up to now.
    pub(crate) fn account(&self) -> Account {
        self.meter.account()
    }

    /// Marks a wait of the host's until the guard is dropped: a wait that
    /// does not count for the backstop (nor, for DNS, for the ceiling).
    pub(crate) fn host_wait(&self, wait: HostWait) -> Waiting<'_> {
        self.meter.host_wait(wait)
    }

    /// `call`, polled with this deadline's meter.
    pub(crate) async fn metered<F: Future>(&self, call: F) -> F::Output {
        self.meter.metered(call).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn past_its_cpu_time_a_call_is_over() {
        let deadline = Deadline::new(Duration::from_millis(10));
        let over = deadline
            .metered(async {
                let started = meter::thread_cpu();
                while meter::thread_cpu() - started < Duration::from_millis(15) {}
                deadline.over()
            })
            .await;
        assert_eq!(over, Some(Over::Cpu));
    }

    #[tokio::test]
    async fn the_backstop_ends_a_call_that_only_waits() {
        let deadline = Deadline::new(Duration::from_millis(10));
        let (over, account) = deadline
            .metered(async {
                assert_eq!(deadline.over(), None);
                // A wait the guest asked for (a WASI sleep) is its own.
                tokio::time::sleep(Duration::from_millis(10 * u64::from(WALL_FACTOR) + 5)).await;
                (deadline.over(), deadline.account())
            })
            .await;
        assert_eq!(over, Some(Over::Wall), "{account}");
        assert!(account.waited >= Duration::from_millis(40), "{account}");
        // Outside the call the watchdog sees the same.
        assert_eq!(deadline.check(Duration::ZERO), Err(Over::Wall));
        assert!(deadline.check(Duration::from_secs(1)).is_ok());
    }

    /// The regression of issue 8 (`bench/deadline-load.py`): a call that
    /// is ready but waits for its thread, which the executor gives to
    /// other sessions (here: a task that holds the test's one thread),
    /// after an epoch yield and after a wait of its own, is not cut off by
    /// the backstop (100 ms here; it waits 300 ms).
    #[tokio::test(flavor = "current_thread")]
    async fn a_ready_call_waiting_for_its_thread_is_not_blamed() {
        let deadline = Arc::new(Deadline::new(Duration::from_millis(25)));
        let call = {
            let deadline = deadline.clone();
            tokio::spawn(async move {
                deadline
                    .metered(async {
                        // An epoch yield, then a wait of its own that
                        // another thread ends after 5 ms.
                        let yielding = deadline.host_wait(HostWait::Yield);
                        tokio::task::yield_now().await;
                        drop(yielding);
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(5));
                            tx.send(())
                        });
                        rx.await.unwrap();
                        (deadline.over(), deadline.account())
                    })
                    .await
            })
        };
        let hog = tokio::spawn(async {
            // Holds the thread as a busy session (or the kernel) would,
            // once after the yield and once after the wake.
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(150));
                tokio::task::yield_now().await;
            }
        });
        hog.await.unwrap();
        let (over, account) = call.await.unwrap();
        assert_eq!(over, None, "{account}");
        assert!(account.queued >= Duration::from_millis(250), "{account}");
        assert!(account.waited < Duration::from_millis(100), "{account}");
    }

    /// Whatever the call waits for, the wall-clock ceiling ends it.
    #[tokio::test(flavor = "current_thread")]
    async fn the_ceiling_ends_a_call_on_an_overloaded_machine() {
        let deadline = Arc::new(Deadline::new(Duration::from_millis(1)));
        let hog = tokio::spawn(async {
            std::thread::sleep(Duration::from_millis(u64::from(OVERLOAD_FACTOR) + 20));
        });
        let call = {
            let deadline = deadline.clone();
            tokio::spawn(async move {
                deadline
                    .metered(async {
                        tokio::task::yield_now().await;
                        deadline.over()
                    })
                    .await
            })
        };
        hog.await.unwrap();
        assert_eq!(call.await.unwrap(), Some(Over::Overload));
    }
}
