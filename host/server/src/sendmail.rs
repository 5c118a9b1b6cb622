//! `postern sendmail` and the same binary called `sendmail`: Postfix's
//! sendmail(1) and postdrop, the way `mail`, cron and scripts hand a
//! message to the mail system without the network.
//!
//! ```text
//! sendmail [-t] [-i | -oi] [-f SENDER | -r SENDER] [-F NAME] [-N DSN] [-R RET]
//!          [-V ENVID] [-C CONFIG] [--] [RECIPIENT...]
//! sendmail -bs | -bp | -bi | -I | -q
//! mailq          (sendmail -bp, the binary linked as mailq)
//! newaliases     (sendmail -bi, the binary linked as newaliases)
//! ```
//!
//! The message is read from standard input (a leading mbox `From ` line
//! is dropped; without `-i` a line holding a single `.` ends it) and
//! handed to the running daemon over the pickup socket, or, when none
//! runs, written into the maildrop for the next start, by root and by
//! every other user alike ([`postern_queue::pickup`] explains both and
//! why a user who is not root may use them safely): mail is neither lost
//! nor refused because the daemon is down. `-t` adds the addresses of `To:`, `Cc:` and
//! `Bcc:` (the pickup removes `Bcc:`); bare names get `@$myorigin`, as
//! does the default sender, the login name of the caller. The DSN options
//! `-N never|success,failure,delay`, `-R full|hdrs` and `-V ENVID` are
//! RFC 3461's NOTIFY, RET and ENVID.
//!
//! The other modes, as Postfix's sendmail runs other programs for them:
//! `-bs` an SMTP session on standard input and output, as the caller,
//! without the network ([`crate::sendmail_smtp`]); `-bp` the queue
//! listing (mailq, `postern queue list`) and `-q` a queue run (`postern
//! flush`; `-qINTERVAL` is accepted and ignored, as in Postfix), both
//! asked of the daemon over the pickup socket so that any user may, as
//! with Postfix's defaults; `-bi` and `-I` the aliases check
//! (newaliases, `postern aliases`).
//! Flags of other sendmails that change nothing here (`-om`, `-oem`,
//! `-odi`, `-v`, `-B 8BITMIME`, `-h N`, ...) are accepted and ignored;
//! any other option is a usage error. `-bd` (run the daemon) and `-bv`
//! (address verification) are not supported.
//!
//! Exit codes are sysexits(3)'s: 0; `EX_USAGE` (64) for bad options or
//! no recipients; `EX_DATAERR` (65) for a message that cannot be taken
//! (too large, `-t` without addresses, refused by the daemon);
//! `EX_NOUSER` (67) for an address that does not parse; `EX_SOFTWARE`
//! (70) for a config that does not load; `EX_TEMPFAIL` (75) when neither
//! the daemon nor the maildrop takes the message; `EX_UNAVAILABLE` (69)
//! for `-q` or `-bp` without a daemon to ask (and, for `-bp`, no right
//! to read the queue).

#![allow(clippy::print_stderr, reason = "sendmail reports on stderr")]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postern_mail::{Recipient, ReversePath};
use postern_queue::pickup::{self, Answer, Submission};

use crate::config::{self, Config};
use crate::sendmail_message::{header_recipients, login_name, qualify, read_message};

/// sysexits(3).
pub const EX_USAGE: u8 = 64;
/// sysexits(3).
pub const EX_DATAERR: u8 = 65;
/// sysexits(3).
pub const EX_NOUSER: u8 = 67;
/// sysexits(3).
pub const EX_UNAVAILABLE: u8 = 69;
/// sysexits(3).
pub const EX_SOFTWARE: u8 = 70;
/// sysexits(3).
pub const EX_TEMPFAIL: u8 = 75;

/// The short usage text after a usage error.
const USAGE: &str = "usage: sendmail [-t] [-i] [-f sender] [-F name] [-N dsn] [-R ret] \
[-V envid] [-C config] [recipient ...] | -bs | -bp | -bi | -q";

/// A failure: its exit code and what to say.
#[derive(Debug)]
pub struct Failure {
    /// The sysexits code.
    pub code: u8,
    /// The message after `sendmail: fatal: `.
    pub message: String,
}

pub(crate) fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

fn usage(message: impl std::fmt::Display) -> Failure {
    fail(EX_USAGE, format!("{message}\n{USAGE}"))
}

/// What sendmail was asked to do (`-b` and its kin).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-bm`, the default: send the message on standard input.
    #[default]
    Deliver,
    /// `-bs`: an SMTP session on standard input and output.
    Smtp,
    /// `-bp`: list the queue (mailq).
    ListQueue,
    /// `-q`: a queue run now (`postern flush`).
    Flush,
    /// `-qINTERVAL`: the periodic queue runs of a sendmail daemon; the
    /// daemon schedules its own, so nothing to do.
    Nothing,
    /// `-bi`, `-I`: check the aliases (newaliases).
    Aliases,
}

