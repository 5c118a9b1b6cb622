//! What a crash of the machine can leave of the writes `mail_fsync =
//! optimized` does not fsync (`postern-state`, expunges, flag renames),
//! and that it is read back safely: UIDs never name a second message,
//! UIDVALIDITY stays, MODSEQs never go backwards.
//!
//! A crash is simulated by putting back on disk what an unsynced write may
//! leave: the previous version of a file (written in an earlier boot),
//! none, or a torn one.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use postern_mailbox::state::{self, State};
use postern_mailbox::{Flags, Mailbox, Maildir, fsync, uidlist};

fn flag(name: &str) -> Flags {
    let mut f = Flags::new();
    f.insert(name);
    f
}

/// The state as an unsynced write left it in an earlier boot.
fn from_earlier_boot(text: &str) -> String {
    let mut state = State::parse(text).unwrap();
    state.boot = Some("00000000-0000-0000-0000-000000000000".to_owned());
    state.render()
}

fn state_text(dir: &Path) -> String {
    fs::read_to_string(dir.join(state::FILE)).unwrap()
}

#[test]
fn unsynced_state_names_this_boot() {
    let dir = tempfile::tempdir().unwrap();
    let mb = Mailbox::open(dir.path()).unwrap();
    mb.append(b"a\r\n", &Flags::new(), None).unwrap();
    mb.sync().unwrap();
    let text = state_text(dir.path());
    let boot = fsync::boot_id().unwrap();
    assert!(
        text.lines().next().unwrap().contains(&format!(" B{boot} ")),
        "{text}"
    );
    assert_eq!(fsync::mode(), fsync::Mode::Optimized, "the default");
}

/// A flag change whose state write a crash undid: after the reboot every
/// MODSEQ handed out is above what clients were told before, and the
/// change is reported again.
#[test]
fn a_reverted_state_after_a_reboot_never_lowers_modseqs() {
    let dir = tempfile::tempdir().unwrap();
    let md = Maildir::create(dir.path()).unwrap();
    for i in 0..3 {
        md.deliver(format!("m{i}\r\n").as_bytes()).unwrap();
    }
    let mb = Mailbox::open(dir.path()).unwrap();
    let before = mb.sync().unwrap();
    let old = state_text(dir.path());
    mb.set_flags(&before.messages[1], &flag("\\Seen")).unwrap();
    mb.set_flags(&before.messages[2], &flag("\\Flagged"))
        .unwrap();
    let told = mb.sync().unwrap();
    assert!(told.highest_modseq > before.highest_modseq);
    // The crash: the state on disk is the one from before both changes.
    fs::write(dir.path().join(state::FILE), from_earlier_boot(&old)).unwrap();
    let after = mb.sync().unwrap();
    assert!(
        after.highest_modseq > told.highest_modseq,
        "{} <= {}",
        after.highest_modseq,
        told.highest_modseq
    );
    for (a, t) in after.messages.iter().zip(&told.messages) {
        assert_eq!((a.uid, &a.flags), (t.uid, &t.flags), "UIDs and flags kept");
    }
    assert!(
        after.messages[1].modseq > told.highest_modseq,
        "changed again"
    );
    assert!(after.messages[2].modseq > told.highest_modseq);
    assert_eq!(after.validity, before.validity);
    // The raised state is written back for this boot: no second raise.
    let again = mb.sync().unwrap();
    assert_eq!(again.highest_modseq, after.highest_modseq);
    let text = state_text(dir.path());
    assert!(text.contains(fsync::boot_id().unwrap()), "{text}");
}

/// An APPEND's UID is fsynced with the list; the state that would give it
/// a MODSEQ is not. Reverted, the message keeps its UID.
#[test]
fn an_append_whose_state_was_lost_keeps_its_uid() {
    let dir = tempfile::tempdir().unwrap();
    let mb = Mailbox::open(dir.path()).unwrap();
    mb.append(b"one\r\n", &Flags::new(), None).unwrap();
    let first = mb.sync().unwrap();
    let old = state_text(dir.path());
    let (validity, uid) = mb.append(b"two\r\n", &Flags::new(), None).unwrap();
    assert_eq!((validity, uid), (first.validity, 2));
    let told = mb.sync().unwrap();
    fs::write(dir.path().join(state::FILE), from_earlier_boot(&old)).unwrap();
    let after = mb.sync().unwrap();
    let uids: Vec<u32> = after.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [1, 2]);
    assert_eq!(after.validity, validity);
    assert!(after.highest_modseq > told.highest_modseq);
    assert_eq!(mb.append(b"three\r\n", &Flags::new(), None).unwrap().1, 3);
    // A torn state (an unsynced write cut short) is rebuilt, not trusted,
    // and still above what was handed out.
    let before_tear = mb.sync().unwrap();
    fs::write(dir.path().join(state::FILE), "postern-state 1 V").unwrap();
    let rebuilt = mb.sync().unwrap();
    assert!(rebuilt.highest_modseq > before_tear.highest_modseq);
    assert_eq!(rebuilt.messages.len(), 3);
}

