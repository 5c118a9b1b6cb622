//! The log reads right in Debian's `pflogsumm` (DESIGN §6): a real run of
//! the server with deliveries over SMTP and through sendmail's pickup, a
//! bounce and its notice, and two rejects, summarized by the real tool,
//! which must count what happened. Skipped with a message where
//! pflogsumm is not installed (`apt-get install pflogsumm`; CI installs
//! it).

use std::process::Command;

use crate::sendmail_modes::sendmail;
use crate::support::*;

/// The number before `label` in pflogsumm's "Grand Totals".
fn total(report: &str, label: &str) -> u64 {
    report
        .lines()
        .skip_while(|l| !l.starts_with("Grand Totals"))
        .find_map(|l| {
            let l = l.trim();
            let (n, rest) = l.split_once(char::is_whitespace)?;
            (rest.trim() == label).then(|| n.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"))
}

#[test]
fn pflogsumm_counts_what_happened() {
    // Debian installs it in /usr/sbin, which a user's PATH may lack.
    let Some(pflogsumm) = ["pflogsumm", "/usr/sbin/pflogsumm"]
        .into_iter()
        .find(|p| Command::new(p).arg("--help").output().is_ok())
    else {
        eprintln!("pflogsumm: skipped: pflogsumm is not installed");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("aliases"), "broken: \"|exit 69\"\n").unwrap();
    let extra = format!("alias_maps = \"{}/aliases\"\n", dir.display());
    let config = test_config(dir, &extra);
    let server = Server::start_in(dir);

    let mut c = Client::connect(server.smtp);
    let body = "Subject: counted\r\n\r\nx\r\n";
    for rcpts in [
        &["alice@example.org"][..],
        &["alice@example.org", "bob@example.org"],
    ] {
        send_accepted(&mut c, "carol@client.test.example", rcpts, body);
    }
    // A bounce, whose notice goes back to alice.
    send_accepted(&mut c, "alice@example.org", &["broken@example.org"], body);
    // Rejects: an unknown user, and relaying for an untrusted client.
    assert!(
        c.cmd("MAIL FROM:<carol@client.test.example>")
            .starts_with("250")
    );
    let r = c.cmd("RCPT TO:<nobody@example.org>");
    assert!(r.starts_with("550"), "{r}");
    assert!(c.cmd("QUIT").starts_with("221"));
    let mut outside = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(outside.cmd("EHLO outside.example").starts_with("250"));
    assert!(
        outside
            .cmd("MAIL FROM:<x@outside.example>")
            .starts_with("250")
    );
    let r = outside.cmd("RCPT TO:<someone@elsewhere.example>");
    assert!(r.starts_with("554"), "{r}");
    drop(outside);
    // And one through sendmail.
    let out = sendmail(&config, &["bob"], "Subject: cron\n\nx\n", false);
    assert!(out.status.success(), "{out:?}");

    // 3 + 1 delivered to Maildirs, the notice to alice too.
    server.wait_log_count("status=sent", 5);
    server.wait_log_count("removed", 5);
    let log = server.log();
    let path = dir.join("maillog");
    std::fs::write(&path, &log).unwrap();
    let out = Command::new(pflogsumm)
        .args(["--syslog-name=postern", "--problems-first"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let context = format!("{report}\n--- log ---\n{log}");
    assert_eq!(total(&report, "received"), 4, "{context}");
    assert_eq!(total(&report, "delivered"), 5, "{context}");
    assert_eq!(total(&report, "bounced"), 1, "{context}");
    assert_eq!(total_rejected(&report), 2, "{context}");
}

/// "rejected (NN%)": the percentage depends on the other counts.
fn total_rejected(report: &str) -> u64 {
    report
        .lines()
        .skip_while(|l| !l.starts_with("Grand Totals"))
        .find_map(|l| {
            let l = l.trim();
            let (n, rest) = l.split_once(char::is_whitespace)?;
            rest.trim()
                .starts_with("rejected")
                .then(|| n.parse().ok())
                .flatten()
        })
        .unwrap_or(0)
}