/// The command line, read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// What to do.
    pub mode: Mode,
    /// `-t`.
    pub extract: bool,
    /// `-i` / `-oi`: a lone dot does not end the message.
    pub ignore_dots: bool,
    /// `-f` / `-r`.
    pub sender: Option<String>,
    /// `-F`.
    pub full_name: Option<String>,
    /// `-C`: the config file.
    pub config: Option<PathBuf>,
    /// `-N`: DSN NOTIFY (`never` or `success,failure,delay`).
    pub notify: Option<String>,
    /// `-R`: DSN RET (`full` or `hdrs`).
    pub ret: Option<String>,
    /// `-V`: DSN ENVID.
    pub envid: Option<String>,
    /// The recipients given.
    pub recipients: Vec<String>,
}

/// Options that take a value, as in Postfix's sendmail (getopt's `X:`).
const WITH_VALUE: &str = "BCFLNRVXbefhopr";

/// Flags without a value that other sendmails know and that change
/// nothing here: `-v` (verbose), `-U` (initial submission), `-m` (me
/// too), `-n` (no aliasing), `-x`, `-G` (gateway), `-A`, `-c`.
const IGNORED: &str = "vUmnxGAc";

/// Reads sendmail's options: `-fSENDER` and `-f SENDER` alike, flags
/// bundled as getopt allows (`-ti`).
pub fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            o.recipients.extend(args[i..].iter().cloned());
            break;
        }
        let Some(mut rest) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            o.recipients.push(arg.clone());
            continue;
        };
        while let Some(letter) = rest.chars().next() {
            rest = &rest[letter.len_utf8()..];
            if letter == 'q' {
                // getopt's `q::`: an optional value, attached only.
                o.mode = match rest.chars().next() {
                    None => Mode::Flush,
                    // -qRsite, -qSsite: deliver for a site; every queued
                    // message is tried.
                    Some('R' | 'S') => Mode::Flush,
                    Some(_) => Mode::Nothing,
                };
                break;
            }
            if WITH_VALUE.contains(letter) {
                let value = if rest.is_empty() {
                    let Some(v) = args.get(i) else {
                        return Err(usage(format!("option -{letter} needs a value")));
                    };
                    i += 1;
                    v.clone()
                } else {
                    rest.to_owned()
                };
                match letter {
                    'f' | 'r' => o.sender = Some(value),
                    'F' => o.full_name = Some(value),
                    'C' => o.config = Some(PathBuf::from(value)),
                    'N' => o.notify = Some(value),
                    'R' => o.ret = Some(value),
                    'V' => o.envid = Some(value),
                    // -oi; -odb, -oem, -om ...: sendmail habits that change
                    // nothing here.
                    'o' if value == "i" => o.ignore_dots = true,
                    'b' => o.mode = mode(&value)?,
                    // -B, -X, -h, -L, -p, -e: accepted, ignored.
                    _ => {}
                }
                break;
            }
            match letter {
                't' => o.extract = true,
                'i' => o.ignore_dots = true,
                'I' => o.mode = Mode::Aliases,
                _ if IGNORED.contains(letter) => {}
                _ => return Err(usage(format!("unsupported option -{letter}"))),
            }
        }
    }
    Ok(o)
}

/// The mode of `-bX`.
fn mode(value: &str) -> Result<Mode, Failure> {
    match value {
        "m" => Ok(Mode::Deliver),
        "s" => Ok(Mode::Smtp),
        "p" => Ok(Mode::ListQueue),
        "i" => Ok(Mode::Aliases),
        // Postfix ignores these too (host status, purge host status).
        "h" | "H" => Ok(Mode::Deliver),
        "d" | "l" => Err(usage(format!(
            "-b{value}: run `postern start` to start the mail system"
        ))),
        _ => Err(usage(format!(
            "-b{value}: unsupported mode (-bm, -bs, -bp and -bi are)"
        ))),
    }
}

