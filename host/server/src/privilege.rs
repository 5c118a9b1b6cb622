//! Privilege separation at start-up (Postfix's `mail_owner`): a daemon
//! started as root binds its listeners (ports below 1024 too), reads what
//! only root may (TLS keys, the users file), opens the queue, then gives
//! the whole process — every thread — to the unprivileged `mail_owner`
//! (default `postern`) for good. The data directory, queue and virtual
//! mailboxes are handed to that user first, as `postfix set-permissions`
//! does for Postfix's queue.
//!
//! Just before the drop it starts the privileged helper
//! ([`postern_privsep`], served by [`crate::privilege_helper`]): a fresh
//! `exec` of this binary that stays root, shares no memory with the
//! daemon, and does only the few steps that need another identity —
//! writing a system user's Maildir or mbox as that user, running an alias
//! `|command` or writing an alias `/file` as its owner, checking a system
//! account's password in `/etc/shadow` — each request checked against a
//! fixed policy (never uid 0, only mail users' uids, only their homes
//! and the mail roots). The threat model is in `postern_privsep`'s
//! crate doc.
//!
//! The drop uses the C library's `setgroups`, `setgid` and `setuid`
//! (through `nix`), which glibc and musl apply to every thread of the
//! process (the raw system calls would change only the calling thread:
//! the async runtime's and the compiler's threads run already). It is
//! checked on every thread in `/proc/self/task` and by trying to get root
//! back.
//!
//! `mail_owner = "root"` keeps everything as root, with a warning at every
//! start; a daemon not started by root ignores `mail_owner` altogether. A
//! `mail_owner` missing from the system stops start-up, naming both
//! fixes.
//!
//! At a reload, files only root may read (a TLS key, the users file, an
//! aliases file, a table) are read by the helper for the daemon, and the
//! helper refreshes its policy from the root-owned config; a `.forward`
//! in a home `mail_owner` may not enter is read by the helper as its
//! owner ([`crate::privilege_files`]).
//!
//! A POP3 or IMAP login to a mailbox another uid owns (a system
//! account's `~/Maildir`) is served, as Dovecot does, by a process per
//! login that the helper starts as that uid, with the client's bytes
//! relayed to it by the daemon ([`crate::mail_session`]).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Component, Path};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, chownat, fstat, openat};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use crate::config::Config;
use crate::daemon::Parts;

/// The unprivileged user the daemon becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `mail_owner`.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group, the only group the daemon keeps.
    pub gid: u32,
}

/// What start-up does about privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not started by root: nothing to drop.
    Unchanged,
    /// `mail_owner = "root"`: stay root (warned about).
    StayRoot,
    /// Become this user.
    Drop(Owner),
}

impl Plan {
    /// The uid and gid the daemon runs as once serving, when it drops to
    /// them: the owner of what start-up makes for it (its UNIX sockets).
    pub fn owner(&self) -> Option<(u32, u32)> {
        match self {
            Plan::Drop(owner) => Some((owner.uid, owner.gid)),
            Plan::Unchanged | Plan::StayRoot => None,
        }
    }
}

/// Decides what start-up does: `mail_owner` looked up when this process
/// is root. A missing user is an error naming both fixes.
pub fn plan(config: &Config) -> anyhow::Result<Plan> {
    if !rustix::process::geteuid().is_root() {
        return Ok(Plan::Unchanged);
    }
    let name = config
        .value("mail_owner")
        .unwrap_or_else(|| "postern".to_owned());
    if name == "root" {
        return Ok(Plan::StayRoot);
    }
    match nix::unistd::User::from_name(&name) {
        Ok(Some(user)) if user.uid.is_root() => Ok(Plan::StayRoot),
        Ok(Some(user)) => Ok(Plan::Drop(Owner {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })),
        Ok(None) => bail!("{}", missing(&name, config)),
        Err(e) => bail!("mail_owner: cannot look up user {name:?}: {e}"),
    }
}

/// The message for a `mail_owner` the system does not have.
fn missing(name: &str, config: &Config) -> String {
    format!(
        "mail_owner: there is no user {name:?} on this system; the server \
         runs as that user after binding its ports. Either create it: \
         `useradd --system --user-group --home-dir {} --no-create-home \
         --shell /usr/sbin/nologin {name}`, or set `mail_owner = \"root\"` \
         in {} to run without privilege separation (not recommended)",
        config.main.data_directory.display(),
        where_to_set(&config.source.file)
    )
}

/// Where an operator sets a parameter: the config file, or, when the
/// server runs on the embedded default, a file of their own.
fn where_to_set(file: &str) -> String {
    if file == crate::config::EMBEDDED_NAME {
        "a config file of your own (examples/postern.toml is the embedded \
         default to start from; `postern start --config FILE`)"
            .to_owned()
    } else {
        file.to_owned()
    }
}

