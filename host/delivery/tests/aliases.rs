//! Every alias form delivered over real files and real commands.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use postern_auth::UserDb;
use postern_delivery::expand::ExpandError;
use postern_delivery::{AliasMap, LocalDelivery, LocalSettings};
use postern_mail::{
    Address, Deliver, DeliveryStatus, Domain, EnhancedCode, Envelope, QueueId, Recipient,
    ReversePath,
};

/// A root-owned aliases file runs its files and commands as
/// `default_privs` (nobody): when the tests run as root, `dir` is given
/// to nobody so that those can write there.
fn agent(dir: &Path, aliases: &str) -> LocalDelivery {
    let file = dir.join("aliases");
    fs::write(&file, aliases).unwrap();
    if rustix::process::geteuid().is_root() {
        let (uid, gid) = postern_delivery::settings::lookup_privs("nobody").unwrap();
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
    }
    let users = UserDb::parse("alice@example.org:{PLAIN}x\nbob:{PLAIN}x\n", "users").unwrap();
    let mut s = LocalSettings::new(
        dir.join("mail"),
        Domain::parse("mx.example.org").unwrap(),
        Arc::new(users),
    );
    s.local_domains.push(Domain::parse("example.org").unwrap());
    s.recipient_delimiter = Some('+');
    s.aliases = Arc::new(AliasMap::load(&[file]).unwrap());
    LocalDelivery::new(s)
}

async fn deliver(a: &LocalDelivery, rcpt: &str, content: &[u8]) -> DeliveryStatus {
    let mut env = Envelope::new(ReversePath::Address(
        Address::parse("carol@example.net").unwrap(),
    ));
    let mut recipient = Recipient::new(Address::parse(rcpt).unwrap());
    recipient.original = Address::parse(&rcpt.to_uppercase()).unwrap();
    env.recipients.push(recipient.clone());
    let id = QueueId::parse("ABCDEF123456").unwrap();
    a.deliver(&id, &env, &recipient, content).await
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn lists_names_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(
        dir.path(),
        "team: alice@example.org,\n  bob, team2\nteam2: bob\nroot: root, bob\n",
    );
    assert!(a.exists(&Address::parse("team@example.org").unwrap()));
    assert!(a.exists(&Address::parse("Team+x@mx.example.org").unwrap()));
    assert!(!a.exists(&Address::parse("team@elsewhere.example").unwrap()));
    let status = deliver(&a, "team@example.org", b"Subject: t\r\n\r\nhi\r\n").await;
    assert_eq!(status.word(), "sent", "{status:?}");
    // bob twice (directly and through team2): one copy.
    assert_eq!(
        count(&dir.path().join("mail/example.org/alice/Maildir/new")),
        1
    );
    assert_eq!(count(&dir.path().join("mail/bob/Maildir/new")), 1);
    // root names itself: its own mailbox (no such user: bounced 5.1.1).
    let status = deliver(&a, "root@example.org", b"x").await;
    assert_eq!(status.dsn(), EnhancedCode::new(5, 1, 1), "{status:?}");
}