/// Runs sendmail with `args` (without the program name); `config` is the
/// global `--config` of `postern sendmail`.
pub fn run(args: &[String], config: Option<&Path>) -> ExitCode {
    let result = parse(args).and_then(|options| match options.mode {
        Mode::Deliver => submit(&options, config, &mut std::io::stdin().lock()),
        Mode::Nothing => Ok(ExitCode::SUCCESS),
        Mode::Smtp => {
            let config = load(options.config.as_deref().or(config))?;
            crate::sendmail_smtp::run(&config)
        }
        Mode::ListQueue | Mode::Flush => {
            let config = load(options.config.as_deref().or(config))?;
            ask_daemon(&config, options.mode)
        }
        Mode::Aliases => {
            let config = load(options.config.as_deref().or(config))?;
            crate::queue_cli::aliases(&config).map_err(|e| fail(EX_TEMPFAIL, format!("{e:#}")))
        }
    });
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("sendmail: fatal: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// `-bp` and `-q` through the pickup socket, so that any user may run
/// them as with Postfix; without a daemon, `-bp` reads the queue
/// directly (root and the queue's owner may) and `-q` fails with
/// `EX_UNAVAILABLE`, as `postqueue` does.
fn ask_daemon(config: &Config, mode: Mode) -> Result<ExitCode, Failure> {
    let dir = &config.main.queue_directory;
    let request = if mode == Mode::Flush {
        pickup::Request::Flush
    } else {
        pickup::Request::Mailq
    };
    match pickup::ask(dir, request) {
        Ok(answer) if request == pickup::Request::Mailq => {
            std::io::stdout()
                .write_all(&answer)
                .map_err(|e| fail(EX_TEMPFAIL, format!("cannot write the listing: {e}")))?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(answer) if answer.starts_with(b"ok") => Ok(ExitCode::SUCCESS),
        Ok(answer) => Err(fail(
            EX_TEMPFAIL,
            format!(
                "the mail system answered {:?}",
                String::from_utf8_lossy(&answer).trim_end()
            ),
        )),
        Err(e)
            if pickup::unreachable(&e)
                && request == pickup::Request::Mailq
                && crate::queue_cli::owns_queue(dir) =>
        {
            crate::queue_cli::run(config, None)
                .map_err(|e| fail(EX_UNAVAILABLE, format!("mail system is down, and {e:#}")))
        }
        Err(e) if pickup::unreachable(&e) && request == pickup::Request::Mailq => Err(fail(
            EX_UNAVAILABLE,
            format!(
                "queue report unavailable: the mail system is down, and only root may read {}",
                dir.display()
            ),
        )),
        Err(e) if pickup::unreachable(&e) => Err(fail(
            EX_UNAVAILABLE,
            "cannot flush: the mail system is down",
        )),
        Err(e) => Err(fail(EX_TEMPFAIL, format!("the pickup service failed: {e}"))),
    }
}

/// The names under which the binary is sendmail(1): as in Postfix,
/// `mailq` is `sendmail -bp` and `newaliases` is `sendmail -bi`.
pub const LINK_NAMES: &[&str] = &["sendmail", "mailq", "newaliases"];

/// The binary called as `sendmail` (or `mailq`, `newaliases`): its
/// arguments as they came, the program name first. The config comes
/// from `-C`, else `$POSTERN_CONFIG`, else the default.
pub fn run_as_sendmail(args: Vec<OsString>) -> ExitCode {
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    let name = args.next().unwrap_or_default();
    let mode = match Path::new(&name).file_name().and_then(|n| n.to_str()) {
        Some("mailq") => Some("-bp".to_owned()),
        Some("newaliases") => Some("-bi".to_owned()),
        _ => None,
    };
    let args: Vec<String> = mode.into_iter().chain(args).collect();
    let env = std::env::var_os("POSTERN_CONFIG").map(PathBuf::from);
    run(&args, env.as_deref())
}

pub(crate) fn load(path: Option<&Path>) -> Result<Config, Failure> {
    let loaded = match path {
        Some(p) => Config::load(p),
        None if Path::new(config::DEFAULT_PATH).exists() => {
            Config::load(Path::new(config::DEFAULT_PATH))
        }
        None => Config::embedded(),
    };
    loaded.map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        fail(EX_SOFTWARE, lines.join("; "))
    })
}

/// The message on `input` sent as `options` say: everything of `-bm`
/// but the exit.
pub fn submit(
    options: &Options,
    config: Option<&Path>,
    input: &mut dyn Read,
) -> Result<ExitCode, Failure> {
    let usage = |e: String| fail(EX_USAGE, e);
    let notify = options
        .notify
        .as_deref()
        .map(pickup::parse_notify)
        .transpose()
        .map_err(usage)?;
    let ret = options
        .ret
        .as_deref()
        .map(pickup::parse_ret)
        .transpose()
        .map_err(usage)?;
    if let Some(envid) = &options.envid {
        pickup::check_envid(envid).map_err(usage)?;
    }
    if options.recipients.is_empty() && !options.extract {
        // Said before the message is read, so a terminal user is not
        // left typing into nothing.
        return Err(no_recipients());
    }
    let config = load(options.config.as_deref().or(config))?;
    let main = &config.main;
    let origin = main.myorigin.to_string();
    let limit = main.message_size_limit;
    let content = read_message(input, options.ignore_dots, limit)?;
    let uid = rustix::process::getuid().as_raw();
    let sender = match options.sender.as_deref().map(str::trim) {
        Some("" | "<>") => ReversePath::Null,
        Some(s) => ReversePath::Address(qualify(s, &origin)?),
        None => ReversePath::Address(qualify(&login_name(uid), &origin)?),
    };
    let mut recipients = Vec::new();
    for item in options.recipients.iter().flat_map(|r| r.split(',')) {
        if !item.trim().is_empty() {
            recipients.push(Recipient::new(qualify(item, &origin)?));
        }
    }
    if options.extract {
        let found = header_recipients(&content);
        if found.is_empty() {
            return Err(fail(
                EX_DATAERR,
                "-t: no recipient addresses found in the message header",
            ));
        }
        for item in found {
            recipients.push(Recipient::new(qualify(&item, &origin)?));
        }
    }
    if recipients.is_empty() {
        return Err(no_recipients());
    }
    let submission = Submission {
        uid,
        sender,
        full_name: options.full_name.clone(),
        recipients,
        content,
        notify,
        ret,
        envid: options.envid.clone(),
        queue_id: None,
        helo: None,
    };
    hand_over(&main.queue_directory, &submission)?;
    Ok(ExitCode::SUCCESS)
}

/// Gives `submission` to the running daemon, or without one (or when it
/// cannot take it now) leaves it in the maildrop; `Ok` once it is on
/// disk either way.
pub(crate) fn hand_over(queue_directory: &Path, submission: &Submission) -> Result<(), Failure> {
    let why = match pickup::submit(queue_directory, submission) {
        Ok(Answer::Queued(_)) => return Ok(()),
        Ok(Answer::Rejected(text)) => {
            return Err(fail(
                EX_DATAERR,
                format!("the mail system refused the message: {text}"),
            ));
        }
        Ok(Answer::Deferred(text)) => text,
        Ok(other) => format!("{other:?}"),
        Err(e) if pickup::unreachable(&e) => "the mail system is down".to_owned(),
        Err(e) => format!("the pickup service failed: {e}"),
    };
    pickup::drop_file(queue_directory, submission).map_err(|e| {
        fail(
            EX_TEMPFAIL,
            format!(
                "{why}, and {} cannot be written: {e}",
                pickup::maildrop_dir(queue_directory).display()
            ),
        )
    })?;
    // A daemon that could not take it now looks there again soon.
    let _ = pickup::notify(queue_directory);
    Ok(())
}

fn no_recipients() -> Failure {
    usage("recipient addresses must be given on the command line or with -t")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options() {
        let o = parse(&args("-t -oi -fme@x.org -F Me -odb -- -a b")).unwrap();
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.sender.as_deref(), Some("me@x.org"));
        assert_eq!(o.full_name.as_deref(), Some("Me"));
        assert_eq!(o.recipients, ["-a", "b"]);
        let o = parse(&args("-ti -f <> -C /etc/x.toml bob -bm")).unwrap();
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.sender.as_deref(), Some("<>"));
        assert_eq!(o.config, Some(PathBuf::from("/etc/x.toml")));
        let o = parse(&args("-N success,delay -Rhdrs -V env1 bob")).unwrap();
        assert_eq!(o.notify.as_deref(), Some("success,delay"));
        assert_eq!(o.ret.as_deref(), Some("hdrs"));
        assert_eq!(o.envid.as_deref(), Some("env1"));
        assert_eq!(parse(&args("-f")).unwrap_err().code, EX_USAGE);
        assert_eq!(parse(&args("-bs")).unwrap().mode, Mode::Smtp);
        assert_eq!(parse(&args("-bp")).unwrap().mode, Mode::ListQueue);
        assert_eq!(parse(&args("-bi")).unwrap().mode, Mode::Aliases);
        assert_eq!(parse(&args("-I")).unwrap().mode, Mode::Aliases);
        assert_eq!(parse(&args("-q")).unwrap().mode, Mode::Flush);
        assert_eq!(parse(&args("-qRexample.org")).unwrap().mode, Mode::Flush);
        assert_eq!(parse(&args("-q30m")).unwrap().mode, Mode::Nothing);
        let o = parse(&args("-om -oem -odi -v -U -B 8BITMIME -h 5 -n bob")).unwrap();
        assert_eq!(
            (o.mode, o.recipients),
            (Mode::Deliver, vec!["bob".to_owned()])
        );
        assert_eq!(parse(&args("-Q")).unwrap_err().code, EX_USAGE);
        assert_eq!(parse(&args("-bd")).unwrap_err().code, EX_USAGE);
        assert_eq!(parse(&args("-bv bob")).unwrap_err().code, EX_USAGE);
        assert!(
            parse(&args("-Z"))
                .unwrap_err()
                .message
                .contains("usage: sendmail")
        );
    }
}
