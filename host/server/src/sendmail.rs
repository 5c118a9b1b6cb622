//! `postern sendmail` and the same binary called `sendmail`: Postfix's
//! sendmail(1) and postdrop, the way `mail`, cron and scripts hand a
//! message to the mail system without the network.
//!
//! ```text
//! sendmail [-t] [-i | -oi] [-f SENDER] [-F NAME] [-C CONFIG] [--] [RECIPIENT...]
//! ```
//!
//! The message is read from standard input (a leading mbox `From ` line
//! is dropped; without `-i` a line holding a single `.` ends it), written
//! into the maildrop with the envelope ([`postern_queue::pickup`]), and
//! the running daemon is told to pick it up; without one it waits there
//! for the next start. `-t` adds the addresses of `To:`, `Cc:` and `Bcc:`
//! (the pickup removes `Bcc:`); bare names get `@$myorigin`, as does the
//! default sender, the login name of the caller. Exit codes are
//! sysexits(3)'s: 0, `EX_USAGE` (64) for bad options or no recipients,
//! `EX_DATAERR` (65) for a message that cannot be taken (too large, `-t`
//! without addresses), `EX_NOUSER` (67) for an address that does not
//! parse, `EX_SOFTWARE` (70) for a config that does not load,
//! `EX_TEMPFAIL` (75) when the maildrop cannot be written.
//!
//! The DSN options `-N never|success,failure,delay`, `-R full|hdrs` and
//! `-V ENVID` are RFC 3461's NOTIFY, RET and ENVID. Not supported: `-bs`
//! (SMTP on standard input), `-bd`, `-bp`, `-q`. As the daemon
//! that reads the maildrop runs as the queue's owner, a user who cannot
//! reach `$queue_directory/maildrop` gets `EX_TEMPFAIL`: there is no
//! setgid postdrop helper.

#![allow(clippy::print_stderr, reason = "sendmail reports on stderr")]

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postern_mail::{Address, ReversePath};
use postern_queue::pickup::{self, Submission};

use crate::config::{self, Config};

/// sysexits(3).
pub const EX_USAGE: u8 = 64;
/// sysexits(3).
pub const EX_DATAERR: u8 = 65;
/// sysexits(3).
pub const EX_NOUSER: u8 = 67;
/// sysexits(3).
pub const EX_SOFTWARE: u8 = 70;
/// sysexits(3).
pub const EX_TEMPFAIL: u8 = 75;

/// A failure: its exit code and what to say.
#[derive(Debug)]
pub struct Failure {
    /// The sysexits code.
    pub code: u8,
    /// The message after `sendmail: fatal: `.
    pub message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// The command line, read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
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
            if WITH_VALUE.contains(letter) {
                let value = if rest.is_empty() {
                    let Some(v) = args.get(i) else {
                        return Err(fail(EX_USAGE, format!("option -{letter} needs a value")));
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
                    'b' if value != "m" => {
                        return Err(fail(
                            EX_USAGE,
                            format!("-b{value}: only -bm (deliver mail) is supported"),
                        ));
                    }
                    // -B, -X, -h, -L, -p, -e: accepted, ignored.
                    _ => {}
                }
                break;
            }
            match letter {
                't' => o.extract = true,
                'i' => o.ignore_dots = true,
                'v' | 'U' | 'm' | 'n' | 'x' | 'G' | 'A' | 'I' | 'c' => {}
                _ => return Err(fail(EX_USAGE, format!("unsupported option -{letter}"))),
            }
        }
    }
    Ok(o)
}

