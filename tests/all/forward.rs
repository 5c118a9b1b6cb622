//! `.forward` files end to end: a user with a home keeps a copy and
//! forwards one, `forward_path` with `recipient_delimiter` picks
//! `.forward+ext`, a command in a `.forward` runs, two files naming each
//! other bounce as a loop, and, as Postfix's local(8) does, a
//! world-writable file or a symbolic link is ignored with a warning: the
//! mail goes to the mailbox.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::*;

fn write_forward(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The log has `warning`, from `postern/local`.
fn assert_warned(server: &Server, warning: &str) {
    let log = server.wait_log(warning);
    let line = log.lines().find(|l| l.contains(warning)).unwrap();
    assert!(line.contains("postern/local["), "{line}");
}

#[test]
fn forward_files_redirect_a_users_mail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Commands of a root daemon run as nobody: let nobody write here.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let home = |u: &str| dir.join("home").join(u);
    let users = format!(
        "{USERS}dave@example.org:{{PLAIN}}x::::{}\nfrank:{{PLAIN}}x::::{}\ngina:{{PLAIN}}x::::{}\n\
         hank@example.org:{{PLAIN}}x::::{}\nivan@example.org:{{PLAIN}}x::::{}\n\
         jill@example.org:{{PLAIN}}x::::{}\n",
        home("dave").display(),
        home("frank").display(),
        home("gina").display(),
        home("hank").display(),
        home("ivan").display(),
        home("jill").display(),
    );
    std::fs::write(dir.join("users"), users).unwrap();
    write_forward(
        &home("dave").join(".forward"),
        "# a copy here, one to alice\n\\dave, alice@example.org\n",
    );
    write_forward(
        &home("dave").join(".forward+lists"),
        &format!("\"|cat > {}/lists.out\"\n", dir.display()),
    );
    write_forward(&home("frank").join(".forward"), "gina\n");
    write_forward(&home("gina").join(".forward"), "frank@example.org\n");
    write_forward(&home("hank").join(".forward"), "alice@example.org\n");
    write_forward(&home("ivan").join(".forward"), "ivan@elsewhere.example\n");
    std::fs::set_permissions(
        home("hank").join(".forward"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    write_forward(&dir.join("elsewhere"), "alice@example.org\n");
    std::fs::create_dir_all(home("jill")).unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), home("jill").join(".forward")).unwrap();
    std::fs::write(
        dir.join("postern.toml"),
        config_text(dir, "recipient_delimiter = \"+\"\n"),
    )
    .unwrap();
    let server = Server::start_in(dir);
    let mut c = Client::connect(server.smtp);
    // A message from carol to `rcpt`, which must be accepted.
    let mut send = |rcpt: &str, subject: &str| {
        let body = format!("Subject: {subject}\r\n\r\nx\r\n");
        send_accepted(&mut c, "carol@client.test.example", &[rcpt], &body)
    };

    send("dave@example.org", "one");
    let mine = wait_messages(&home("dave").join("Maildir/new"), 1);
    let alices = wait_messages(&server.new_dir("alice"), 1);
    assert!(String::from_utf8_lossy(&mine[0]).contains("Delivered-To: dave@example.org\r\n"));
    assert!(String::from_utf8_lossy(&alices[0]).contains("Delivered-To: alice@example.org\r\n"));

    // dave+lists has its own .forward: a command.
    send("dave+lists@example.org", "list");
    let out = wait_file(&dir.join("lists.out"));
    assert!(
        out.contains("Delivered-To: dave+lists@example.org\n"),
        "{out}"
    );
    assert_eq!(messages(&home("dave").join("Maildir/new")).len(), 1);

    // frank -> gina -> frank: a loop, bounced to the sender.
    send("frank@example.org", "loop");
    let log = server.wait_log("to=<frank@example.org>");
    let log = if log.contains("status=bounced (mail forwarding loop") {
        log
    } else {
        server.wait_log("status=bounced (mail forwarding loop for frank@example.org)")
    };
    assert!(log.contains("dsn=5.4.6"), "{log}");

    // A .forward others may write, or a link, is ignored with local(8)'s
    // warning: the mail is the user's.
    send("hank@example.org", "unsafe");
    let hanks = wait_messages(&home("hank").join("Maildir/new"), 1);
    assert!(String::from_utf8_lossy(&hanks[0]).contains("Subject: unsafe"));
    let file = home("hank").join(".forward");
    let warning = format!("warning: file {} is world writable", file.display());
    assert_warned(&server, &warning);
    send("jill@example.org", "link");
    let jills = wait_messages(&home("jill").join("Maildir/new"), 1);
    assert!(String::from_utf8_lossy(&jills[0]).contains("Subject: link"));
    let file = home("jill").join(".forward");
    let warning = format!("warning: file {} is not a regular file", file.display());
    assert_warned(&server, &warning);
    assert_eq!(messages(&server.new_dir("alice")).len(), 1);

    // Another domain: sent on as a new message through the queue.
    send("ivan@example.org", "away");
    let log = server.wait_log("status=sent (forwarded as ");
    let line = log
        .lines()
        .find(|l| l.contains("status=sent (forwarded as "))
        .unwrap();
    assert!(
        line.contains("to=<ivan@example.org>, relay=local"),
        "{line}"
    );
    let new_id = line.rsplit(' ').next().unwrap().trim_end_matches(')');
    server.wait_log(&format!("{new_id}: from=<carol@client.test.example>"));
    assert!(!home("ivan").join("Maildir").exists());
}
