//! Reloads and `.forward` after the drop to `mail_owner`, end to end:
//! started as root with `mail_owner` a user the test makes, and the
//! config, TLS key, users file, aliases file and a table readable by root
//! only (mode 0600), a `postern reload` after the key is replaced and a
//! user and an alias added serves the new certificate (seen with Python's
//! ssl), lets the new user log in and accepts the new alias, the files
//! read by the root helper; a users-file user added with a uid the helper
//! did not know gets mail once the reload has refreshed the helper's
//! policy; a `.forward` in a home of mode 0700, which `mail_owner` may not
//! enter, is followed (read by the helper as its owner), and one
//! local(8) would ignore (a link) is ignored with its warning, the mail
//! delivered to the mailbox; so is a `.forward` it may see but not read
//! (0600 or, as local(8) allows, 0620, in a home of mode 0755) followed,
//! and one the user may not read either (root's 0600) ignored with
//! local(8)'s `cannot open file F: Permission denied`, the mail in the
//! mailbox. Needs root (useradd,
//! chown): skipped with a message otherwise. The helper's refusal of
//! files the config does not name (/etc/shadow) is unit-tested in
//! host/privsep/src/files.rs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::privileges::{helper_pid, mail_to, set_password, skip_unless_root};
use crate::support::*;
use crate::system_accounts::Account;

/// `warning` was logged, by local delivery.
fn assert_warned(server: &Server, warning: &str) {
    let log = server.wait_log(warning);
    let line = log.lines().find(|l| l.contains(warning)).unwrap();
    assert!(line.contains("postern/local["), "{line}");
}

/// Writes `text` to `path`, root's, with `mode`.
fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A self-signed certificate for `name`, written as root's `cert.pem`
/// (0644) and `key.pem` (0600) in `etc`; its DER bytes, in hex.
fn certificate(etc: &Path, name: &str) -> String {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    write(&etc.join("cert.pem"), &made.cert.pem(), 0o644);
    write(
        &etc.join("key.pem"),
        &made.signing_key.serialize_pem(),
        0o600,
    );
    made.cert.der().iter().map(|b| format!("{b:02x}")).collect()
}

/// STARTTLS on submission, the certificate served (DER, hex), then AUTH.
const TLS_LOGIN: &str = r#"
import smtplib, ssl, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test.example", timeout=10) as s:
    s.starttls(context=ctx)
    print(s.sock.getpeercert(binary_form=True).hex())
    try:
        print("login", s.login(user, pw)[0])
    except smtplib.SMTPAuthenticationError as e:
        print("refused", e.smtp_code)
"#;

/// A root start whose config, TLS key and users file are root's only:
/// `etc` (root's) holds them, `data` is the data directory (handed to
/// `mail_owner`), `extra` adds main.cf lines.
struct Setup {
    _tmp: tempfile::TempDir,
    etc: PathBuf,
    data: PathBuf,
    owner: Account,
}

impl Setup {
    fn new(extra: &str) -> (Setup, Server) {
        Setup::start(extra, "", "")
    }

