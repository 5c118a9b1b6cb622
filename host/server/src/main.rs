//! `postern`: the mail server and its command line, in one binary (as
//! Postfix's `postfix`, `postconf` and `master` together).

#![allow(clippy::print_stdout, reason = "the command line answers on stdout")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use postern_server::config::{self, Config, ConfigErrors, Machine};
use postern_server::{daemon, log, plugin_cli, queue_cli, sendmail, table_cli, users_cli};

#[derive(Debug, Parser)]
#[command(
    name = "postern",
    version,
    about = "A mail server whose policy is made of WebAssembly plugins"
)]
struct Cli {
    /// The config file (default /etc/postern/postern.toml; without one,
    /// the embedded default runs).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the mail server.
    Start {
        /// Stay in the foreground and log to stderr (for terminals,
        /// systemd and containers). Without it the server detaches and
        /// logs to $data_directory/postern.log.
        #[arg(long)]
        foreground: bool,
    },
    /// Stop a running server gracefully (SIGTERM to the pid in the queue
    /// directory): sessions finish their transaction first (up to 30 s).
    Stop,
    /// Stop a running server at once (SIGQUIT), cutting sessions short.
    Abort,
    /// Tell whether the server is running.
    Status,
    /// Look keys up in the tables of [tables.NAME] (postmap -q).
    Table {
        #[command(subcommand)]
        command: table_cli::TableCommand,
    },
    /// List the plugins, or run one against a made-up request.
    Plugin {
        #[command(subcommand)]
        command: plugin_cli::PluginCommand,
    },
    /// Re-read the config, tables, plugins, aliases and certificate, and
    /// swap them in without dropping a connection (through the control
    /// socket; prints why and exits 1 when the new config does not load).
    Reload,
    /// Check the configuration, the users file and the plugins; print every
    /// problem as file:line: key: what is wrong.
    Check,
    /// Print parameter values, expanded (as postconf).
    Config {
        /// Only parameters whose value differs from the default.
        #[arg(short = 'n', conflicts_with = "defaults")]
        non_default: bool,
        /// Default values instead of the values in force.
        #[arg(short = 'd')]
        defaults: bool,
        /// The services, one master.cf-like line each with its `-o`
        /// overrides (postconf -M); NAMES select services (SERVICE[/TYPE]).
        #[arg(short = 'M', conflicts_with_all = ["non_default", "defaults", "service_parameters"])]
        services: bool,
        /// Per-service overrides as service/type/parameter = value
        /// (postconf -P); NAMES select them (SERVICE[/TYPE[/PARAMETER]]).
        #[arg(short = 'P', conflicts_with_all = ["non_default", "defaults"])]
        service_parameters: bool,
        /// Parameter names; all when none is given.
        names: Vec<String>,
    },
    /// List and manage queued mail (mailq, postsuper); `list` by default.
    Queue {
        #[command(subcommand)]
        command: Option<queue_cli::QueueCommand>,
    },
    /// Try every queued message now, deferred ones included (postqueue -f).
    Flush,
    /// Check the alias_maps files (newaliases): print each problem as
    /// file:line: what is wrong. The server reads them at start-up.
    Aliases,
    /// Send mail as sendmail(1) does: the message on stdin, queued
    /// through the maildrop without the network. Also what this binary
    /// does when it is called `sendmail`.
    #[command(disable_help_flag = true)]
    Sendmail {
        /// sendmail's options and recipients: [-t] [-i] [-f SENDER]
        /// [-F NAME] [RECIPIENT...]; or -bs (SMTP on stdin/stdout), -bp
        /// (mailq), -q (flush), -bi (newaliases).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write a Postern config from a Postfix setup (main.cf, master.cf,
    /// the tables and aliases they name) and, with --dovecot, its
    /// Dovecot side; list every setting not carried over on stderr as
    /// file:line: setting: why.
    ImportPostfix {
        /// The Postfix configuration directory (/etc/postfix).
        postfix: PathBuf,
        /// The Dovecot configuration directory (/etc/dovecot).
        #[arg(long, value_name = "DIR")]
        dovecot: Option<PathBuf>,
        /// Write the config here instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Manage the users file: add, passwd, del, list.
    User {
        #[command(subcommand)]
        command: users_cli::UserCommand,
    },
    /// The root helper of a daemon that dropped to mail_owner; started by
    /// the daemon only (host/server/src/privilege_helper.rs).
    #[command(hide = true)]
    PrivsepHelper(postern_server::privilege_helper::HelperArgs),
    /// A POP3 or IMAP session run as its mailbox's owner; started by the
    /// root helper only (host/server/src/mail_session.rs).
    #[command(hide = true)]
    MailSession(postern_server::mail_session::SessionArgs),
}

fn main() -> ExitCode {
    // Installed as /usr/sbin/sendmail (a link to this binary, and mailq
    // and newaliases beside it): behave as sendmail(1), whose options are
    // not this command line's.
    let mut args = std::env::args_os();
    if args
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .is_some_and(|n| sendmail::LINK_NAMES.iter().any(|l| n == *l))
    {
        return sendmail::run_as_sendmail(std::env::args_os().collect());
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postern: fatal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `--config`, else the default path, else the embedded default,
/// with `machine`'s defaults.
fn load(path: Option<&Path>, machine: Machine) -> Result<Config, ConfigErrors> {
    match path {
        Some(p) => Config::load_on(p, machine),
        None if Path::new(config::DEFAULT_PATH).exists() => {
            Config::load_on(Path::new(config::DEFAULT_PATH), machine)
        }
        None => Config::embedded_on(machine),
    }
}

/// The config for a command run against a mail server; its errors on
/// stderr.
fn load_or_report(path: Option<&Path>) -> Option<Config> {
    report(load(path, Machine::detect()))
}

fn report(loaded: Result<Config, ConfigErrors>) -> Option<Config> {
    match loaded {
        Ok(c) => Some(c),
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("postern: {e}");
            }
            None
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::Config {
            non_default,
            defaults,
            services,
            service_parameters,
            names,
        } => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            if services || service_parameters {
                let (lines, missing) = if services {
                    config.master_lines(&names)
                } else {
                    config.service_parameters(&names)
                };
                for line in lines {
                    println!("{line}");
                }
                for name in &missing {
                    eprintln!("postern: warning: {name}: no such service or per-service parameter");
                }
                return Ok(if missing.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let mut out = String::new();
            let mut status = ExitCode::SUCCESS;
            if names.is_empty() {
                let lines = if non_default {
                    config.non_default()
                } else if defaults {
                    config.defaults()
                } else {
                    config.all()
                };
                for (k, v) in lines {
                    out.push_str(&format!("{k} = {v}\n"));
                }
            } else {
                for name in names {
                    let v = if defaults {
                        config.default_value(&name)
                    } else {
                        config.value(&name)
                    };
                    match v {
                        Some(v) => out.push_str(&format!("{name} = {v}\n")),
                        None => {
                            eprintln!("postern: warning: {name}: unknown parameter");
                            status = ExitCode::FAILURE;
                        }
                    }
                }
            }
            print!("{out}");
            Ok(status)
        }
        Command::Check => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            match daemon::Parts::build(&config).and_then(|_| postern_server::tls::check(&config)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("postern: {e:#}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Start { foreground } => {
            let Some(config) = report(load(config_path, Machine::detect_server())) else {
                return Ok(ExitCode::FAILURE);
            };
            if !foreground {
                return daemon::detach(&config, config_path);
            }
            log::init_configured(&config)?;
            log::panic::install();
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(daemon::run(config, config_path.map(Path::to_path_buf)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            daemon::stop(&config)
        }
        Command::Abort => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            daemon::abort(&config)
        }
        Command::Reload => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            postern_server::control::reload_command(&config)
        }
        Command::Queue { command } => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            queue_cli::run(&config, command)
        }
        Command::User { command } => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            users_cli::run(&config, command)
        }
        Command::Sendmail { args } => Ok(sendmail::run(&args, config_path)),
        Command::PrivsepHelper(args) => postern_server::privilege_helper::run(args),
        Command::MailSession(args) => postern_server::mail_session::run(args),
        Command::ImportPostfix {
            postfix,
            dovecot,
            output,
        } => {
            let import = postern_server::import_postfix::import(&postfix, dovecot.as_deref())?;
            for note in &import.notes {
                eprintln!("postern: {note}");
            }
            match output {
                Some(path) => std::fs::write(&path, &import.config)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{}", import.config),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Aliases => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            queue_cli::aliases(&config)
        }
        Command::Flush => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            queue_cli::flush(&config)
        }
        Command::Status => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            daemon::status(&config)
        }
        Command::Table { command } => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            table_cli::run(&config, command)
        }
        Command::Plugin { command } => {
            let Some(config) = load_or_report(config_path) else {
                return Ok(ExitCode::FAILURE);
            };
            plugin_cli::run(&config, command)
        }
    }
}
