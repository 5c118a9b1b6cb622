//! Where a plugin call's time goes: the CPU time of its polls, the time
//! they held a thread, and the waits between them, told apart by what was
//! awaited (the guest's own host call, DNS, an epoch yield) and by the
//! wake that ended each wait (what comes after it is waiting for a
//! thread). The deadline (`super`) decides what of it to hold against
//! the plugin.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

/// The meter of one call: polls go through [`Meter::metered`], host waits
/// are marked with [`Meter::host_wait`], and [`Meter::account`] tells
/// where the time went.
#[derive(Debug)]
pub(crate) struct Meter {
    /// When the call began.
    started: Instant,
    tally: Mutex<Tally>,
    /// Notes when the call was woken after a pending poll.
    wakes: Arc<WakeMark>,
}

/// Where the call's time went so far.
#[derive(Debug, Default)]
struct Tally {
    /// The CPU time of its polls that have ended.
    cpu: Duration,
    /// The polling thread's CPU clock, and the time, when the running poll
    /// began; `None` between polls.
    poll_began: Option<(Duration, Instant)>,
    /// The wall-clock time of its polls that have ended: the time it held
    /// a worker thread, whether or not the kernel ran that thread. Told in
    /// the account of a call cut off, not held against it.
    held: Duration,
    /// Ended waits the guest asked for: pending poll to wake.
    waited: Duration,
    /// Ended waits for a thread: wake (or epoch yield) to poll.
    queued: Duration,
    /// Ended waits on DNS: pending poll to wake.
    dns: Duration,
    /// The host's wait in progress, if any (a guest makes one host call
    /// at a time, and the epoch yields only between them).
    host: Option<HostWait>,
    /// Since when the call has been waiting, and whether for the host;
    /// `None` inside a poll.
    pending: Option<(Instant, Option<HostWait>)>,
    polls: u32,
}

/// A wait of the host's making, not the guest's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostWait {
    /// A DNS lookup: bounded by its own timeout and per-call budget.
    Dns,
    /// A yield at an epoch tick, so that a busy guest shares its thread:
    /// the time until the next poll is all the executor's (tokio wakes a
    /// yielded task only once it has run the others).
    Yield,
}

/// Where the call's time went, at some moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Account {
    pub(crate) elapsed: Duration,
    pub(crate) cpu: Duration,
    pub(crate) held: Duration,
    pub(crate) waited: Duration,
    pub(crate) queued: Duration,
    pub(crate) dns: Duration,
    pub(crate) polls: u32,
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{:.0} ms: {:.1} ms of CPU in {:.0} ms holding a thread, {:.0} ms waiting on its \
             own host calls, {:.0} ms on DNS, {:.0} ms ready but waiting for a thread; {} polls",
            ms(self.elapsed),
            ms(self.cpu),
            ms(self.held),
            ms(self.waited),
            ms(self.dns),
            ms(self.queued),
            self.polls
        )
    }
}

impl Meter {
    /// A meter for a call that begins now.
    pub(crate) fn new() -> Meter {
        Meter {
            started: Instant::now(),
            tally: Mutex::default(),
            wakes: Arc::default(),
        }
    }

    /// Where the call's time went, up to now.
    pub(crate) fn account(&self) -> Account {
        let now = Instant::now();
        let woken = *lock(&self.wakes.woken);
        let m = lock(&self.tally);
        let (cpu, held) = m
            .poll_began
            .map_or((Duration::ZERO, Duration::ZERO), |(cpu, at)| {
                (
                    thread_cpu().saturating_sub(cpu),
                    now.saturating_duration_since(at),
                )
            });
        let mut a = Account {
            elapsed: now.saturating_duration_since(self.started),
            cpu: m.cpu + cpu,
            held: m.held + held,
            waited: m.waited,
            queued: m.queued,
            dns: m.dns,
            polls: m.polls,
        };
        if let Some((since, host)) = m.pending {
            split_wait(&mut a, since, host, woken, now);
        }
        a
    }

