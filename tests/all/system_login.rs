//! System accounts log in, end to end (Dovecot's `passdb { driver =
//! shadow }` + `userdb { driver = passwd }`): with `[auth] system_accounts
//! = true`, users made with useradd and given passwords with chpasswd (a
//! yescrypt and a sha512-crypt hash, as the system writes them) get mail
//! over SMTP, read it with Python's poplib and imaplib, and send with
//! smtplib over submission; a wrong password, a locked account (`usermod
//! -L`) and an expired one (`chage -E 0`) are refused; every file in
//! their Maildirs is theirs though the server runs as root. Users-file
//! entries with a uid and gid get their Maildir made and written as that
//! uid. Config mistakes name the key. Needs root (useradd, chown): skipped
//! with a message otherwise.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::support::*;
use crate::system_accounts::{Account, tree};

const SERVICES: &str = "local_recipient_maps = \"unix:passwd.byname, $alias_maps\"\n\
    auth_failure_delay = \"0s\"\n\
    auth_failure_limit = 100\n\
    [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:0\"\n\
    [[service]]\nname = \"submission\"\nlisten = \"127.0.0.1:0\"\n";

/// Where `service` listens, from the server's `listening on` line.
fn port(server: &Server, service: &str) -> String {
    server.listening(service).port().to_string()
}

/// Runs `args` with `stdin`, and says how it went.
fn run(args: &[&str], stdin: &str) {
    let out = run_with_input(Command::new(args[0]).args(&args[1..]), stdin.as_bytes());
    assert!(out.status.success(), "{args:?}: {out:?}");
}

/// The password field of `name` in /etc/shadow.
fn shadow_hash(name: &str) -> String {
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    shadow
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|rest| rest.split(':').next())
        .unwrap()
        .to_owned()
}

/// Reads the first message over POP3, then over IMAP (and APPENDs one):
/// prints what it saw.
const READ: &str = r#"
import imaplib, poplib, sys
pop, imap, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = poplib.POP3("127.0.0.1", pop, timeout=10)
p.user(user)
p.pass_(pw)
print("pop-stat", p.stat()[0])
_, lines, _ = p.retr(1)
print("pop", [l.decode() for l in lines if l.startswith(b"Subject:")][0])
p.quit()
m = imaplib.IMAP4("127.0.0.1", imap, timeout=10)
m.login(user, pw)
_, data = m.select("INBOX")
print("imap-exists", data[0].decode())
_, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("imap", data[0][1].decode().strip())
m.append("INBOX", None, None, b"Subject: appended\r\n\r\nby imap\r\n")
m.logout()
"#;

/// Tries each `user password` pair of the arguments over POP3 and IMAP.
const TRY: &str = r#"
import imaplib, poplib, sys
pop, imap, pairs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
for user, pw in zip(pairs[::2], pairs[1::2]):
    p = poplib.POP3("127.0.0.1", pop, timeout=10)
    p.user(user)
    try:
        p.pass_(pw)
        p.quit()
        got = "ok"
    except poplib.error_proto as e:
        got = "refused"
    m = imaplib.IMAP4("127.0.0.1", imap, timeout=10)
    try:
        m.login(user, pw)
        m.logout()
        got += " ok"
    except imaplib.IMAP4.error:
        got += " refused"
    print(user, pw, got)
"#;

/// AUTH LOGIN on submission, then a message from the user's address.
const SUBMIT: &str = r#"
import smtplib, sys
port, user, pw, to = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test.example", timeout=10) as s:
    s.ehlo()
    try:
        s.login(user, "not-" + pw)
        print("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        print("refused", e.smtp_code)
    print("login", s.login(user, pw)[0])
    s.sendmail(user + "@example.org", [to], "Subject: from a system user\r\n\r\nhi\r\n")
"#;

fn skip_unless_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    eprintln!("skipped: only root may add system users and read /etc/shadow");
    true
}

