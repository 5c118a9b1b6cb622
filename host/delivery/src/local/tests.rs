//! Tests of the local agent, end to end: a recipient through
//! [`Deliver::deliver`] into Maildirs, mbox files, commands and the queue
//! in a temporary directory. Apart because they are as long as the code.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use postern_auth::UserDb;
use postern_mail::{Address, Domain, ReversePath};

use super::*;

/// Changes `a`'s settings in place, as no reload could (the mailbox
/// locations too).
fn set(a: &LocalDelivery, change: impl FnOnce(&mut LocalSettings)) {
    let mut settings = LocalSettings::clone(&a.settings());
    change(&mut settings);
    a.settings.store(Arc::new(settings));
}

fn agent(base: &Path, users: &str) -> LocalDelivery {
    let users = Arc::new(UserDb::parse(users, "users").unwrap());
    let mut s = LocalSettings::new(base, Domain::parse("mx.example.com").unwrap(), users);
    s.recipient_delimiter = Some('+');
    LocalDelivery::new(s)
}

fn envelope(sender: Option<&str>) -> Envelope {
    Envelope::new(match sender {
        Some(s) => ReversePath::Address(Address::parse(s).unwrap()),
        None => ReversePath::Null,
    })
}

async fn deliver(agent: &LocalDelivery, env: &Envelope, rcpt: &str, body: &[u8]) -> DeliveryStatus {
    let id = QueueId::parse("ABCDEF123456").unwrap();
    let rcpt = Recipient::new(Address::parse(rcpt).unwrap());
    agent.deliver(&id, env, &rcpt, body).await
}

/// The messages in `maildir/new`.
fn new_messages(maildir: &Path) -> Vec<Vec<u8>> {
    fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect()
}

fn body() -> Vec<u8> {
    let mut b = b"Subject: hi\r\n\r\n.\r\nline\r\n".to_vec();
    b.extend(0u8..=255);
    b
}

#[tokio::test]
async fn lands_in_new_with_trace_headers() {
    let base = tempfile::tempdir().unwrap();
    let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
    let status = deliver(
        &a,
        &envelope(Some("bob@example.net")),
        "alice@example.org",
        &body(),
    )
    .await;
    assert_eq!(
        status,
        DeliveryStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: "delivered to maildir".to_owned()
        }
    );
    let maildir = base.path().join("example.org/alice/Maildir");
    let mut expected =
        b"Return-Path: <bob@example.net>\r\nDelivered-To: alice@example.org\r\n".to_vec();
    expected.extend(body());
    assert_eq!(new_messages(&maildir), [expected]);
    assert!(maildir.join("cur").is_dir() && maildir.join("tmp").is_dir());
}

#[tokio::test]
async fn null_sender_and_delimiter() {
    let base = tempfile::tempdir().unwrap();
    let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
    let status = deliver(&a, &envelope(None), "alice+tag@example.org", b"x").await;
    assert_eq!(status.word(), "sent");
    let got = new_messages(&base.path().join("example.org/alice/Maildir"));
    assert_eq!(
        got,
        [b"Return-Path: <>\r\nDelivered-To: alice+tag@example.org\r\nx".to_vec()]
    );
}

#[tokio::test]
async fn postmaster_has_a_mailbox() {
    let base = tempfile::tempdir().unwrap();
    let a = agent(base.path(), "");
    let status = deliver(&a, &envelope(None), "postmaster@mx.example.com", b"x").await;
    assert_eq!(status.word(), "sent");
    let maildir = base.path().join("mx.example.com/postmaster/Maildir");
    assert_eq!(new_messages(&maildir).len(), 1);
}

#[tokio::test]
async fn unknown_user_bounces() {
    let base = tempfile::tempdir().unwrap();
    let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
    let status = deliver(&a, &envelope(None), "Nobody@example.org", b"x").await;
    assert_eq!(
        status,
        DeliveryStatus::Bounced {
            dsn: EnhancedCode::new(5, 1, 1),
            detail: "unknown user: \"nobody\"".to_owned()
        }
    );
    assert!(!a.exists(&Address::parse("nobody@example.org").unwrap()));
    assert!(a.exists(&Address::parse("ALICE@example.org").unwrap()));
}