    /// Marks a wait of the host's until the guard is dropped: a wait that
    /// does not count for the backstop (nor, for DNS, for the ceiling).
    pub(crate) fn host_wait(&self, wait: HostWait) -> Waiting<'_> {
        let outer = lock(&self.tally).host.replace(wait);
        Waiting { meter: self, outer }
    }

    /// `call`, polled with a meter: the CPU time of each of its polls, and
    /// how long it waited between them, and for what.
    pub(crate) async fn metered<F: Future>(&self, call: F) -> F::Output {
        let mut call = pin!(call);
        let waker = Waker::from(self.wakes.clone());
        std::future::poll_fn(|cx| {
            self.wakes.follow(cx.waker());
            self.poll_begins();
            let polled = call.as_mut().poll(&mut Context::from_waker(&waker));
            if polled.is_pending() {
                self.poll_ends();
            }
            polled
        })
        .await
    }

    /// A poll of the call begins on this thread: the wait before it ends.
    fn poll_begins(&self) {
        let now = Instant::now();
        let woken = lock(&self.wakes.woken).take();
        let mut m = lock(&self.tally);
        if let Some((since, host)) = m.pending.take() {
            let mut a = Account::default();
            split_wait(&mut a, since, host, woken, now);
            m.waited += a.waited;
            m.queued += a.queued;
            m.dns += a.dns;
        }
        m.polls += 1;
        m.poll_began = Some((thread_cpu(), now));
    }

    /// The running poll returned pending: its CPU time is added, and a
    /// wait begins.
    fn poll_ends(&self) {
        let (cpu, now) = (thread_cpu(), Instant::now());
        let mut m = lock(&self.tally);
        if let Some((began, at)) = m.poll_began.take() {
            m.cpu += cpu.saturating_sub(began);
            m.held += now.saturating_duration_since(at);
        }
        m.pending = Some((now, m.host));
    }
}

/// Adds the wait from `since` (a pending poll) to `now` to `a`: up to the
/// first wake after `since` to what it waited on (DNS, or else the guest's
/// own host call), and the rest to waiting for a thread; all of it to
/// waiting for a thread after an epoch yield, whose wake tokio defers
/// until it has run the other tasks. Without a wake (a poll the
/// watchdog's timer caused), the call is still waiting on what it was.
fn split_wait(
    a: &mut Account,
    since: Instant,
    host: Option<HostWait>,
    woken: Option<Instant>,
    now: Instant,
) {
    // A wake before `since` came while the poll ran: ready at once.
    let ready = match host {
        Some(HostWait::Yield) => since,
        _ => woken.map_or(now, |w| w.clamp(since, now)),
    };
    let waited = ready.saturating_duration_since(since);
    match host {
        Some(HostWait::Dns) => a.dns += waited,
        _ => a.waited += waited,
    }
    a.queued += now.saturating_duration_since(ready);
}

/// Ends a wait of the host's when dropped ([`Meter::host_wait`]).
pub(crate) struct Waiting<'a> {
    meter: &'a Meter,
    outer: Option<HostWait>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.meter.tally).host = self.outer;
    }
}

/// The waker the metered call sees: it notes the first wake since the
/// last poll began, and passes it on to the task's own waker.
#[derive(Debug, Default)]
struct WakeMark {
    woken: Mutex<Option<Instant>>,
    task: Mutex<Option<Waker>>,
}

impl WakeMark {
    /// Wakes `task` from now on (the task's waker may change between
    /// polls, as a task's waker may).
    fn follow(&self, task: &Waker) {
        let mut held = lock(&self.task);
        if !held.as_ref().is_some_and(|w| w.will_wake(task)) {
            *held = Some(task.clone());
        }
    }
}

impl Wake for WakeMark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.woken).get_or_insert_with(Instant::now);
        // Cloned out, so that no lock is held while the task is woken.
        let task = lock(&self.task).clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub(super) fn thread_cpu() -> Duration {
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
        let meter = Meter::new();
        let a = meter
            .metered(async {
                spin(Duration::from_millis(20));
                // Waiting: neither the sleep nor a move to another worker
                // thread counts.
                tokio::time::sleep(Duration::from_millis(100)).await;
                tokio::task::yield_now().await;
                spin(Duration::from_millis(20));
                meter.account()
            })
            .await;
        assert!(a.cpu >= Duration::from_millis(40), "{a}");
        assert!(a.cpu < Duration::from_millis(60), "{a}");
        assert!(a.waited >= Duration::from_millis(100), "{a}");
    }

    #[tokio::test]
    async fn dns_waits_are_told_apart() {
        let meter = Meter::new();
        let a = meter
            .metered(async {
                let lookup = meter.host_wait(HostWait::Dns);
                tokio::time::sleep(Duration::from_millis(60)).await;
                drop(lookup);
                meter.account()
            })
            .await;
        assert!(a.dns >= Duration::from_millis(60), "{a}");
        assert!(a.waited < Duration::from_millis(10), "{a}");
    }
}
