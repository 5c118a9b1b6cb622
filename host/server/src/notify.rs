//! Telling systemd where the daemon stands (`Type=notify`, sd_notify(3)):
//! `READY=1` once every listener is bound and the control socket answers,
//! `RELOADING=1` (with `MONOTONIC_USEC`, as systemd 253's
//! `Type=notify-reload` asks) while a reload runs and `READY=1` again
//! after it, `STOPPING=1` when a stop begins, and a `STATUS=` line an
//! operator sees in `systemctl status`.
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd) every call does
//! nothing. A failure to notify is logged, never fatal: the mail goes on
//! whatever the service manager believes. The example unit is
//! `examples/postern.service`.

use sd_notify::NotifyState;

/// Every listener is bound and the daemon serves.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload begins: systemd shows the unit as reloading until
/// [`reloaded`].
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// A reload ended, with `status` (its result) for `systemctl status`.
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A stop begins: sessions are finishing.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing sessions"),
    ]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(target: "postern/master", "cannot notify the service manager ($NOTIFY_SOCKET): {e}");
    }
}
