//! Delivery to the `|command` and `/file` targets of aliases (Postfix's
//! local(8) "external command" and "external file" delivery), never as
//! root: as the owner of the aliases (or include) file that named the
//! target, or as `default_privs` when root owns it. A daemon that does
//! not run as root cannot change user, so it runs them as itself.
//!
//! Both get the message with Unix line ends, `Return-Path:` and
//! `Delivered-To:` first; a file gets an mbox `From ` line and `>From `
//! quoting as well (through [`postern_mailbox::Mbox`], dot lock and fcntl
//! lock included, when the daemon writes it itself; a root daemon's child
//! appends without the locks). A command's exit status maps to a delivery status as
//! Postfix's sys_exits table does: 0 delivered, `EX_TEMPFAIL` (75),
//! `EX_OSERR` and a signal or time-out deferred, anything else bounced.
//!
//! The child keeps root's supplementary groups when the daemon is root:
//! dropping them needs `setgroups`, which std offers only unstably.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use postern_mail::{DeliveryStatus, EnhancedCode, Envelope, Recipient};

use crate::aliases::Origin;
use crate::settings::LocalSettings;

/// Keep this much of a command's output for the bounce.
const OUTPUT_LIMIT: usize = 1000;

/// Who a target of `origin` runs as: `None` to stay as we are (not
/// root), else a uid and gid that are never root's.
fn privileges(origin: &Origin, settings: &LocalSettings) -> Result<Option<(u32, u32)>, String> {
    // A daemon that dropped to mail_owner still switches, through its
    // root helper (local_privsep).
    if !rustix::process::geteuid().is_root() && postern_privsep::installed().is_none() {
        return Ok(None);
    }
    let (uid, gid) = if origin.uid == 0 {
        settings.default_privs
    } else {
        (origin.uid, origin.gid)
    };
    if uid == 0 {
        return Err("default_privs must not be root".to_owned());
    }
    Ok(Some((uid, gid)))
}

/// The message as a command or file sees it: trace headers, then the
/// content with LF line ends.
fn with_trace(envelope: &Envelope, recipient: &Recipient, content: &[u8], mbox: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 200);
    if mbox {
        let sender = match envelope.sender.address() {
            Some(a) => a.to_string(),
            None => "MAILER-DAEMON".to_owned(),
        };
        out.extend_from_slice(
            format!("From {sender}  {}\n", asctime(SystemTime::now())).as_bytes(),
        );
    }
    out.extend_from_slice(
        format!(
            "Return-Path: <{}>\nDelivered-To: {}\n",
            envelope.sender, recipient.address
        )
        .as_bytes(),
    );
    for line in content.split_inclusive(|&b| b == b'\n') {
        let line = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        if mbox && line.starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    if mbox {
        // The blank line that ends a message in an mbox.
        out.push(b'\n');
    }
    out
}

/// Runs `|command` (an alias's, a `.forward`'s, or `mailbox_command`)
/// with the message on its standard input, in `home` (the recipient's
/// home for `mailbox_command`, `/` otherwise). Blocking.
pub(crate) fn deliver_command(
    command: &str,
    origin: &Origin,
    settings: &LocalSettings,
    envelope: &Envelope,
    recipient: &Recipient,
    content: &[u8],
    home: Option<&Path>,
) -> DeliveryStatus {
    let input = with_trace(envelope, recipient, content, false);
    let address = &recipient.address;
    let base = address.local_base(settings.recipient_delimiter);
    let extension = address
        .local()
        .strip_prefix(base)
        .and_then(|rest| rest.get(1..))
        .unwrap_or("");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        // The environment Postfix's local(8) gives a command.
        .env("SENDER", envelope.sender.to_string())
        .env("RECIPIENT", address.to_string())
        .env("ORIGINAL_RECIPIENT", recipient.original.to_string())
        .env("LOCAL", address.local())
        .env("DOMAIN", address.domain().as_str())
        .env("EXTENSION", extension)
        .env("USER", base)
        .env("LOGNAME", base)
        .env("HOME", home.unwrap_or(Path::new("/")))
        .env("SHELL", "/bin/sh")
        .env("PATH", "/usr/bin:/bin")
        // A home the command's user cannot enter would fail the spawn:
        // then it starts in `/`, as Postfix's local(8) does.
        .current_dir(home.filter(|h| h.is_dir()).unwrap_or(Path::new("/")));
    match run(cmd, origin, settings, &input) {
        Ok(()) => DeliveryStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: format!("delivered to command: {command}"),
        },
        Err(failure) => failure.status(&format!("command {command:?}")),
    }
}

/// Appends the message to `path`, mbox style. Blocking.
pub(crate) fn deliver_file(
    path: &Path,
    origin: &Origin,
    settings: &LocalSettings,
    envelope: &Envelope,
    recipient: &Recipient,
    content: &[u8],
) -> DeliveryStatus {
    let written = match privileges(origin, settings) {
        Err(e) => Err(Failure::Refused(e)),
        // Not root: write it ourselves, locked as a mailbox is.
        Ok(None) => {
            let trace = format!(
                "Return-Path: <{}>\nDelivered-To: {}\n",
                envelope.sender, recipient.address
            );
            let sender = envelope
                .sender
                .address()
                .map(ToString::to_string)
                .unwrap_or_default();
            postern_mailbox::Mbox::new(path)
                .deliver(
                    &sender,
                    &asctime(SystemTime::now()),
                    &[trace.as_bytes(), content],
                )
                .map(drop)
                .map_err(|e| Failure::Io(e.to_string()))
        }
        // Root: a child with the owner's ids does the writing.
        Ok(Some(_)) => {
            let mut cmd = Command::new("/bin/sh");
            cmd.args(["-c", "umask 077 && exec cat >> \"$1\"", "sh"])
                .arg(path)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .current_dir("/");
            run(
                cmd,
                origin,
                settings,
                &with_trace(envelope, recipient, content, true),
            )
        }
    };
    match written {
        Ok(()) => DeliveryStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: format!("delivered to file: {}", path.display()),
        },
        Err(failure) => failure.status(&format!("file {}", path.display())),
    }
}

