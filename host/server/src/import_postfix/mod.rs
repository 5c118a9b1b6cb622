//! `postern import-postfix /etc/postfix [--dovecot /etc/dovecot]`: a
//! Postern config that behaves as a Postfix (+ Dovecot) setup does, and a
//! list of every setting it could not carry over, each with its file,
//! line and why.
//!
//! Postern's config keeps Postfix's parameter names, so most of main.cf
//! carries over word for word: every parameter Postern knows
//! ([`crate::config::params`]) and the restriction lists, as written
//! (continuation lines, comments, old restriction names). Tables and
//! alias files are read in place; a path whose file is missing but sits
//! in the imported directory (a copy of /etc/postfix made elsewhere) is
//! pointed there. master.cf's `smtpd` listeners become `[[service]]`
//! entries with their `-o` overrides; its internal services (pickup,
//! cleanup, qmgr, ...) are built in. From Dovecot: the IMAP/POP3
//! listeners, and the passwd-file as the users file.
//!
//! What it does not do: follow Dovecot `!include`s, convert `.db` files
//! (Postern reads the text source), or carry the queue (`postern` keeps
//! its own under data_directory; flush Postfix's queue before moving).

mod cf;
mod dovecot;
mod left_behind;
mod services;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::params;
use crate::config::sections::{SERVICE_OVERRIDES, is_postfix_list};
use left_behind::{LEFT_BEHIND, LEVEL_0, ROOT, guards_relaying};

/// A setting not carried over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file it is in.
    pub file: String,
    /// Its line (0: the file as a whole).
    pub line: usize,
    /// The parameter, option or section.
    pub setting: String,
    /// What happened to it, and what to do.
    pub why: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.setting, self.why
        )
    }
}

/// The imported config and what was left behind.
#[derive(Debug)]
pub struct Import {
    /// The Postern config (TOML).
    pub config: String,
    /// Every setting not carried over, in file order.
    pub notes: Vec<Note>,
}

/// Reads `postfix` (a directory holding main.cf and master.cf) and
/// optionally `dovecot` (holding dovecot.conf).
pub fn import(postfix: &Path, dovecot: Option<&Path>) -> anyhow::Result<Import> {
    let main_path = postfix.join("main.cf");
    let text = std::fs::read_to_string(&main_path)
        .with_context(|| format!("cannot read {}", main_path.display()))?;
    let main_file = main_path.display().to_string();
    let mut notes = Vec::new();
    let (parameters, bad) = cf::main_cf(&text);
    for (line, why) in bad {
        notes.push(note(&main_file, line, "main.cf", why));
    }
    let mut out = String::new();
    let mut set = Vec::new();
    for p in &parameters {
        if let Some((_, why)) = LEFT_BEHIND.iter().find(|(n, _)| *n == p.name) {
            notes.push(note(
                &main_file,
                p.line,
                &p.name,
                format!("not carried over: {why}"),
            ));
            continue;
        }
        if params::find(&p.name).is_none() && !is_postfix_list(&p.name) {
            notes.push(note(
                &main_file,
                p.line,
                &p.name,
                "not carried over: Postern has no such parameter".to_owned(),
            ));
            continue;
        }
        let value = paths_in(&p.value, postfix, &main_file, p.line, &p.name, &mut notes);
        let _ = writeln!(out, "{} = {}", p.name, toml_string(&value));
        set.push(p.name.clone());
    }

    // Postfix's smtpd_relay_restrictions default depends on the
    // compatibility level: empty below 1 (the recipient list alone guards
    // relaying), Postfix 2.10's list from 1 on. Postern's default is the
    // former's; the latter is spelled out.
    let compatibility = parameters.iter().find(|p| p.name == "compatibility_level");
    let level = compatibility
        .and_then(|p| p.value.split('.').next()?.parse::<u32>().ok())
        .unwrap_or(0);
    // Postfix's local recipients are its passwd accounts and aliases
    // unless main.cf says otherwise; Postern's, the users file and the
    // aliases: Postfix's default is spelled out.
    if !set.iter().any(|n| n == "local_recipient_maps") {
        out.push_str("# Postfix's default:\nlocal_recipient_maps = \"proxy:unix:passwd.byname $alias_maps\"\n");
        notes.push(note(&main_file, 0, "local_recipient_maps", ROOT.to_owned()));
    }
    if level < 1 && !guards_relaying(&parameters) {
        notes.push(note(
            &main_file,
            0,
            "compatibility_level",
            LEVEL_0.to_owned(),
        ));
    }
    if level >= 1 && !set.iter().any(|n| n == "smtpd_relay_restrictions") {
        out.push_str("# Postfix's default at compatibility_level >= 1:\n");
        out.push_str("smtpd_relay_restrictions = \"permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination\"\n");
    }

    let mut sections = String::new();
    let master_path = postfix.join("master.cf");
    match std::fs::read_to_string(&master_path) {
        Ok(text) => {
            let file = master_path.display().to_string();
            sections.push_str(&services::from_master(&text, &file, &mut notes));
        }
        Err(e) => {
            notes.push(note(
                &master_path.display().to_string(),
                0,
                "master.cf",
                format!("cannot read ({e}): only the smtp service on port 25 is configured"),
            ));
            sections.push_str("[[service]]\nname = \"smtp\"\nlisten = \"25\"\n\n");
        }
    }
    if let Some(dir) = dovecot {
        let conf = dir.join("dovecot.conf");
        let text = std::fs::read_to_string(&conf)
            .with_context(|| format!("cannot read {}", conf.display()))?;
        let file = conf.display().to_string();
        let (settings, includes) = dovecot::settings(&text);
        for (line, inc) in includes {
            notes.push(note(
                &file,
                line,
                "!include",
                format!("not followed ({inc}): import what it sets by hand"),
            ));
        }
        let (top, listeners, auth) =
            services::from_dovecot(&settings, dir, &file, &set, &mut notes);
        out.push_str(&top);
        sections.push_str(&listeners);
        if let Some(auth) = auth {
            sections.insert_str(0, &auth);
        }
    }

    let mut config = format!(
        "# Imported from {} by `postern import-postfix`.\n",
        postfix.display()
    );
    if !notes.is_empty() {
        config.push_str("# Not carried over (see each line):\n");
        for n in &notes {
            let _ = writeln!(config, "#   {n}");
        }
    }
    config.push('\n');
    config.push_str(&out);
    config.push('\n');
    config.push_str(&sections);
    Ok(Import { config, notes })
}