/// Carries out `plan`: warns about staying root, or hands the data over
/// to the owner, starts the helper, drops every thread to the owner and
/// routes privileged steps through the helper from then on.
pub fn apply(plan: &Plan, config: &Config, parts: &Parts) -> anyhow::Result<()> {
    let owner = match plan {
        Plan::Unchanged => return Ok(()),
        Plan::StayRoot => {
            tracing::warn!(target: "postern/master", "mail_owner = \"root\": running without privilege separation; every session and delivery runs as root (create a `postern` user and remove the setting)");
            return Ok(());
        }
        Plan::Drop(owner) => owner,
    };
    let m = &config.main;
    // Made now if missing, so that it is handed over below: made later by
    // the helper (for a users-file uid's home), it would be root's, and
    // the daemon could not make the homes of users without a uid in it.
    std::fs::create_dir_all(&m.virtual_mailbox_base)
        .with_context(|| format!("cannot create {}", m.virtual_mailbox_base.display()))?;
    for dir in [
        &m.data_directory,
        &m.queue_directory,
        &m.virtual_mailbox_base,
    ] {
        hand_over(dir, owner).with_context(|| {
            format!("cannot give {} to mail_owner {}", dir.display(), owner.name)
        })?;
    }
    let (stream, helper) = spawn_helper(config, parts)?;
    drop_to(owner)?;
    let client =
        postern_privsep::Client::new(stream).context("cannot talk to the privileged helper")?;
    if postern_privsep::install(client).is_err() {
        bail!("a privileged helper is installed already");
    }
    tracing::info!(target: "postern/master", "running as mail_owner {} (uid {}, gid {}); privileged helper pid {helper}", owner.name, owner.uid, owner.gid);
    Ok(())
}

/// Gives everything under `dir` that root owns to `owner`: what root made
/// at earlier starts or in this one's first steps. What another user owns
/// (a users-file uid's home under the mailboxes) is left alone. A
/// directory near the top of the tree (`/`, `/var`) is refused: a
/// misconfigured path must not hand the system over.
///
/// `mail_owner` owns these directories and could, once taken over,
/// swap an entry for a symbolic link or a hard link to a root file
/// between two steps of a later start: so the walk goes by file
/// descriptor (each entry opened without following links, checked and
/// changed through that descriptor), and a file with more than one link
/// is left alone.
fn hand_over(dir: &Path, owner: &Owner) -> anyhow::Result<()> {
    let depth = dir
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    if !dir.is_absolute() || depth < 2 {
        bail!("refusing to change the owner of a top-level directory");
    }
    if !dir.exists() {
        return Ok(());
    }
    // The configured path itself is root's word: followed as given.
    let top = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = openat(CWD, dir, top, Mode::empty())?;
    hand_over_dir(&fd, owner, 0)?;
    Ok(())
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// An entry itself, never what a link points to.
const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// How deep the walk goes: a queue or Maildir++ tree is a few levels; a
/// bound keeps a hostile tree from exhausting the stack.
const MAX_DEPTH: usize = 32;

fn hand_over_dir(fd: &OwnedFd, owner: &Owner, depth: usize) -> rustix::io::Result<()> {
    let ids = (
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    );
    if fstat(fd)?.st_uid == 0 {
        chownat(fd, "", ids.0, ids.1, AtFlags::EMPTY_PATH)?;
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    for entry in Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let file = match openat(fd, name, PATH_FLAGS, Mode::empty()) {
            Ok(file) => file,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        };
        let stat = fstat(&file)?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            match openat(fd, name, DIR_FLAGS, Mode::empty()) {
                Ok(sub) => hand_over_dir(&sub, owner, depth + 1)?,
                // Gone, or swapped for a link meanwhile: not ours to follow.
                Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => {}
                Err(e) => return Err(e),
            }
        } else if stat.st_uid == 0 && stat.st_nlink == 1 {
            // Through the descriptor: the file checked is the file changed.
            chownat(&file, "", ids.0, ids.1, AtFlags::EMPTY_PATH)?;
        }
    }
    Ok(())
}