    /// [`Setup::new`] with `auth` lines in `[auth]` and `services` after
    /// the config's own.
    fn start(extra: &str, auth: &str, services: &str) -> (Setup, Server) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        // mail_owner and the users must reach their own files under it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (etc, data) = (dir.join("etc"), dir.join("data"));
        std::fs::create_dir(&etc).unwrap();
        std::fs::create_dir(&data).unwrap();
        let owner = Account::create(&dir.join("owner"));
        write(&etc.join("users"), USERS, 0o600);
        write(&etc.join("aliases"), "first: alice\n", 0o600);
        write(&etc.join("known"), "alice@example.org OK\n", 0o600);
        let extra = format!(
            "mail_owner = \"{}\"\n\
             smtpd_tls_cert_file = \"{1}/cert.pem\"\n\
             smtpd_tls_key_file = \"{1}/key.pem\"\n\
             alias_maps = \"{1}/aliases\"\n\
             auth_failure_delay = \"0s\"\n\
             {extra}",
            owner.name,
            etc.display(),
        );
        let config = config_text(&data, &extra)
            .replace(
                &format!("users_file = \"{}/users\"", data.display()),
                &format!("users_file = \"{}/users\"", etc.display()),
            )
            .replace("[auth]\n", &format!("[auth]\n{auth}"))
            + &format!(
                "[[service]]\nname = \"submission\"\nlisten = \"127.0.0.1:0\"\n\
                 {services}\
                 [tables.known]\ntype = \"hash\"\npath = \"{}/known\"\n",
                etc.display()
            );
        write(&etc.join("postern.toml"), &config, 0o600);
        certificate(&etc, "first.test.example");
        let server = Server::start_in(&etc);
        let log = server.wait_log("running as mail_owner");
        assert!(!log.contains("without privilege separation"), "{log}");
        let setup = Setup {
            _tmp: tmp,
            etc,
            data,
            owner,
        };
        (setup, server)
    }

    /// `postern reload`, which must succeed.
    fn reload(&self, server: &Server) {
        let out = postern_run(&self.etc.join("postern.toml"), &["reload"]);
        assert!(
            out.status.success(),
            "{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
    }
}

#[test]
fn a_reload_reads_root_only_key_and_users_through_the_helper() {
    if skip_unless_root() {
        return;
    }
    let (setup, server) = Setup::new("");
    let submission = server.listening("submission").port().to_string();
    let first = python(TLS_LOGIN, &[&submission, "carol@example.org", "carol-pw"]);
    let mut lines = first.lines();
    let served = lines.next().unwrap().to_owned();
    assert_eq!(lines.next(), Some("refused 535"), "{first}");

    // A new key (root's, 0600) and a new user in the root-only users file.
    let second = certificate(&setup.etc, "second.test.example");
    assert_ne!(served, second);
    let users = format!("{USERS}carol@example.org:{{PLAIN}}carol-pw::::\n");
    write(&setup.etc.join("users"), &users, 0o600);
    // And a root-only aliases file and table, changed too.
    write(
        &setup.etc.join("aliases"),
        "first: alice\nsecond: bob\n",
        0o600,
    );
    write(&setup.etc.join("known"), "bob@example.org OK\n", 0o600);
    setup.reload(&server);
    server.wait_log("reload: 3 users");
    server.wait_log("reload: 2 aliases");
    let mut c = Client::connect(server.smtp);
    c.cmd("EHLO client.test.example");
    c.cmd("MAIL FROM:<sender@example.net>");
    let reply = c.cmd("RCPT TO:<second@example.org>");
    assert!(reply.starts_with("250 "), "{reply}");
    let after = python(TLS_LOGIN, &[&submission, "carol@example.org", "carol-pw"]);
    assert_eq!(after, format!("{second}\nlogin 235\n"), "{}", server.log());
    let log = server.log();
    assert!(!log.contains("TLS reload failed"), "{log}");
    assert!(log.contains("helper's policy is refreshed"), "{log}");
    // The daemon itself still may not read them.
    assert_eq!(
        std::fs::metadata(setup.etc.join("key.pem")).unwrap().uid(),
        0
    );
}