#[tokio::test]
async fn other_domains_stay_queued() {
    let base = tempfile::tempdir().unwrap();
    let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
    let status = deliver(&a, &envelope(None), "friend@elsewhere.example", b"x").await;
    assert_eq!(status.word(), "deferred");
    assert_eq!(status.dsn(), EnhancedCode::new(4, 4, 0));
}

#[tokio::test]
async fn io_error_defers() {
    let base = tempfile::tempdir().unwrap();
    // The user's home is a file: no Maildir can be made under it.
    let home = base.path().join("home");
    fs::write(&home, b"").unwrap();
    let users = format!("alice@example.org:{{PLAIN}}x::::{}\n", home.display());
    let a = agent(base.path(), &users);
    let status = deliver(&a, &envelope(None), "alice@example.org", b"x").await;
    assert_eq!(status.word(), "deferred");
    assert_eq!(status.dsn(), EnhancedCode::new(4, 3, 0));
    assert!(status.detail().contains(&home.display().to_string()));
}

#[tokio::test]
async fn mbox_in_the_home_and_in_the_spool() {
    let base = tempfile::tempdir().unwrap();
    let a = agent(base.path(), "alice@example.org:{PLAIN}x\nbob:{PLAIN}x\n");
    set(&a, |s| s.home_mailbox = "Mailbox".to_owned());
    let env = envelope(Some("carol@example.net"));
    let status = deliver(
        &a,
        &env,
        "alice@example.org",
        b"Subject: s\r\n\r\nFrom x\r\n",
    )
    .await;
    assert_eq!(status.detail(), "delivered to mailbox");
    let text = fs::read_to_string(base.path().join("example.org/alice/Mailbox")).unwrap();
    assert!(text.starts_with("From carol@example.net  "), "{text}");
    assert!(text.ends_with(
        "\nReturn-Path: <carol@example.net>\nDelivered-To: alice@example.org\nSubject: s\n\n>From x\n\n"
    ));
    // Empty home_mailbox: the spool, by user name; a virtual domain's
    // users under their domain.
    let spool = base.path().join("spool");
    set(&a, |s| {
        s.home_mailbox = String::new();
        s.mail_spool_directory = spool.clone();
    });
    let mut local = a.local_domains().to_vec();
    local.push(Domain::parse("localhost").unwrap());
    a.replace_local_domains(local);
    assert_eq!(
        deliver(&a, &env, "bob@localhost", b"x").await.word(),
        "sent"
    );
    assert_eq!(
        deliver(&a, &env, "alice@example.org", b"x").await.word(),
        "sent"
    );
    assert!(spool.join("bob").is_file());
    assert!(spool.join("example.org/alice").is_file());
}

#[test]
fn too_many_delivered_to_lines_are_a_loop() {
    let me = Address::parse("a@x.org").unwrap();
    let mut content = String::new();
    for n in 0..49 {
        content.push_str(&format!("Delivered-To: u{n}@y.org\r\n"));
    }
    content.push_str("\r\nDelivered-To: a@x.org\r\n");
    assert_eq!(delivered_to(content.as_bytes(), &me), None);
    let more = format!("Delivered-To: u49@y.org\r\n{content}");
    assert_eq!(
        delivered_to(more.as_bytes(), &me).unwrap().dsn(),
        EnhancedCode::new(5, 4, 6)
    );
}

