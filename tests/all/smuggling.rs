//! SMTP smuggling (CVE-2023-51764 and kin): only `<CRLF>.<CRLF>` ends DATA,
//! for trusted and untrusted clients alike, so a second message can never
//! be hidden inside the first.

use crate::support::*;

/// The end-of-data look-alikes that other servers have accepted: the
/// bare-LF and bare-CR forms of CVE-2023-51764 and its kin, and the NUL
/// and short forms of the public checkers' lists (smtp_smuggling_checker).
const VARIANTS: &[(&str, &[u8])] = &[
    ("lf-dot-lf", b"\n.\n"),
    ("lf-dot-crlf", b"\n.\r\n"),
    ("crlf-dot-lf", b"\r\n.\n"),
    ("cr-dot-cr", b"\r.\r"),
    ("cr-dot-crlf", b"\r.\r\n"),
    ("crlf-dot-cr", b"\r\n.\r"),
    ("cr-dot-lf", b"\r.\n"),
    ("lf-dot-cr", b"\n.\r"),
    ("crlf-dot-cr-crlf", b"\r\n.\r\r\n"),
    ("crlf-nul-dot-crlf", b"\r\n\0.\r\n"),
    ("crlf-dot-nul-crlf", b"\r\n.\0\r\n"),
    ("nul-lf-dot-lf", b"\0\n.\n"),
    ("crlf-nul-dot-cr", b"\r\n\0.\r"),
    ("crlf-nul-dot-lf", b"\r\n\0.\n"),
    ("lf-lf-dot-crlf", b"\n\n.\r\n"),
    // The dot and the next command on one line: a dot-stuffed line.
    ("crlf-dot-command", b"\r\n."),
];

/// Whether `bytes` holds a CR or an LF that is not part of a CRLF.
fn bare_line_end(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, b)| match b {
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        _ => false,
    })
}

/// Sends every variant with a second transaction behind it, from
/// `source`, and checks that none smuggles: at most one message per
/// DATA, the smuggled text never a message of its own. Normalised (the
/// default), each message is taken whole, once; with
/// `smtpd_forbid_bare_newline = "reject"` (`rejecting`), one with a bare
/// CR or LF is refused with 550 5.5.2 and nothing of it delivered.
fn smuggle(server: &Server, source: &str, rcpt: &str, user: &str, rejecting: bool) {
    let mut taken = 0;
    for (name, end) in VARIANTS {
        let mut c = Client::connect_from(server.smtp, source);
        assert!(c.cmd("EHLO client.test.example").starts_with("250"));
        assert!(
            c.cmd("MAIL FROM:<sender@client.test.example>")
                .starts_with("250")
        );
        assert!(
            c.cmd(&format!("RCPT TO:<{rcpt}>")).starts_with("250"),
            "{name}"
        );
        assert!(c.cmd("DATA").starts_with("354"));
        let mut data = format!("Subject: variant {name}\r\n\r\nfirst part").into_bytes();
        data.extend_from_slice(end);
        data.extend_from_slice(
            format!("MAIL FROM:<smuggler@evil.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\nSubject: smuggled {name}\r\n\r\nsmuggled body\r\n.\r\n")
                .as_bytes(),
        );
        c.send(&data);
        c.send(b"QUIT\r\n");
        let transcript = c.rest();
        let queued = transcript.matches("queued as").count();
        assert!(
            queued <= 1,
            "{source} {name}: two messages from one DATA:\n{transcript}"
        );
        let refused = rejecting && bare_line_end(&data);
        if refused {
            assert_eq!(queued, 0, "{source} {name}:\n{transcript}");
            assert!(
                transcript.contains("550 5.5.2"),
                "{source} {name}:\n{transcript}"
            );
        } else {
            assert_eq!(queued, 1, "{source} {name}:\n{transcript}");
            taken += 1;
        }
        let delivered = wait_messages(&server.new_dir(user), taken);
        let texts: Vec<String> = delivered
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        let subject = format!("Subject: variant {name}\r\n");
        let mine: Vec<&String> = texts.iter().filter(|m| m.contains(&subject)).collect();
        assert_eq!(mine.len(), usize::from(!refused), "{name}");
        if let Some(message) = mine.first() {
            assert!(
                message.contains("smuggled body"),
                "{name}: the smuggled text stays inside the first message"
            );
        }
        // No message has the smuggled subject among its own headers.
        let smuggled = format!("Subject: smuggled {name}\r\n");
        for text in &texts {
            let headers = text.split("\r\n\r\n").next().unwrap_or_default();
            assert!(
                !format!("{headers}\r\n").contains(&smuggled),
                "{name}: smuggled as a message:\n{text}"
            );
        }
    }
}

#[test]
fn smuggling_variants_from_a_trusted_client() {
    let (server, _tmp) = Server::start("");
    smuggle(&server, "127.0.0.1", "alice@example.org", "alice", false);
}

#[test]
fn smuggling_variants_from_an_untrusted_client() {
    let (server, _tmp) = Server::start("");
    smuggle(&server, "127.0.0.2", "bob@example.org", "bob", false);
}

#[test]
fn smuggling_variants_with_bare_newlines_rejected() {
    let (server, _tmp) = Server::start("smtpd_forbid_bare_newline = \"reject\"");
    smuggle(&server, "127.0.0.1", "alice@example.org", "alice", true);
    smuggle(&server, "127.0.0.2", "bob@example.org", "bob", true);
}

#[test]
fn bare_newlines_rejected_when_configured() {
    let (server, _tmp) = Server::start("smtpd_forbid_bare_newline = \"reject\"");
    let mut c = Client::connect_from(server.smtp, "127.0.0.2");
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<sender@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: bare\r\n\r\nline\n.\nMAIL FROM:<x@evil.example>\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("550 5.5.2"), "{r}");
    // The session goes on.
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(messages(&server.new_dir("alice")).is_empty());
}