/// Runs sendmail with `args` (without the program name); `config` is the
/// global `--config` of `postern sendmail`.
pub fn run(args: &[String], config: Option<&Path>) -> ExitCode {
    match submit(args, config, &mut std::io::stdin().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sendmail: fatal: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The binary called as `sendmail`: its arguments as they came.
/// The config comes from `-C`, else `$POSTERN_CONFIG`, else the default.
pub fn run_as_sendmail(args: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env = std::env::var_os("POSTERN_CONFIG").map(PathBuf::from);
    run(&args, env.as_deref())
}

fn load(path: Option<&Path>) -> Result<Config, Failure> {
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

/// Everything but the exit: options, config, input, maildrop.
pub fn submit(args: &[String], config: Option<&Path>, input: &mut dyn Read) -> Result<(), Failure> {
    let options = parse(args)?;
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
            recipients.push(qualify(item, &origin)?);
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
            recipients.push(qualify(&item, &origin)?);
        }
    }
    if recipients.is_empty() {
        return Err(no_recipients());
    }
    let submission = Submission {
        uid,
        sender,
        full_name: options.full_name,
        recipients,
        content,
        notify,
        ret,
        envid: options.envid,
    };
    let dir = &main.queue_directory;
    pickup::drop_file(dir, &submission).map_err(|e| {
        fail(
            EX_TEMPFAIL,
            format!(
                "cannot write to {}: {e}",
                pickup::maildrop_dir(dir).display()
            ),
        )
    })?;
    // No daemon (or none we may reach): the file waits for the next scan.
    let _ = pickup::notify(dir);
    Ok(())
}

fn no_recipients() -> Failure {
    fail(
        EX_USAGE,
        "recipient addresses must be given on the command line or with -t",
    )
}

/// The message from `input`, CRLF line ends, a leading `From ` line
/// dropped, ended by EOF or (without `ignore_dots`) a lone `.`.
fn read_message(input: &mut dyn Read, ignore_dots: bool, limit: u64) -> Result<Vec<u8>, Failure> {
    let mut raw = Vec::new();
    // One byte over the limit is enough to know it is too much.
    input
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| fail(EX_TEMPFAIL, format!("cannot read the message: {e}")))?;
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut first = true;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let ended = line.ends_with(b"\n");
        let text = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        if std::mem::take(&mut first) && text.starts_with(b"From ") {
            continue;
        }
        if !ignore_dots && text == b"." && ended {
            return Ok(out);
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    if raw.len() as u64 > limit || out.len() as u64 > limit {
        return Err(fail(
            EX_DATAERR,
            format!("message is larger than message_size_limit ({limit} bytes)"),
        ));
    }
    Ok(out)
}

/// `name` → `name@myorigin`; an address must parse.
fn qualify(item: &str, origin: &str) -> Result<Address, Failure> {
    let item = item.trim();
    let item = item
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(item);
    let full = if item.contains('@') {
        item.to_owned()
    } else {
        format!("{item}@{origin}")
    };
    Address::parse(&full).map_err(|e| fail(EX_NOUSER, format!("bad address {item:?}: {e}")))
}

/// The login name of `uid` from /etc/passwd, else `$LOGNAME`/`$USER`.
fn login_name(uid: u32) -> String {
    let from_passwd = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_owned())
        })
    });
    from_passwd
        .or_else(|| std::env::var("LOGNAME").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "nobody".to_owned())
}

/// The addresses in the `To:`, `Cc:` and `Bcc:` fields of the header
/// (RFC 5322 §3.6.3), as written: `Name <a@b>` gives `a@b`, a group's
/// display name and comments are dropped.
pub fn header_recipients(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let mut fields: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.split("\r\n") {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        fields.extend(current.take());
        let Some((name, value)) = line.split_once(':') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        if matches!(name.as_str(), "to" | "cc" | "bcc") {
            current = Some(value.to_owned());
        }
    }
    fields.extend(current);
    fields.iter().flat_map(|f| address_list(f)).collect()
}

/// Splits an address list at commas outside quotes, brackets and comments.
fn address_list(value: &str) -> Vec<String> {
    let (mut items, mut item) = (Vec::new(), String::new());
    let (mut quoted, mut angle, mut comment) = (false, false, 0usize);
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if quoted {
                item.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '<' if !quoted => {
                angle = true;
                item.clear();
            }
            '>' if !quoted && angle => {
                angle = false;
                items.push(std::mem::take(&mut item));
                item.push('\0');
            }
            ':' if !quoted && !angle => item.clear(), // a group's name
            ',' | ';' if !quoted && !angle => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    items.push(item);
    items
        .into_iter()
        .filter(|i| !i.starts_with('\0'))
        .map(|i| i.split_whitespace().collect::<String>())
        .filter(|i| !i.is_empty())
        .collect()
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
        assert_eq!(parse(&args("-bs")).unwrap_err().code, EX_USAGE);
        assert_eq!(parse(&args("-Q")).unwrap_err().code, EX_USAGE);
    }

    #[test]
    fn dots_and_line_ends() {
        let read = |s: &[u8], i| read_message(&mut &s[..], i, 1000);
        assert_eq!(
            read(b"From x  date\nSubject: a\n\nx\n.\nafter\n", false).unwrap(),
            b"Subject: a\r\n\r\nx\r\n"
        );
        assert_eq!(read(b"a\r\n.\r\nb", true).unwrap(), b"a\r\n.\r\nb\r\n");
        assert_eq!(read(b"..\n", false).unwrap(), b"..\r\n");
        let big = vec![b'x'; 2000];
        assert_eq!(
            read_message(&mut &big[..], true, 1000).unwrap_err().code,
            EX_DATAERR
        );
    }

    #[test]
    fn recipients_from_the_header() {
        let content = b"To: Bob <bob@example.org>, carol\r\nCc: \"Doe, J\" <j@d.org> (x, y),\r\n  dave@e.org\r\nBcc: team: eve@f.org, fay@g.org;\r\nSubject: to: nobody@h.org\r\n\r\nTo: body@i.org\r\n";
        assert_eq!(
            header_recipients(content),
            [
                "bob@example.org",
                "carol",
                "j@d.org",
                "dave@e.org",
                "eve@f.org",
                "fay@g.org"
            ]
        );
        assert!(header_recipients(b"To: undisclosed-recipients:;\r\n\r\n").is_empty());
    }

    #[test]
    fn qualification() {
        assert_eq!(qualify("bob", "x.org").unwrap().to_string(), "bob@x.org");
        assert_eq!(
            qualify(" <a@b.org> ", "x.org").unwrap().to_string(),
            "a@b.org"
        );
        assert_eq!(qualify("a b@@", "x.org").unwrap_err().code, EX_NOUSER);
    }
}