#[tokio::test]
async fn forwarding_elsewhere_queues_a_new_message() {
    let base = tempfile::tempdir().unwrap();
    let home = base.path().join("home/dave");
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join(".forward"), "\\dave, friend@elsewhere.example\n").unwrap();
    let users = format!("dave@example.org:{{PLAIN}}x::::{}\n", home.display());
    let a = agent(base.path(), &users);
    let env = envelope(Some("carol@example.net"));
    // Without a queue to send it through: deferred.
    let status = deliver(&a, &env, "dave@example.org", b"Subject: s\r\n\r\nx\r\n").await;
    assert_eq!(status.word(), "deferred", "{status:?}");
    let queue = Arc::new(postern_queue::Queue::open(base.path().join("queue")).unwrap());
    a.set_forwarder(queue.clone());
    let status = deliver(&a, &env, "dave@example.org", b"Subject: s\r\n\r\nx\r\n").await;
    assert_eq!(status.word(), "sent", "{status:?}");
    let entries = queue.list().unwrap();
    assert_eq!(entries.len(), 1);
    let (_, m) = queue.read(&entries[0].id).unwrap();
    assert_eq!(m.envelope.sender.to_string(), "carol@example.net");
    assert_eq!(m.envelope.recipients.len(), 1);
    assert_eq!(
        m.envelope.recipients[0].address.to_string(),
        "friend@elsewhere.example"
    );
    assert_eq!(
        m.content,
        b"Delivered-To: dave@example.org\r\nSubject: s\r\n\r\nx\r\n"
    );
    // The copy kept here, twice (the deferred attempt stored one too).
    assert_eq!(new_messages(&home.join("Maildir")).len(), 2);
    // The forwarded copy coming back is a loop.
    let status = deliver(&a, &env, "dave@example.org", &m.content).await;
    assert_eq!(status.dsn(), EnhancedCode::new(5, 4, 6));
}

#[tokio::test]
async fn mailbox_command_for_local_users_only() {
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("out");
    let a = agent(base.path(), "alice@example.org:{PLAIN}x\nbob:{PLAIN}x\n");
    set(&a, |s| {
        s.mailbox_command = Some(format!(
            "cat > {}; echo \"$USER $EXTENSION\" >> {}",
            out.display(),
            out.display()
        ))
    });
    if rustix::process::geteuid().is_root() {
        // Run as nobody: let nobody write the output.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o777)).unwrap();
    }
    let status = deliver(&a, &envelope(None), "bob+x@mx.example.com", b"hi\r\n").await;
    assert_eq!(status.word(), "sent", "{status:?}");
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "Return-Path: <>\nDelivered-To: bob+x@mx.example.com\nhi\nbob x\n"
    );
    // example.org is not a local domain here: its users get the Maildir.
    let status = deliver(&a, &envelope(None), "alice@example.org", b"x").await;
    assert_eq!(status.detail(), "delivered to maildir");
}

/// A reload changes the delivery rules, never where mailboxes are.
#[test]
fn a_reload_changes_the_rules_not_where_mailboxes_are() {
    let base = tempfile::tempdir().unwrap();
    let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
    let start = a.settings();
    let reloaded = LocalSettings {
        recipient_delimiter: Some('+'),
        mailbox_command: Some("procmail".to_owned()),
        forward_path: vec!["$home/.forward-elsewhere".to_owned()],
        command_time_limit: std::time::Duration::from_secs(5),
        home_mailbox: "Elsewhere/".to_owned(),
        virtual_mailbox_base: "/elsewhere".into(),
        mail_spool_directory: "/elsewhere/spool".into(),
        myhostname: Domain::parse("elsewhere.example").unwrap(),
        ..LocalSettings::clone(&start)
    };
    a.reload_settings(&reloaded);
    let now = a.settings();
    assert_eq!(now.recipient_delimiter, Some('+'));
    assert_eq!(now.mailbox_command.as_deref(), Some("procmail"));
    assert_eq!(now.forward_path, reloaded.forward_path);
    assert_eq!(now.command_time_limit, reloaded.command_time_limit);
    assert_eq!(now.home_mailbox, start.home_mailbox);
    assert_eq!(now.virtual_mailbox_base, start.virtual_mailbox_base);
    assert_eq!(now.mail_spool_directory, start.mail_spool_directory);
    assert_eq!(now.myhostname, start.myhostname);
}