#[tokio::test]
async fn file_and_command_targets() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got");
    let mbox = dir.path().join("archive.mbox");
    let a = agent(
        dir.path(),
        &format!(
            "archive: {}\n\
             robot: \"|env | grep -E '^(SENDER|RECIPIENT|ORIGINAL_RECIPIENT|LOCAL|DOMAIN|EXTENSION)=' | sort > {o}.env; cat > {o}\"\n\
             fail: \"|echo no such ticket >&2; exit 67\"\n\
             later: \"|exit 75\"\n\
             whoami: \"|id -u > {o}.uid\"\n",
            mbox.display(),
            o = out.display()
        ),
    );
    let msg = b"Subject: s\r\n\r\nFrom me\r\nbody\r\n";
    for _ in 0..2 {
        let status = deliver(&a, "archive@example.org", msg).await;
        assert_eq!(status.word(), "sent", "{status:?}");
    }
    let text = fs::read_to_string(&mbox).unwrap();
    assert_eq!(
        text.matches("\nFrom carol@example.net  ").count() + 1,
        2,
        "{text}"
    );
    assert!(text.contains("Delivered-To: archive@example.org\nSubject: s\n\n>From me\nbody\n\n"));

    let status = deliver(&a, "robot+x@example.org", msg).await;
    assert_eq!(status.word(), "sent", "{status:?}");
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "Return-Path: <carol@example.net>\nDelivered-To: robot+x@example.org\nSubject: s\n\nFrom me\nbody\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("got.env")).unwrap(),
        "DOMAIN=example.org\nEXTENSION=x\nLOCAL=robot+x\nORIGINAL_RECIPIENT=ROBOT+X@example.org\n\
         RECIPIENT=robot+x@example.org\nSENDER=carol@example.net\n"
    );
    let status = deliver(&a, "fail@example.org", msg).await;
    assert_eq!(status.word(), "bounced");
    assert_eq!(status.dsn(), EnhancedCode::new(5, 1, 1));
    assert!(status.detail().contains("no such ticket"), "{status:?}");
    assert_eq!(
        deliver(&a, "later@example.org", msg).await.word(),
        "deferred"
    );
    // Never as root: as nobody for this root-owned file when we are root.
    assert_eq!(deliver(&a, "whoami@example.org", msg).await.word(), "sent");
    let uid: u32 = fs::read_to_string(dir.path().join("got.uid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if rustix::process::geteuid().is_root() {
        assert_eq!(
            uid,
            postern_delivery::settings::lookup_privs("nobody")
                .unwrap()
                .0
        );
    } else {
        assert_eq!(uid, rustix::process::geteuid().as_raw());
    }
}

#[tokio::test]
async fn includes_and_restrictions() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list");
    fs::write(
        &list,
        format!(
            "# the list\nalice@example.org, bob\n{}\n|cat > /dev/null\n",
            dir.path().join("f").display()
        ),
    )
    .unwrap();
    let a = agent(dir.path(), &format!("staff: :include:{}\n", list.display()));
    let status = deliver(&a, "staff@example.org", b"x").await;
    // The users get it; the file and the command of the include file are
    // refused (allow_mail_to_files / _commands lack "include").
    assert_eq!(status.word(), "bounced");
    assert_eq!(status.dsn(), EnhancedCode::new(5, 7, 1));
    assert!(status.detail().contains("restricted"), "{status:?}");
    assert_eq!(count(&dir.path().join("mail/bob/Maildir/new")), 1);
    assert!(!dir.path().join("f").exists());
}

#[tokio::test]
async fn loops_bounce() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), "a: b\nb: c@example.org\nc: a\n");
    assert_eq!(
        a.expand(&Address::parse("a@example.org").unwrap()),
        Err(ExpandError::Loop("a -> b -> c -> a".to_owned()))
    );
    let status = deliver(&a, "b@example.org", b"x").await;
    assert_eq!(status.dsn(), EnhancedCode::new(5, 4, 6));
    // Delivered-To already names the recipient: the mail came back.
    let status = deliver(
        &a,
        "alice@example.org",
        b"Delivered-To: ALICE@example.org\r\nSubject: x\r\n\r\nx",
    )
    .await;
    assert_eq!(status.dsn(), EnhancedCode::new(5, 4, 6));
    assert_eq!(
        status.detail(),
        "mail forwarding loop for alice@example.org"
    );
    // In the body it means nothing.
    let status = deliver(
        &a,
        "alice@example.org",
        b"Subject: x\r\n\r\nDelivered-To: alice@example.org\r\n",
    )
    .await;
    assert_eq!(status.word(), "sent");
}

#[tokio::test]
async fn a_command_past_its_time_limit_is_killed_and_deferred() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(
        dir.path(),
        "slow: \"|sleep 30 & sleep 30\"\nquick: \"|sleep 3 & exit 0\"\n",
    );
    // As a reload that cut command_time_limit would.
    let mut settings = LocalSettings::clone(&a.settings());
    settings.command_time_limit = std::time::Duration::from_millis(300);
    a.reload_settings(&settings);
    let start = std::time::Instant::now();
    let status = deliver(&a, "slow@example.org", b"x").await;
    assert_eq!(status.word(), "deferred", "{status:?}");
    assert!(status.detail().contains("time limit"), "{status:?}");
    // A background child that keeps the pipes open holds nothing up.
    let status = deliver(&a, "quick@example.org", b"x").await;
    assert_eq!(status.word(), "sent", "{status:?}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