/// Expunges do not rewrite the list (Dovecot leaves such lines too): the
/// stale lines are read correctly, and the UIDs of expunged messages,
/// the last one included, are never given again, also after a crash that
/// brought back the expunged file's state record.
#[test]
fn expunged_uids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mb = Mailbox::open(dir.path()).unwrap();
    for i in 0..3 {
        mb.append(format!("m{i}\r\n").as_bytes(), &Flags::new(), None)
            .unwrap();
    }
    let s = mb.sync().unwrap();
    let old_state = state_text(dir.path());
    let list_before = fs::read_to_string(dir.path().join(uidlist::FILE)).unwrap();
    mb.expunge(&s.messages[2]).unwrap();
    mb.expunge(&s.messages[0]).unwrap();
    let t = mb.sync().unwrap();
    assert_eq!(t.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [2]);
    assert_eq!(t.next, 4);
    assert!(t.highest_modseq > s.highest_modseq);
    assert_eq!(
        fs::read_to_string(dir.path().join(uidlist::FILE)).unwrap(),
        list_before,
        "an expunge alone does not rewrite the list"
    );
    // The crash: the state still knows the expunged messages.
    fs::write(dir.path().join(state::FILE), from_earlier_boot(&old_state)).unwrap();
    let u = mb.sync().unwrap();
    assert_eq!(u.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [2]);
    assert!(u.highest_modseq > t.highest_modseq);
    let (_, uid) = mb.append(b"new\r\n", &Flags::new(), None).unwrap();
    assert_eq!(uid, 4, "not 1 or 3 again");
    let v = mb.sync().unwrap();
    assert_eq!(v.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 4]);
    // The list, in Dovecot's format, still names the expunged files.
    let list = fs::read_to_string(dir.path().join(uidlist::FILE)).unwrap();
    assert!(
        list.starts_with(&format!("3 V{} N5\n1 :", v.validity)),
        "{list}"
    );
    // Stale lines are pruned now and then, so the list stays small in a
    // mailbox that keeps its size.
    for i in 0..100 {
        mb.append(format!("x{i}\r\n").as_bytes(), &Flags::new(), None)
            .unwrap();
        let s = mb.sync().unwrap();
        mb.expunge(&s.messages[0]).unwrap();
        mb.sync().unwrap();
    }
    let list = uidlist::read(dir.path()).unwrap().unwrap();
    assert_eq!(list.next, 105);
    assert!(list.entries.len() < 40, "{}", list.entries.len());
    let end = mb.sync().unwrap();
    assert_eq!(
        end.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [103, 104]
    );
}

/// A flag rename lost in a crash (the file is back under its old name):
/// the message keeps its UID, shows the old flags, and its MODSEQ still
/// only grows.
#[test]
fn a_lost_flag_rename_keeps_the_uid() {
    let dir = tempfile::tempdir().unwrap();
    let mb = Mailbox::open(dir.path()).unwrap();
    mb.append(b"m\r\n", &Flags::new(), None).unwrap();
    let s = mb.sync().unwrap();
    let old_state = state_text(dir.path());
    let old_name = dir.path().join("cur").join(&s.messages[0].file);
    let new_name = mb.set_flags(&s.messages[0], &flag("\\Seen")).unwrap();
    let told = mb.sync().unwrap();
    fs::rename(dir.path().join("cur").join(new_name.unwrap()), &old_name).unwrap();
    fs::write(dir.path().join(state::FILE), from_earlier_boot(&old_state)).unwrap();
    let after = mb.sync().unwrap();
    assert_eq!(after.messages[0].uid, s.messages[0].uid);
    assert!(!after.messages[0].flags.has("\\Seen"));
    assert!(after.highest_modseq > told.highest_modseq);
    assert!(
        after.messages[0].modseq > told.highest_modseq,
        "reported again to a client that saw \\Seen"
    );
}
