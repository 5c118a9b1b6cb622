//! Alias expansion (Postfix's local(8) alias step): from one recipient at
//! a local domain to the mailboxes, files and commands its aliases name,
//! through bare names, addresses and `:include:` files, with loops
//! detected and files and commands gated by `allow_mail_to_files` and
//! `allow_mail_to_commands`.

use std::path::PathBuf;

use postern_mail::Address;

use crate::aliases::{AliasMap, Origin, Target, read_include};
use crate::local::LocalDelivery;
use crate::settings::Class;

/// How deep aliases may nest before the expansion is given up as a loop
/// (Postfix's local(8) stops at 100 Delivered-To hops; an in-memory
/// expansion this deep is a mistake either way).
const MAX_DEPTH: usize = 20;

/// One place a recipient's mail goes after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Destination {
    /// A mailbox here, or an address elsewhere.
    Mailbox(Address),
    /// Append to a file, as the owner of `origin`'s file.
    File {
        /// The file.
        path: PathBuf,
        /// The aliases or include file that named it.
        origin: Origin,
    },
    /// Pipe to a command, as the owner of `origin`'s file.
    Command {
        /// The shell command line.
        command: String,
        /// The aliases or include file that named it.
        origin: Origin,
    },
    /// Named, but not allowed or not readable: bounced with this reason.
    Refused {
        /// Why, for the bounce.
        reason: String,
    },
    /// Cannot be known now (a `.forward` the root helper could not read):
    /// deferred (4.3.0) with this reason, never dropped.
    Deferred {
        /// Why, for the log and the delay notice.
        reason: String,
    },
}

/// Why an address could not be expanded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandError {
    /// An alias names itself through others: `a -> b -> a`.
    #[error("mail forwarding loop: alias {0}")]
    Loop(String),
}

impl LocalDelivery {
    /// Where mail for `address` goes: itself when no alias applies (or
    /// the domain is not local), else what its alias expands to,
    /// duplicates removed.
    pub fn expand(&self, address: &Address) -> Result<Vec<Destination>, ExpandError> {
        let mut out = Vec::new();
        let mut chain = Vec::new();
        let aliases = self.aliases();
        self.expand_into(&aliases, address, &mut chain, &mut out)?;
        let mut seen = Vec::with_capacity(out.len());
        out.retain(|d| {
            if seen.contains(d) {
                false
            } else {
                seen.push(d.clone());
                true
            }
        });
        Ok(out)
    }

    /// The alias entry `address` is subject to, with its name.
    pub(crate) fn alias_of<'m>(
        &self,
        aliases: &'m AliasMap,
        address: &Address,
    ) -> Option<(String, &'m crate::aliases::Alias)> {
        if !self.is_local(address.domain()) {
            return None;
        }
        let full = address.local();
        let base = address.local_base(self.settings().recipient_delimiter);
        [full, base]
            .into_iter()
            .find_map(|name| aliases.get(name).map(|a| (name.to_lowercase(), a)))
    }

    /// Whether `address` is an alias name at a local domain.
    pub fn is_alias(&self, address: &Address) -> bool {
        self.alias_of(&self.aliases(), address).is_some()
    }

    fn expand_into(
        &self,
        aliases: &AliasMap,
        address: &Address,
        chain: &mut Vec<String>,
        out: &mut Vec<Destination>,
    ) -> Result<(), ExpandError> {
        let Some((name, alias)) = self.alias_of(aliases, address) else {
            out.push(Destination::Mailbox(address.clone()));
            return Ok(());
        };
        if chain.contains(&name) || chain.len() >= MAX_DEPTH {
            chain.push(name);
            return Err(ExpandError::Loop(chain.join(" -> ")));
        }
        chain.push(name.clone());
        self.expand_targets(
            aliases,
            &name,
            &alias.targets,
            &alias.origin,
            Class::Alias,
            chain,
            out,
        )?;
        chain.pop();
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn expand_targets(
        &self,
        aliases: &AliasMap,
        name: &str,
        targets: &[Target],
        origin: &Origin,
        class: Class,
        chain: &mut Vec<String>,
        out: &mut Vec<Destination>,
    ) -> Result<(), ExpandError> {
        let settings = self.settings();
        for target in targets {
            match target {
                target if self.names_itself(target, name) => {
                    // `root: root, backup`: the alias's own name is the
                    // user's mailbox, not the alias again (aliases(5)).
                    let local = match target {
                        Target::Local(n) => n.clone(),
                        Target::Address(a) => a.local().to_owned(),
                        _ => continue,
                    };
                    out.push(Destination::Mailbox(Address::new(
                        local,
                        settings.myhostname.clone(),
                    )));
                }
                Target::Local(n) => {
                    let address = Address::new(n.clone(), settings.myhostname.clone());
                    self.expand_into(aliases, &address, chain, out)?;
                }
                Target::Address(a) => self.expand_into(aliases, a, chain, out)?,
                Target::File(path) => out.push(if settings.allow_mail_to_files.allows(class) {
                    Destination::File {
                        path: path.clone(),
                        origin: origin.clone(),
                    }
                } else {
                    Destination::Refused {
                        reason: format!(
                            "mail to file is restricted ({}: allow_mail_to_files)",
                            path.display()
                        ),
                    }
                }),
                Target::Command(command) => {
                    out.push(if settings.allow_mail_to_commands.allows(class) {
                        Destination::Command {
                            command: command.clone(),
                            origin: origin.clone(),
                        }
                    } else {
                        Destination::Refused {
                            reason: format!(
                                "mail to command is restricted (|{command}: allow_mail_to_commands)"
                            ),
                        }
                    })
                }
                Target::Include(path) => {
                    let key = format!(":include:{}", path.display());
                    if chain.contains(&key) {
                        chain.push(key);
                        return Err(ExpandError::Loop(chain.join(" -> ")));
                    }
                    match read_include(path) {
                        Ok((targets, include_origin)) => {
                            chain.push(key);
                            self.expand_targets(
                                aliases,
                                name,
                                &targets,
                                &include_origin,
                                Class::Include,
                                chain,
                                out,
                            )?;
                            chain.pop();
                        }
                        Err(e) => out.push(Destination::Refused {
                            reason: format!("cannot read include file: {e}"),
                        }),
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `target` is the alias `name` itself at a local domain.
    fn names_itself(&self, target: &Target, name: &str) -> bool {
        match target {
            Target::Local(n) => n.eq_ignore_ascii_case(name),
            Target::Address(a) => self.is_local(a.domain()) && a.local().eq_ignore_ascii_case(name),
            _ => false,
        }
    }
}