/// How a child failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Exited with this status and output.
    Exit(i32, String),
    /// Killed by a signal, or by the time limit.
    Killed(String),
    /// Could not be started or written to.
    Io(String),
    /// Not allowed to run at all.
    Refused(String),
}

impl Failure {
    fn status(self, what: &str) -> DeliveryStatus {
        let (class, subject, detail, text) = match self {
            Failure::Exit(code, output) => {
                let (class, subject, detail) = sysexit(code);
                let mut text = format!("{what} died with status {code}");
                if !output.trim().is_empty() {
                    text.push_str(&format!(". Command output: {}", output.trim()));
                }
                (class, subject, detail, text)
            }
            Failure::Killed(why) => (4, 3, 0, format!("{what}: {why}")),
            Failure::Io(e) => (4, 3, 0, format!("cannot deliver to {what}: {e}")),
            Failure::Refused(e) => (5, 7, 0, format!("{what}: {e}")),
        };
        let dsn = EnhancedCode::new(class, subject, detail);
        if class == 4 {
            DeliveryStatus::Deferred { dsn, detail: text }
        } else {
            DeliveryStatus::Bounced { dsn, detail: text }
        }
    }
}

/// Postfix's sys_exits table: the enhanced code of an exit status.
fn sysexit(code: i32) -> (u8, u16, u16) {
    match code {
        65 => (5, 6, 0),      // EX_DATAERR
        67 => (5, 1, 1),      // EX_NOUSER
        68 => (5, 1, 2),      // EX_NOHOST
        71 | 75 => (4, 3, 0), // EX_OSERR, EX_TEMPFAIL
        73 => (5, 2, 0),      // EX_CANTCREAT
        76 => (5, 5, 0),      // EX_PROTOCOL
        77 => (5, 7, 0),      // EX_NOPERM
        78 => (5, 3, 5),      // EX_CONFIG
        _ => (5, 3, 0),       // EX_USAGE, EX_UNAVAILABLE, ... and the rest
    }
}

/// Starts `cmd` under the right ids, feeds it `input`, and waits at most
/// `command_time_limit`.
fn run(
    cmd: Command,
    origin: &Origin,
    settings: &LocalSettings,
    input: &[u8],
) -> Result<(), Failure> {
    let ids = privileges(origin, settings).map_err(Failure::Refused)?;
    if let Some(ids) = ids
        && let Some(done) =
            crate::local_privsep::command(&cmd, ids, settings.command_time_limit, input)
    {
        return done;
    }
    run_as(cmd, ids, settings.command_time_limit, input)
}

/// Starts `cmd` as `ids` (when given: this process is root), feeds it
/// `input`, and waits at most `time_limit`: a root daemon's own
/// deliveries, and the privileged helper's.
pub(crate) fn run_as(
    mut cmd: Command,
    ids: Option<(u32, u32)>,
    time_limit: Duration,
    input: &[u8],
) -> Result<(), Failure> {
    if let Some((uid, gid)) = ids {
        cmd.gid(gid).uid(uid);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Failure::Io(e.to_string()))?;
    let stdin = child.stdin.take();
    let bytes = input.to_vec();
    // A command that never reads its input must not block us: write from
    // a thread, and ignore the broken pipe of one that exits early.
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&bytes);
        }
    });
    // Output is collected by threads that report over a channel: a
    // background process of the command may hold the pipes open long
    // after the command exits, and must not hold the delivery with them.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let streams = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    let mut readers = 0;
    for mut r in streams.into_iter().flatten() {
        readers += 1;
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
            let _ = tx.send(kept);
        });
    }
    let deadline = Instant::now() + time_limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                // The whole process group: the shell and what it started.
                let group = rustix::process::Pid::from_child(&child);
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                let _ = child.kill();
                let _ = child.wait();
                break Err(Failure::Killed("command time limit exceeded".to_owned()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => break Err(Failure::Io(e.to_string())),
        }
    };
    // The writer is not waited for, for the same reason.
    drop(writer);
    let mut output = Vec::new();
    let grace = Instant::now() + Duration::from_secs(1);
    for _ in 0..readers {
        let left = grace.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(kept) => output.extend(kept),
            Err(_) => break,
        }
    }
    let output = String::from_utf8_lossy(&output).replace(['\r', '\n'], " ");
    let status = status?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure::Exit(code, output)),
        None => Err(Failure::Killed(format!("killed by a signal ({status})"))),
    }
}

/// `Mon Nov 23 14:23:36 2026`, the date of an mbox `From ` line (UTC).
fn asctime(t: SystemTime) -> String {
    postern_mail::date::asctime(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn mbox_form() {
        let env = Envelope::new(postern_mail::ReversePath::Null);
        let rcpt = Recipient::new(postern_mail::Address::parse("a@x.org").unwrap());
        let out = with_trace(&env, &rcpt, b"Subject: s\r\n\r\nFrom here\r\nbye", true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("From MAILER-DAEMON  "), "{text}");
        assert!(text.ends_with(
            "\nReturn-Path: <>\nDelivered-To: a@x.org\nSubject: s\n\n>From here\nbye\n\n"
        ));
        assert_eq!(asctime(UNIX_EPOCH), "Thu Jan  1 00:00:00 1970");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(sysexit(75), (4, 3, 0));
        assert_eq!(sysexit(67), (5, 1, 1));
        assert_eq!(sysexit(1), (5, 3, 0));
    }
}