/// Starts the helper with the policy this config implies, its standard
/// input one end of a socket pair; returns the other end and its pid.
fn spawn_helper(config: &Config, parts: &Parts) -> anyhow::Result<(UnixStream, u32)> {
    let (ours, theirs) = UnixStream::pair().context("cannot make a socket pair")?;
    let mut cmd = Command::new(std::env::current_exe().context("cannot find this binary")?);
    cmd.arg("privsep-helper");
    let policy = crate::privilege_files::helper_policy(config, &parts.users)?;
    for root in &policy.roots {
        cmd.arg("--root").arg(root);
    }
    for uid in &policy.uids {
        cmd.arg("--uid").arg(uid.to_string());
    }
    for (uid, home) in &policy.homes {
        cmd.arg("--home").arg(format!("{uid}:{}", home.display()));
    }
    cmd.arg("--max-sessions")
        .arg(policy.max_sessions.to_string());
    // The file the helper re-reads itself for a reload's root-only files
    // and its refreshed policy (host/server/src/privilege_files.rs).
    if !config.embedded {
        cmd.arg("--trusted-config")
            .arg(std::path::absolute(&config.source.file)?);
    }
    cmd.arg("--max-frame").arg(policy.max_frame.to_string());
    // Its own process group: a terminal's Ctrl-C stops the daemon, which
    // drains its deliveries through the helper before it exits (the
    // helper exits when the daemon's end of the socket closes).
    use std::os::unix::process::CommandExt;
    // Its standard output is no output: the session processes' log
    // channel, which it hands to each as standard error (log/channel.rs).
    let log = crate::log::channel::open().context("cannot make the session log channel")?;
    let mut child = cmd
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(log))
        .process_group(0)
        .spawn()
        .context("cannot start the privileged helper")?;
    drop(cmd);
    let pid = child.id();
    std::thread::Builder::new()
        .name("privsep-wait".to_owned())
        .spawn(move || {
            let status = child.wait();
            tracing::error!(target: "postern/master", "the privileged helper (pid {pid}) exited: {status:?}; deliveries that need another uid are deferred");
        })?;
    Ok((ours, pid))
}

/// The whole process becomes `owner`: groups first and uid last (only
/// root may change groups), then checked on every thread.
fn drop_to(owner: &Owner) -> anyhow::Result<()> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    let (uid, gid) = (Uid::from_raw(owner.uid), Gid::from_raw(owner.gid));
    setgroups(&[gid]).context("setgroups")?;
    setgid(gid).context("setgid")?;
    setuid(uid).context("setuid")?;
    // Paranoia as in Postfix's set_ugid: make sure it took everywhere and
    // cannot be undone.
    if setuid(Uid::from_raw(0)).is_ok() || rustix::process::geteuid().as_raw() != owner.uid {
        bail!("could not drop privileges to {}", owner.name);
    }
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let ids = |key: &str| -> Vec<String> {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default()
            };
            let (u, g) = (owner.uid.to_string(), owner.gid.to_string());
            // A thread that exited meanwhile has no status: nothing to check.
            if status.is_empty() {
                continue;
            }
            if ids("Uid:").iter().any(|x| *x != u) || ids("Gid:").iter().any(|x| *x != g) {
                bail!(
                    "thread {} kept other ids after the drop to {}",
                    task.file_name().to_string_lossy(),
                    owner.name
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn the_fix_names_a_file_the_operator_can_edit() {
        assert_eq!(
            where_to_set("/etc/postern/postern.toml"),
            "/etc/postern/postern.toml"
        );
        let embedded = where_to_set(crate::config::EMBEDDED_NAME);
        assert!(!embedded.contains('<'), "{embedded}");
        assert!(embedded.contains("examples/postern.toml") && embedded.contains("--config"));
    }

    #[test]
    fn the_hand_over_follows_no_link_and_spares_other_owners() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (outside, data) = (tmp.path().join("outside"), tmp.path().join("data"));
        std::fs::create_dir_all(data.join("queue/active")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "x").unwrap();
        std::fs::write(data.join("queue/active/msg"), "m").unwrap();
        // A link to a root file outside, a hard link to one, another
        // user's file.
        std::os::unix::fs::symlink(&outside, data.join("queue/link")).unwrap();
        std::fs::write(outside.join("linked"), "x").unwrap();
        std::fs::hard_link(outside.join("linked"), data.join("hard")).unwrap();
        std::fs::write(data.join("theirs"), "x").unwrap();
        std::os::unix::fs::chown(data.join("theirs"), Some(5001), Some(5001)).unwrap();
        let owner = Owner {
            name: "test".into(),
            uid: 4242,
            gid: 4243,
        };
        hand_over(&data, &owner).unwrap();
        let ids = |p: &Path| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        for p in [
            "",
            "queue",
            "queue/active",
            "queue/active/msg",
            "queue/link",
        ] {
            assert_eq!(ids(&data.join(p)), (4242, 4243), "{p}");
        }
        assert_eq!(ids(&outside.join("secret")), (0, 0));
        assert_eq!(ids(&outside), (0, 0));
        assert_eq!(ids(&data.join("hard")), (0, 0));
        assert_eq!(ids(&data.join("theirs")), (5001, 5001));
        assert!(hand_over(Path::new("/var"), &owner).is_err());
        assert!(hand_over(Path::new("/"), &owner).is_err());
    }
}