fn note(file: &str, line: usize, setting: &str, why: String) -> Note {
    Note {
        file: file.to_owned(),
        line,
        setting: setting.to_owned(),
        why,
    }
}

/// A TOML basic string; multi-line when the value has line breaks (a
/// restriction list keeps its layout).
fn toml_string(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    if value.contains('\n') {
        format!("\"\"\"{escaped}\"\"\"")
    } else {
        format!("\"{escaped}\"")
    }
}

/// `value` with each absolute path (bare, or after a `type:` table
/// prefix) whose file is missing pointed at the copy in `dir`, when
/// there is one; a path found nowhere is noted.
fn paths_in(
    value: &str,
    dir: &Path,
    file: &str,
    line: usize,
    name: &str,
    notes: &mut Vec<Note>,
) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('/') {
        let before = &rest[..start];
        // Only paths that start a word or follow a `type:` prefix.
        let starts_word = before.is_empty() || before.ends_with([' ', '\t', '\n', ',', ':']);
        let end = rest[start..]
            .find([' ', '\t', '\n', ','])
            .map_or(rest.len(), |e| start + e);
        let path = &rest[start..end];
        out.push_str(before);
        if starts_word && !before.ends_with("//") {
            out.push_str(&relocate(path, dir, file, line, name, notes));
        } else {
            out.push_str(path);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn relocate(
    path: &str,
    dir: &Path,
    file: &str,
    line: usize,
    name: &str,
    notes: &mut Vec<Note>,
) -> String {
    let original = Path::new(path);
    if original.exists() && original.parent() == Some(dir) {
        return path.to_owned();
    }
    let copy: Option<PathBuf> = original
        .file_name()
        .map(|n| dir.join(n))
        .filter(|c| c.exists());
    match copy {
        Some(copy) if !original.starts_with(dir) => {
            notes.push(note(
                file,
                line,
                name,
                format!("{path} read from {}", copy.display()),
            ));
            copy.display().to_string()
        }
        _ if original.exists() => path.to_owned(),
        _ => {
            notes.push(note(
                file,
                line,
                name,
                format!("{path} does not exist: create it, or the check will fail"),
            ));
            path.to_owned()
        }
    }
}

/// `SERVICE_OVERRIDES` and restriction lists: what a `[[service]]` takes.
fn service_key(name: &str) -> bool {
    SERVICE_OVERRIDES.contains(&name) || is_postfix_list(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_with_quotes_and_lines_stay_valid_toml() {
        let v = toml_string("a \"b\" \\ c\n  d");
        let parsed: toml::Table = format!("x = {v}").parse().unwrap_or_default();
        assert_eq!(
            parsed.get("x").and_then(|x| x.as_str()),
            Some("a \"b\" \\ c\n  d")
        );
    }

    #[test]
    fn a_main_cf_postfix_3_would_not_run_is_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let main_cf = dir.path().join("main.cf");
        std::fs::write(&main_cf, "relayhost = [mx.example.net]\n").unwrap_or_default();
        let got = import(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            got.notes
                .iter()
                .any(|n| n.setting == "compatibility_level" && n.why.starts_with("0 (or not set)")),
            "{:?}",
            got.notes
        );
        std::fs::write(
            &main_cf,
            "compatibility_level = 3.6\nrelayhost = [mx.example.net]\n",
        )
        .unwrap_or_default();
        let got = import(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            got.config.contains("smtpd_relay_restrictions = \"permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination\"")
                && !got.notes.iter().any(|n| n.setting == "smtpd_relay_restrictions"),
            "{}",
            got.config
        );
        std::fs::write(
            &main_cf,
            "smtpd_recipient_restrictions = permit_mynetworks,\n    reject_unauth_destination\n",
        )
        .unwrap_or_default();
        let got = import(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !got.notes.iter().any(|n| n.setting == "compatibility_level"),
            "{:?}",
            got.notes
        );
    }

    #[test]
    fn a_missing_table_is_found_in_the_imported_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("access"), "x OK\n").unwrap_or_default();
        let mut notes = Vec::new();
        let v = paths_in(
            "permit_mynetworks, check_client_access hash:/nonexistent/postfix/access, permit",
            dir.path(),
            "main.cf",
            3,
            "smtpd_client_restrictions",
            &mut notes,
        );
        assert_eq!(
            v,
            format!(
                "permit_mynetworks, check_client_access hash:{}/access, permit",
                dir.path().display()
            )
        );
        assert_eq!(notes.len(), 1);
        let mut notes = Vec::new();
        paths_in(
            "hash:/nonexistent/x",
            dir.path(),
            "main.cf",
            4,
            "alias_maps",
            &mut notes,
        );
        assert!(notes[0].why.contains("does not exist"), "{notes:?}");
    }
}
