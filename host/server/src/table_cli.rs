//! `postern table query NAME KEY`: Postfix's `postmap -q KEY TYPE:FILE`
//! for the tables the config declares (`[tables.NAME]`), read from their
//! source files as the server reads them.

#![allow(clippy::print_stdout, reason = "the command answers on stdout")]

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

/// What `postern table` does.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Print what table NAME answers for KEY and exit 0; exit 1 when it
    /// has no entry for KEY (postmap -q).
    Query {
        /// The table, as in [tables.NAME].
        name: String,
        /// The key to look up.
        key: String,
    },
}

/// Runs `postern table ...`.
pub fn run(config: &Config, command: TableCommand) -> anyhow::Result<ExitCode> {
    match command {
        TableCommand::Query { name, key } => query(config, &name, &key),
    }
}

fn query(config: &Config, name: &str, key: &str) -> anyhow::Result<ExitCode> {
    let Some(declared) = config.policy.tables.iter().find(|t| t.spec.name == name) else {
        let known: Vec<&str> = config
            .policy
            .tables
            .iter()
            .map(|t| t.spec.name.as_str())
            .collect();
        anyhow::bail!(
            "no table {name:?} in {} (declared: {})",
            config.source.file,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let table =
        postern_tables::Table::load(declared.spec.kind, &declared.spec.path).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}: tables.{name}: {e}",
                config.source.file,
                declared.line
            )
        })?;
    match table.lookup(key) {
        Some(value) => {
            println!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::FAILURE),
    }
}
