//! Restriction classes (Postfix `smtpd_restriction_classes`) through a
//! running server: a class named as a list entry and as an access map's
//! answer is evaluated in place (its first permit or reject decides for
//! the stage, running out goes on with the list that named it), in
//! Postfix's spelling (top-level `smtpd_restriction_classes` and one key
//! per class) and in `[smtpd.restriction_classes]`. Mistakes are refused
//! by `postern check` with the place named: a listed class without a
//! definition, a loop, an access map answering an unknown name.

use std::path::Path;

use crate::support::*;

/// Writes `name` into `dir` with `text`; returns its path as text.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The config: the sender table sends freemail senders to the class
/// `from_freemail` (only 127.0.0.3 may use them), and the recipient list
/// names the class `away` (bob is away) before its own entries.
fn lists(dir: &Path, toml_table: bool) -> String {
    let senders = write(
        dir,
        "senders",
        "freemail.example   from_freemail\n\
         strict.example     permit_mynetworks, from_freemail, reject\n",
    );
    let clients = write(dir, "clients", "127.0.0.3  OK\n");
    let away = write(dir, "away", "bob@example.org  REJECT Bob is away\n");
    let classes = if toml_table {
        format!(
            "[smtpd.restriction_classes]\n\
             from_freemail = [\"check_client_access hash:{clients}\", \"reject\"]\n\
             away = \"check_recipient_access hash:{away}\"\n"
        )
    } else {
        format!(
            "smtpd_restriction_classes = \"from_freemail, away\"\n\
             from_freemail = \"\"\"\n    check_client_access hash:{clients}\n    reject\"\"\"\n\
             away = \"check_recipient_access hash:{away}\"\n"
        )
    };
    format!(
        "smtpd_sender_restrictions = \"check_sender_access hash:{senders}\"\n\
         smtpd_recipient_restrictions = \"away, permit_auth_destination, reject\"\n\
         {classes}"
    )
}

fn start(toml_table: bool) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    // The table comes last in `lists`, before config_text's `[auth]`.
    test_config(tmp.path(), &lists(tmp.path(), toml_table));
    (Server::start_in(tmp.path()), tmp)
}

/// One transaction from `source`: the RCPT reply.
fn rcpt(server: &Server, source: &str, from: &str, to: &str) -> String {
    rcpt_from(server.smtp, source, "client.example", from, to).0
}

fn classes_decide_in_place(server: &Server) {
    // The access map names the class: 127.0.0.2 is not in its client
    // table, so the class's `reject` refuses.
    assert_eq!(
        rcpt(
            server,
            "127.0.0.2",
            "a@freemail.example",
            "alice@example.org"
        ),
        "554 5.7.1 Access denied\r\n"
    );
    server.wait_log(
        "reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 Access denied; \
         from=<a@freemail.example> to=<alice@example.org> proto=ESMTP \
         helo=<client.example> plugin=reject",
    );
    // 127.0.0.3 is: the class permits the sender stage.
    let r = rcpt(
        server,
        "127.0.0.3",
        "a@freemail.example",
        "alice@example.org",
    );
    assert!(r.starts_with("250"), "{r}");
    // A class among other names of an answer: evaluated in its place.
    let r = rcpt(server, "127.0.0.3", "a@strict.example", "alice@example.org");
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        rcpt(server, "127.0.0.2", "a@strict.example", "alice@example.org"),
        "554 5.7.1 Access denied\r\n"
    );
    // A class as a list entry: its refusal is the list's ...
    assert_eq!(
        rcpt(server, "127.0.0.2", "a@other.example", "bob@example.org"),
        "554 5.7.1 <bob@example.org>: Recipient address rejected: Bob is away\r\n"
    );
    server.wait_log("Bob is away; from=<a@other.example> to=<bob@example.org>");
    server.wait_log("plugin=check_recipient_access");
    // ... and when it runs out, the list goes on after it.
    let r = rcpt(server, "127.0.0.2", "a@other.example", "alice@example.org");
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        rcpt(
            server,
            "127.0.0.2",
            "a@other.example",
            "x@elsewhere.example"
        ),
        "554 5.7.1 Access denied\r\n"
    );
}

#[test]
fn classes_in_postfix_spelling() {
    let (server, _tmp) = start(false);
    classes_decide_in_place(&server);
}

#[test]
fn classes_in_a_toml_table() {
    let (server, _tmp) = start(true);
    classes_decide_in_place(&server);
}

/// `postern check` on `extra` (with the test config around it): its
/// stderr, and whether it succeeded.
fn check(dir: &Path, extra: &str) -> (bool, String) {
    postern_check(&test_config(dir, extra))
}

/// The 1-based line of the config in `dir` that starts with `key`.
fn line_of(dir: &Path, key: &str) -> usize {
    let text = std::fs::read_to_string(dir.join("postern.toml")).unwrap();
    text.lines().position(|l| l.starts_with(key)).unwrap() + 1
}

#[test]
fn mistakes_are_refused_with_the_place_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A listed class without a definition: Postfix's "needs a
    // definition", at the line of smtpd_restriction_classes.
    let (ok, err) = check(dir, "smtpd_restriction_classes = \"from_freemail\"\n");
    assert!(!ok);
    let at = line_of(dir, "smtpd_restriction_classes");
    assert!(
        err.contains(&format!(
            "postern.toml:{at}: smtpd_restriction_classes: restriction class from_freemail \
             needs a definition"
        )),
        "{err}"
    );
    // A key that no list of classes names is still unknown.
    let (ok, err) = check(dir, "from_freemail = \"reject\"\n");
    assert!(!ok);
    let at = line_of(dir, "from_freemail");
    assert!(
        err.contains(&format!(
            "postern.toml:{at}: from_freemail: unknown parameter"
        )),
        "{err}"
    );
    // A loop.
    let (ok, err) = check(
        dir,
        "smtpd_restriction_classes = \"a, b\"\na = \"permit_mynetworks, b\"\nb = \"a\"\n\
         smtpd_recipient_restrictions = \"a, reject_unauth_destination\"\n",
    );
    assert!(!ok);
    assert!(
        err.contains("restriction class a: names itself through a -> b -> a"),
        "{err}"
    );
    // A class with a plugin's name.
    let (ok, err) = check(
        dir,
        "smtpd_restriction_classes = \"permit_mynetworks\"\npermit_mynetworks = \"reject\"\n",
    );
    assert!(!ok);
    assert!(
        err.contains("is the name of the plugin permit_mynetworks"),
        "{err}"
    );
    // An access map answering a name that is neither a class nor a
    // restriction it can evaluate: refused at load, naming the key.
    let senders = write(dir, "senders", "freemail.example  from_freemial\n");
    let (ok, err) = check(
        dir,
        &format!(
            "smtpd_restriction_classes = \"from_freemail\"\nfrom_freemail = \"reject\"\n\
             smtpd_sender_restrictions = \"check_sender_access hash:{senders}\"\n"
        ),
    );
    assert!(!ok);
    assert!(
        err.contains("key \"freemail.example\": \"from_freemial\": \"from_freemial\" is neither"),
        "{err}"
    );
    assert!(
        err.contains("or a restriction class: from_freemail"),
        "{err}"
    );
    // And the same, spelt right, passes.
    let senders = write(dir, "senders", "freemail.example  from_freemail\n");
    let (ok, err) = check(
        dir,
        &format!(
            "smtpd_restriction_classes = \"from_freemail\"\nfrom_freemail = \"reject\"\n\
             smtpd_sender_restrictions = \"check_sender_access hash:{senders}\"\n"
        ),
    );
    assert!(ok, "{err}");
}