#[test]
fn a_new_uid_gets_mail_after_reload_and_a_closed_homes_forward_is_followed() {
    if skip_unless_root() {
        return;
    }
    let (setup, server) = Setup::new("local_recipient_maps = \"unix:passwd.byname\"\n");
    // A users-file user with a uid below UID_MIN the helper was not
    // told of at start: known after the reload, and written as that uid.
    let users = format!("{USERS}dave@example.org:{{PLAIN}}x:777:777::::\n");
    write(&setup.etc.join("users"), &users, 0o600);
    setup.reload(&server);
    server.wait_log("reload: 3 users");
    server.wait_log("helper's policy is refreshed");
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "sender@example.net",
        &["dave@example.org"],
        "Subject: new uid\r\n\r\nhi\r\n",
    );
    let dave = setup.data.join("mail/example.org/dave/Maildir/new");
    let got = wait_messages(&dave, 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: new uid"));
    let file = std::fs::read_dir(&dave).unwrap().next().unwrap().unwrap();
    assert_eq!(file.metadata().unwrap().uid(), 777);

    // A system account whose home (0700) mail_owner may not enter,
    // forwarding to bob.
    let home = setup.etc.parent().unwrap().join("home");
    let user = Account::create(&home);
    std::fs::write(home.join(".forward"), "bob@example.org\n").unwrap();
    std::os::unix::fs::chown(home.join(".forward"), Some(user.uid), Some(user.gid)).unwrap();
    assert_eq!(
        std::fs::metadata(&home).unwrap().mode() & 0o777,
        0o700,
        "the home must be closed to mail_owner"
    );
    let rcpt = mail_to(server.smtp, &user, "forwarded");
    let bob = setup.data.join("mail/example.org/bob/Maildir/new");
    let got = wait_messages(&bob, 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Subject: forwarded"), "{text}");
    assert!(text.contains(&format!("for <{rcpt}>")), "{text}");
    // Forwarded, not kept.
    assert!(!home.join("Maildir/new").exists() || messages(&home.join("Maildir/new")).is_empty());
    assert!(
        !server.log().contains("refused a request"),
        "{}",
        server.log()
    );

    // A `.forward` local(8) ignores (a link), found by the helper: its
    // warning, and the mail in the mailbox, as when the daemon finds it.
    let home = setup.etc.parent().unwrap().join("home2");
    let linked = Account::create(&home);
    std::os::unix::fs::symlink("/etc/passwd", home.join(".forward")).unwrap();
    mail_to(server.smtp, &linked, "linked");
    let got = wait_messages(&home.join("Maildir/new"), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: linked"));
    let file = home.join(".forward");
    assert_warned(
        &server,
        &format!("warning: file {} is not a regular file", file.display()),
    );
    assert!(
        !server.log().contains("cannot read forward file"),
        "{}",
        server.log()
    );
    drop((user, linked, setup.owner));
}

#[test]
fn a_forward_mail_owner_sees_but_may_not_read_is_read_through_the_helper() {
    if skip_unless_root() {
        return;
    }
    let (setup, server) = Setup::new("local_recipient_maps = \"unix:passwd.byname\"\n");
    let base = setup.etc.parent().unwrap().to_owned();
    // Homes open to mail_owner (0755), each with a `.forward` it may see
    // but not read: the user's own 0600; the user's 0620 (group write,
    // which Postfix's local(8) allows); root's 0600, which the user, as
    // whom the helper reads it, may not read either.
    let account = |name: &str, text: &str, owner: Option<u32>, mode: u32| {
        let home = base.join(name);
        let user = Account::create(&home);
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        write(&home.join(".forward"), text, mode);
        let uid = owner.unwrap_or(user.uid);
        std::os::unix::fs::chown(home.join(".forward"), Some(uid), Some(user.gid)).unwrap();
        (user, home)
    };
    let (own, own_home) = account("own", "bob@example.org\n", None, 0o600);
    let (group, group_home) = account("group", "alice@example.org\n", None, 0o620);
    let (rooted, rooted_home) = account("rooted", "bob@example.org\n", Some(0), 0o600);
    let send = |user: &Account, subject: &str| mail_to(server.smtp, user, subject);
    let rcpt = send(&own, "own");
    let got = wait_messages(&setup.data.join("mail/example.org/bob/Maildir/new"), 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Subject: own"), "{text}");
    assert!(text.contains(&format!("for <{rcpt}>")), "{text}");
    send(&group, "group");
    let got = wait_messages(&setup.data.join("mail/example.org/alice/Maildir/new"), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: group"));
    // Forwarded, not kept.
    for home in [&own_home, &group_home] {
        assert!(
            !home.join("Maildir/new").exists() || messages(&home.join("Maildir/new")).is_empty()
        );
    }

    // The user may not open root's 0600 file: local(8) warns and
    // delivers to the mailbox (not deferred, not bounced).
    let rcpt = send(&rooted, "rooted");
    let got = wait_messages(&rooted_home.join("Maildir/new"), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: rooted"));
    let file = rooted_home.join(".forward");
    assert_warned(
        &server,
        &format!(
            "warning: cannot open file {}: Permission denied",
            file.display()
        ),
    );
    // The delivery's line (the queue logs it after the write).
    let needle = format!("to=<{rcpt}>, relay=");
    let log = server.wait_log(&needle);
    let line = log.lines().find(|l| l.contains(&needle)).unwrap();
    assert!(line.contains("status=sent"), "{line}");
    assert_eq!(
        messages(&setup.data.join("mail/example.org/bob/Maildir/new")).len(),
        1
    );
    drop((own, group, rooted, setup.owner));
}

/// Two IMAP logins of the account at once, then, once the first has
/// logged out, a third: what each got.
const TWO_LOGINS: &str = r#"
import imaplib, sys, time
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def login(quiet=False):
    c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        c.login(user, pw)
        return c
    except imaplib.IMAP4.error as e:
        if not quiet:
            print("refused", e)
        return None
def eventually():
    # A session process is reaped a moment after its LOGOUT.
    for _ in range(100):
        c = login(quiet=True)
        if c:
            return c
        time.sleep(0.1)
    return login()
first = eventually()
print("first", first.select("INBOX")[0])
second = login()
if second:
    print("second", second.select("INBOX")[0])
    second.logout()
first.logout()
third = eventually()
print("third", third.select("INBOX")[0])
third.logout()
"#;

#[test]
fn the_helpers_session_cap_follows_the_configured_slots_and_reloads() {
    if skip_unless_root() {
        return;
    }
    let imap = "[[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n";
    let (setup, server) = Setup::start(
        "local_recipient_maps = \"unix:passwd.byname\"\ndefault_process_limit = 3\n",
        "system_accounts = true\n",
        imap,
    );
    // The helper's cap at start: the POP3 and IMAP slots, 3 on the one
    // imap address.
    let log = server.log();
    let helper = helper_pid(&log);
    let cmdline = std::fs::read(format!("/proc/{helper}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("--max-sessions 3 "), "{cmdline}");
    // A system account whose Maildir is its own: IMAP logins run as it,
    // each a session process the helper starts.
    let home = setup.etc.parent().unwrap().join("home");
    let user = Account::create(&home);
    set_password(&user, "Cap-Test-1");
    mail_to(server.smtp, &user, "x");
    wait_messages(&home.join("Maildir/new"), 1);
    let port = server.listening("imap").port().to_string();
    let said = python(TWO_LOGINS, &[&port, &user.name, "Cap-Test-1"]);
    assert_eq!(said, "first OK\nsecond OK\nthird OK\n", "{}", server.log());

    // One slot in the config, reloaded: the helper's cap follows at the
    // refresh, though the daemon keeps its 3 slots until a restart.
    let path = setup.etc.join("postern.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("default_process_limit = 3", "default_process_limit = 1");
    write(&path, &text, 0o600);
    setup.reload(&server);
    server.wait_log_count("helper's policy is refreshed", 1);
    let said = python(TWO_LOGINS, &[&port, &user.name, "Cap-Test-1"]);
    assert!(
        said.starts_with("first OK\nrefused ") && said.ends_with("third OK\n"),
        "{said}\n{}",
        server.log()
    );
    server.wait_log("too many session processes (at most 1,");
    drop((user, setup.owner));
}
