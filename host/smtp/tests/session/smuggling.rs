//! SMTP smuggling: a client sends a look-alike end of data followed by a
//! second transaction. Every variant must yield exactly one message that
//! carries the smuggled text as content (DESIGN §8).

use postern_smtp::BareNewline;

use crate::harness::{Server, codes, relay_rule, settings};

const VARIANTS: [&[u8]; 11] = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r.\n",
    b"\n.\r",
    b"\r\n.\r\r\n",
    b"\r\n\0.\r\n",
    b"\r\n.\0\r\n",
];

const SMUGGLED: &[u8] = b"MAIL FROM:<evil@origin.test>\r\n\
    RCPT TO:<bob@virt.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled text\r\n";

/// One session that pipelines a whole transaction with `variant` hidden in
/// its content, written in pieces of `chunk` bytes.
async fn smuggle(variant: &[u8], chunk: usize) {
    let server = Server::start(settings(), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    let wire = [
        b"MAIL FROM:<s@origin.test>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n" as &[u8],
        b"Subject: legit\r\n\r\nlegit",
        variant,
        SMUGGLED,
        b"\r\n.\r\nQUIT\r\n",
    ]
    .concat();
    for piece in wire.chunks(chunk) {
        c.send(piece).await;
    }
    let replies = c.rest().await;
    assert_eq!(
        codes(&replies),
        ["250", "250", "354", "250", "221"],
        "{variant:?}: {replies}"
    );
    let done = server.done().await;
    let m = done.message();
    let content = String::from_utf8_lossy(&m.content);
    assert!(
        content.contains("MAIL FROM:<evil@origin.test>"),
        "{variant:?}"
    );
    assert!(content.contains("smuggled text"), "{variant:?}");
    assert_eq!(m.envelope.recipients.len(), 1);
    assert_eq!(
        m.envelope.recipients[0].address.to_string(),
        "alice@local.test"
    );
}

#[tokio::test]
async fn every_variant_in_one_write() {
    for v in VARIANTS {
        smuggle(v, usize::MAX).await;
    }
}

#[tokio::test]
async fn every_variant_in_small_writes() {
    for v in VARIANTS {
        smuggle(v, 3).await;
    }
}

#[tokio::test]
async fn reject_mode_refuses_bare_newlines_after_the_real_end() {
    let mut s = settings();
    s.bare_newline = BareNewline::Reject;
    let server = Server::start(s, relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    c.send("MAIL FROM:<s@origin.test>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        c.reply().await;
    }
    c.send("a\n.\nMAIL FROM:<evil@origin.test>\r\n.\r\n").await;
    assert_eq!(
        c.reply().await,
        "550 5.5.2 Error: bare <CR> or <LF> received\r\n"
    );
    c.send("NOOP\n").await;
    assert_eq!(c.reply().await, "500 5.5.2 Error: bare <LF> received\r\n");
    assert_eq!(codes(&c.cmd("QUIT").await), ["221"]);
    let done = server.done().await;
    assert!(done.messages.is_empty());
    done.logged(
        "ABC00001: reject: END-OF-MESSAGE from unknown[127.0.0.1]: 550 5.5.2 Error: bare <CR> \
         or <LF> received; from=<s@origin.test> to=<alice@local.test> proto=ESMTP \
         helo=<client.test>",
    );
}
