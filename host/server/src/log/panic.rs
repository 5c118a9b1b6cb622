//! Panics in the mail log, as Postfix logs its own (`msg_panic`): one
//! `postern/master[PID]: panic: TEXT` line wherever the process's other
//! lines go (stderr, `maillog_file`, syslog, or the daemon's channel for
//! the helper and the session processes), where pflogsumm reports panics
//! apart from fatal errors and warnings. Without this hook Rust writes
//! the message to standard error, which nobody reads once the log goes to
//! a file or to syslog, and which a session process shares with its log
//! channel as an unlabelled line.
//!
//! A panic in a session's task ends that session only (tokio catches
//! it); in the helper or a session process it ends that process, and the
//! daemon says so in its own lines. Either way the panic line is the one
//! place that says where it happened. With `RUST_BACKTRACE` set, Rust's
//! own message and backtrace also go to standard error, for whoever is
//! debugging.

use std::panic::PanicHookInfo;

/// The line's text: the thread, where it panicked and the message, as
/// Rust's own message words them.
fn text(info: &PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    // One log line, whatever the message holds.
    let message = super::channel::printable(message.as_bytes());
    match info.location() {
        Some(at) => format!("thread '{name}' panicked at {at}: {message}"),
        None => format!("thread '{name}' panicked: {message}"),
    }
}

/// Whether Rust's own panic message (with its backtrace) is wanted on
/// standard error too.
fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

/// Sends this process's panics to its log, through `tracing` (the daemon
/// and the session processes: call it once their subscriber is set).
pub fn install() {
    let rust = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(target: "postern/master", severity = "panic", "{}", text(info));
        if backtrace_wanted() {
            rust(info);
        }
    }));
}

/// Sends the privileged helper's panics to the daemon's log, over the
/// channel its warnings take ([`super::channel::helper_line`]).
pub fn install_for_helper() {
    let rust = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        super::channel::helper_line("panic", &text(info));
        if backtrace_wanted() {
            rust(info);
        }
    }));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_logged_as_a_panic_line() {
        let (lines, subscriber) = crate::log::captured("postern");
        tracing::subscriber::with_default(subscriber, || {
            install();
            let caught = std::panic::catch_unwind(|| panic!("boom {}\nsecond line", 7));
            // Rust's hook back, for the other tests of this process.
            drop(std::panic::take_hook());
            assert!(caught.is_err());
        });
        let got = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let pid = std::process::id();
        assert!(
            got.starts_with(&format!("postern/master[{pid}]: panic: thread '")),
            "{got}"
        );
        assert!(got.contains("host/server/src/log/panic.rs:"), "{got}");
        assert!(got.ends_with(": boom 7\\nsecond line\n"), "{got}");
        assert_eq!(got.lines().count(), 1, "{got}");
    }
}
