//! A user's mail as a set of mailboxes, laid out as Maildir++ (Courier's
//! and Dovecot's `LAYOUT=maildir++`): the root Maildir is the INBOX, and a
//! folder `Work.Projects` is the Maildir `<root>/.Work.Projects`, with an
//! empty `maildirfolder` file in it. The hierarchy delimiter is `.`.
//! Subscriptions are Dovecot's `subscriptions` file, one name a line.
//! Folder names are stored as the client gives them (IMAP's modified
//! UTF-7), as Dovecot does by default.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::store::{Mailbox, write_atomic};

/// The hierarchy delimiter (RFC 3501 §5.1.1).
pub const DELIMITER: char = '.';
/// Dovecot's subscriptions file.
pub const SUBSCRIPTIONS: &str = "subscriptions";

/// The special-use folders created for a new user (RFC 6154).
pub const SPECIAL: &[(&str, &str)] = &[
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
];

/// Why a folder operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    /// Empty parts, `/`, a leading `.` and the like.
    #[error("Invalid mailbox name")]
    BadName,
    /// No such mailbox.
    #[error("Mailbox doesn't exist: {0}")]
    NotFound(String),
    /// It exists already.
    #[error("Mailbox already exists")]
    Exists,
    /// Maildir++ cannot keep a deleted parent's name for its children.
    #[error("Mailbox has children, delete them first")]
    HasChildren,
    /// What cannot be done to the INBOX.
    #[error("{0}")]
    Inbox(&'static str),
    /// The filesystem said no.
    #[error("Internal error: {0}")]
    Io(#[from] io::Error),
}

/// One user's mailboxes under their root Maildir.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store rooted at the user's Maildir (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Store> {
        let md = crate::Maildir::create(root)?;
        Ok(Store {
            root: md.path().to_owned(),
        })
    }

    /// The root Maildir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `name` is the INBOX (any case, RFC 3501 §5.1).
    pub fn is_inbox(name: &str) -> bool {
        name.eq_ignore_ascii_case("INBOX")
    }

    /// The directory of `name`, checked for a sane name.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, FolderError> {
        if Store::is_inbox(name) {
            return Ok(self.root.clone());
        }
        let bad = name.is_empty()
            || name.len() > 200
            || name.split(DELIMITER).any(|p| p.is_empty() || p == "~")
            || name
                .chars()
                .any(|c| c == '/' || c == '\\' || c.is_control() || c == '*' || c == '%');
        if bad {
            return Err(FolderError::BadName);
        }
        Ok(self.root.join(format!(".{name}")))
    }

    /// Opens an existing mailbox.
    pub fn mailbox(&self, name: &str) -> Result<Mailbox, FolderError> {
        let path = self.path_of(name)?;
        if !path.join("cur").is_dir() {
            return Err(FolderError::NotFound(name.to_owned()));
        }
        Ok(Mailbox::open(path)?)
    }

    /// Every mailbox name, the INBOX first.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(folder) = name.strip_prefix('.') else {
                continue;
            };
            if folder.is_empty() || folder == "." || !entry.path().join("cur").is_dir() {
                continue;
            }
            out.push(folder.to_owned());
        }
        out.sort();
        out.insert(0, "INBOX".to_owned());
        Ok(out)
    }

    /// Creates `name` (RFC 3501 §6.3.3) and the superior names it lacks,
    /// as the RFC asks; a trailing delimiter is dropped.
    pub fn create(&self, name: &str) -> Result<(), FolderError> {
        let name = name.strip_suffix(DELIMITER).unwrap_or(name);
        if Store::is_inbox(name) {
            return Err(FolderError::Exists);
        }
        let path = self.path_of(name)?;
        if path.exists() {
            return Err(FolderError::Exists);
        }
        let mut superior = String::new();
        for part in name.split(DELIMITER) {
            if !superior.is_empty() {
                superior.push(DELIMITER);
            }
            superior.push_str(part);
            let dir = self.path_of(&superior)?;
            if !dir.join("cur").is_dir() {
                Mailbox::open(&dir)?;
                fs::write(dir.join("maildirfolder"), b"")?;
            }
        }
        Ok(())
    }

    /// Deletes `name` and its messages (RFC 3501 §6.3.4).
    pub fn delete(&self, name: &str) -> Result<(), FolderError> {
        if Store::is_inbox(name) {
            return Err(FolderError::Inbox("INBOX can't be deleted."));
        }
        let path = self.path_of(name)?;
        if !path.is_dir() {
            return Err(FolderError::NotFound(name.to_owned()));
        }
        let prefix = format!("{name}{DELIMITER}");
        if self.list()?.iter().any(|n| n.starts_with(&prefix)) {
            return Err(FolderError::HasChildren);
        }
        // Renamed out of sight first, so no session sees a half-deleted
        // Maildir, then removed.
        let doomed = self.root.join(format!(
            "..DOVECOT-TRASHED.{}",
            crate::unique::unique_name(0)
        ));
        fs::rename(&path, &doomed)?;
        fs::remove_dir_all(&doomed)?;
        Ok(())
    }

    /// Renames `from` and its children to `to` (RFC 3501 §6.3.5).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FolderError> {
        if Store::is_inbox(from) {
            return self.rename_inbox(to);
        }
        if Store::is_inbox(to) {
            return Err(FolderError::Exists);
        }
        let source = self.path_of(from)?;
        let target = self.path_of(to)?;
        if !source.is_dir() {
            return Err(FolderError::NotFound(from.to_owned()));
        }
        if target.exists() {
            return Err(FolderError::Exists);
        }
        let prefix = format!("{from}{DELIMITER}");
        let children: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        fs::rename(&source, &target)?;
        for child in children {
            let renamed = format!("{to}{}", &child[from.len()..]);
            fs::rename(self.path_of(&child)?, self.path_of(&renamed)?)?;
        }
        let subs = self.subscriptions();
        if subs.iter().any(|s| s == from || s.starts_with(&prefix)) {
            let subs: Vec<String> = subs
                .into_iter()
                .map(|s| {
                    if s == from || s.starts_with(&prefix) {
                        format!("{to}{}", &s[from.len()..])
                    } else {
                        s
                    }
                })
                .collect();
            self.write_subscriptions(&subs)?;
        }
        Ok(())
    }

    /// RFC 3501 §6.3.5: renaming the INBOX moves its messages to a new
    /// mailbox and leaves the INBOX empty. The messages get new UIDs
    /// there, as in any new mailbox.
    fn rename_inbox(&self, to: &str) -> Result<(), FolderError> {
        if Store::is_inbox(to) {
            return Err(FolderError::Exists);
        }
        let target = self.path_of(to)?;
        if target.exists() {
            return Err(FolderError::Exists);
        }
        self.create(to)?;
        for sub in ["new", "cur"] {
            for entry in fs::read_dir(self.root.join(sub))? {
                let entry = entry?;
                match fs::rename(entry.path(), target.join(sub).join(entry.file_name())) {
                    Ok(()) => {}
                    // Expunged or moved by another session meanwhile.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// The subscribed names.
    pub fn subscriptions(&self) -> Vec<String> {
        let text = fs::read_to_string(self.root.join(SUBSCRIPTIONS)).unwrap_or_default();
        let mut lines = text.lines().peekable();
        // Dovecot 2.3's format starts with a `V\t2` header and a blank line.
        if lines.peek().is_some_and(|l| l.starts_with("V\t")) {
            lines.next();
        }
        lines
            .filter(|l| !l.is_empty())
            .map(|l| l.replace('\t', "."))
            .collect()
    }

    /// Adds or removes a subscription.
    pub fn subscribe(&self, name: &str, on: bool) -> Result<(), FolderError> {
        let name = if Store::is_inbox(name) { "INBOX" } else { name };
        self.path_of(name)?;
        let mut subs = self.subscriptions();
        subs.retain(|s| s != name);
        if on {
            subs.push(name.to_owned());
        }
        self.write_subscriptions(&subs)?;
        Ok(())
    }

    fn write_subscriptions(&self, subs: &[String]) -> io::Result<()> {
        let text: String = subs.iter().map(|s| format!("{s}\n")).collect();
        write_atomic(&self.root, SUBSCRIPTIONS, text.as_bytes())
    }

    /// Creates and subscribes the special-use folders, once: for a user
    /// who has neither folders nor a subscriptions file yet.
    pub fn create_special(&self) -> Result<(), FolderError> {
        if self.root.join(SUBSCRIPTIONS).exists() || self.list()?.len() > 1 {
            return Ok(());
        }
        for (name, _) in SPECIAL {
            match self.create(name) {
                Ok(()) | Err(FolderError::Exists) => {}
                Err(e) => return Err(e),
            }
        }
        let mut subs = vec!["INBOX".to_owned()];
        subs.extend(SPECIAL.iter().map(|(n, _)| (*n).to_owned()));
        self.write_subscriptions(&subs)?;
        Ok(())
    }

    /// The special-use attribute of a folder name (RFC 6154).
    pub fn special_use(name: &str) -> Option<&'static str> {
        SPECIAL.iter().find(|(n, _)| *n == name).map(|(_, u)| *u)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn folders_on_disk_as_maildir_plus_plus() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("Maildir")).unwrap();
        store.create_special().unwrap();
        assert_eq!(
            store.list().unwrap(),
            ["INBOX", "Drafts", "Junk", "Sent", "Trash"]
        );
        assert!(dir.path().join("Maildir/.Sent/maildirfolder").exists());
        assert_eq!(store.subscriptions().len(), 5);
        store.create("Work.Projects").unwrap();
        assert!(matches!(store.create("Work"), Err(FolderError::Exists)));
        assert!(matches!(store.create("a/b"), Err(FolderError::BadName)));
        assert!(matches!(store.create("a..b"), Err(FolderError::BadName)));
        assert!(matches!(
            store.delete("Work"),
            Err(FolderError::HasChildren)
        ));
        store.subscribe("Work.Projects", true).unwrap();
        store.rename("Work", "Job").unwrap();
        assert!(dir.path().join("Maildir/.Job.Projects/cur").is_dir());
        assert!(store.subscriptions().contains(&"Job.Projects".to_owned()));
        crate::Maildir::create(store.root())
            .unwrap()
            .deliver(b"x\r\n")
            .unwrap();
        store.rename("INBOX", "Old").unwrap();
        assert_eq!(
            store.mailbox("Old").unwrap().sync().unwrap().messages.len(),
            1
        );
        assert!(
            store
                .mailbox("INBOX")
                .unwrap()
                .sync()
                .unwrap()
                .messages
                .is_empty()
        );
        store.delete("Old").unwrap();
        store.delete("Job.Projects").unwrap();
        store.delete("Job").unwrap();
        assert!(matches!(
            store.mailbox("Job"),
            Err(FolderError::NotFound(_))
        ));
        assert!(store.mailbox("inbox").is_ok());
        assert!(matches!(store.delete("INBOX"), Err(FolderError::Inbox(_))));
        assert_eq!(store.list().unwrap().len(), 5);
    }
}