/// Files under `dir` not owned by `(uid, gid)`.
fn not_owned(dir: &Path, ids: (u32, u32)) -> Vec<String> {
    tree(dir)
        .into_iter()
        .filter(|p| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid()) != ids
        })
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn system_accounts_read_and_send_mail_with_their_passwords() {
    if skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let config =
        config_text(tmp.path(), SERVICES).replace("[auth]\n", "[auth]\nsystem_accounts = true\n");
    std::fs::write(tmp.path().join("postern.toml"), config).unwrap();
    let yes = Account::create(&tmp.path().join("yes"));
    let sha = Account::create(&tmp.path().join("sha"));
    run(
        &["chpasswd", "-c", "YESCRYPT"],
        &format!("{}:Yes-pw.1\n", yes.name),
    );
    run(
        &["chpasswd", "-c", "SHA512"],
        &format!("{}:Sha-pw.2\n", sha.name),
    );
    assert!(shadow_hash(&yes.name).starts_with("$y$"));
    assert!(shadow_hash(&sha.name).starts_with("$6$"));
    let server = Server::start_in(tmp.path());
    let (pop, imap, sub) = (
        port(&server, "pop3"),
        port(&server, "imap"),
        port(&server, "submission"),
    );

    for account in [&yes, &sha] {
        let mut c = Client::connect(server.smtp);
        let rcpt = format!("{}@example.org", account.name);
        let subject = format!("Subject: for {}\r\n\r\nhello\r\n", account.name);
        let reply = send_message(&mut c, "sender@example.net", &[&rcpt], &subject);
        assert!(reply.starts_with("250 "), "{reply}");
    }
    let home = |a: &Account| {
        tmp.path()
            .join(if a.name == yes.name { "yes" } else { "sha" })
    };
    for account in [&yes, &sha] {
        wait_messages(&home(account).join("Maildir/new"), 1);
    }

    // POP3 and IMAP with each kind of hash; a login may name a local domain.
    let out = python(READ, &[&pop, &imap, &yes.name, "Yes-pw.1"]);
    assert!(out.contains("pop-stat 1\n"), "{out}");
    assert!(
        out.contains(&format!("pop Subject: for {}\n", yes.name)),
        "{out}"
    );
    assert!(out.contains("imap-exists 1\n"), "{out}");
    assert!(
        out.contains(&format!("imap Subject: for {}\n", yes.name)),
        "{out}"
    );
    let at_domain = format!("{}@example.org", sha.name);
    let out = python(READ, &[&pop, &imap, &at_domain, "Sha-pw.2"]);
    assert!(
        out.contains(&format!("imap Subject: for {}\n", sha.name)),
        "{out}"
    );
    server.wait_log(&format!("Login: user=<{}>, method=PLAIN", yes.name));

    // SMTP AUTH on submission: the same account, the same password.
    let out = python(SUBMIT, &[&sub, &yes.name, "Yes-pw.1", "alice@example.org"]);
    assert!(out.contains("refused 535\nlogin 235\n"), "{out}");
    let got = wait_messages(&server.new_dir("alice"), 1);
    assert!(
        String::from_utf8_lossy(&got[0]).contains("Subject: from a system user"),
        "{}",
        String::from_utf8_lossy(&got[0])
    );

    // Everything the sessions made (cur/, the folders IMAP creates, the
    // uid list, the APPENDed message) is the account's, not root's.
    for account in [&yes, &sha] {
        let maildir = home(account).join("Maildir");
        assert!(maildir.join(".Drafts").is_dir());
        assert_eq!(
            not_owned(&maildir, (account.uid, account.gid)),
            Vec::<String>::new()
        );
    }

    // Refused: a wrong password, a locked account, an expired one, root.
    run(&["usermod", "-L", &sha.name], "");
    assert!(shadow_hash(&sha.name).starts_with("!$6$"));
    let out = python(
        TRY,
        &[
            &pop, &imap, &yes.name, "Yes-pw.2", &sha.name, "Sha-pw.2", "root", "x", &yes.name,
            "Yes-pw.1",
        ],
    );
    assert!(
        out.contains(&format!("{} Yes-pw.2 refused refused\n", yes.name)),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} Sha-pw.2 refused refused\n", sha.name)),
        "{out}"
    );
    assert!(out.contains("root x refused refused\n"), "{out}");
    assert!(
        out.contains(&format!("{} Yes-pw.1 ok ok\n", yes.name)),
        "{out}"
    );
    run(&["chage", "-E", "0", &yes.name], "");
    let out = python(TRY, &[&pop, &imap, &yes.name, "Yes-pw.1"]);
    assert!(
        out.contains(&format!("{} Yes-pw.1 refused refused\n", yes.name)),
        "{out}"
    );
    server.wait_log(&format!("Authentication failed: user=<{}>", sha.name));
}

#[test]
fn users_file_uids_own_their_maildirs() {
    if skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let users = format!("{USERS}carol@example.org:{{PLAIN}}secret:4243:4244::\n");
    std::fs::write(tmp.path().join("users"), users).unwrap();
    std::fs::write(
        tmp.path().join("postern.toml"),
        config_text(tmp.path(), SERVICES),
    )
    .unwrap();
    let server = Server::start_in(tmp.path());
    let mut c = Client::connect(server.smtp);
    let reply = send_message(
        &mut c,
        "sender@example.net",
        &["carol@example.org", "alice@example.org"],
        "Subject: to carol\r\n\r\nhi\r\n",
    );
    assert!(reply.starts_with("250 "), "{reply}");
    wait_messages(&server.new_dir("carol"), 1);
    wait_messages(&server.new_dir("alice"), 1);
    let (pop, imap) = (port(&server, "pop3"), port(&server, "imap"));
    let out = python(READ, &[&pop, &imap, "carol@example.org", "secret"]);
    assert!(out.contains("imap Subject: to carol\n"), "{out}");

    // Carol's home is made for her; every file in it is hers.
    let home = tmp.path().join("mail/example.org/carol");
    assert_eq!(not_owned(&home, (4243, 4244)), Vec::<String>::new());
    assert_eq!(std::fs::metadata(&home).unwrap().mode() & 0o777, 0o700);
    // The shared parent stays the server's; a user without a uid is
    // written as the server, as before.
    assert_eq!(std::fs::metadata(home.parent().unwrap()).unwrap().uid(), 0);
    let alice = server.new_dir("alice");
    assert_eq!(std::fs::metadata(&alice).unwrap().uid(), 0);
}

#[test]
fn config_mistakes_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let config = tmp.path().join("postern.toml");
    for (extra, auth, says) in [
        ("", "system_accounts = true", "needs local_recipient_maps"),
        (
            "local_recipient_maps = \"unix:passwd.byname\"",
            "system_accounts = \"yes\"",
            "expected true or false",
        ),
    ] {
        let text = config_text(tmp.path(), extra).replace("[auth]\n", &format!("[auth]\n{auth}\n"));
        std::fs::write(&config, text).unwrap();
        let (ok, stderr) = postern_check(&config);
        assert!(!ok, "{stderr}");
        assert!(stderr.contains("auth.system_accounts"), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    // Both set: fine.
    let text = config_text(tmp.path(), "local_recipient_maps = \"unix:passwd.byname\"")
        .replace("[auth]\n", "[auth]\nsystem_accounts = true\n");
    std::fs::write(&config, text).unwrap();
    let (ok, stderr) = postern_check(&config);
    assert!(ok, "{stderr}");
}
