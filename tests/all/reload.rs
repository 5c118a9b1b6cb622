//! `postern reload`: a new policy without dropping a connection, and a
//! broken one refused with the running policy kept.

use std::process::Command;

use crate::support::*;

fn reload(config: &std::path::Path) {
    let out = Command::new(POSTERN)
        .arg("reload")
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reload_swaps_the_policy_and_keeps_connections() {
    let (server, tmp) = Server::start("");
    let config = tmp.path().join("postern.toml");
    let mut open = Client::connect(server.smtp);
    assert!(open.cmd("EHLO before.test.example").starts_with("250"));

    // Refuse every recipient from now on.
    std::fs::write(
        &config,
        config_text(tmp.path(), "smtpd_recipient_restrictions = [\"reject\"]"),
    )
    .unwrap();
    reload(&config);
    server.wait_log("reload -- version");
    let mut c = Client::connect(server.smtp);
    assert!(c.cmd("EHLO after.test.example").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<s@client.test.example>")
            .starts_with("250")
    );
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("554 5.7.1"), "{r}");
    // The connection opened before the reload is still served.
    assert!(open.cmd("NOOP").starts_with("250"));

    // A broken plugin: the reload is refused and the last policy stays.
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(plugins.join("permit_mynetworks.wasm"), b"\0asm garbage").unwrap();
    let extra = format!("plugin_directory = \"{}\"", plugins.display());
    std::fs::write(&config, config_text(tmp.path(), &extra)).unwrap();
    reload(&config);
    let log = server.wait_log("reload failed, keeping the running policy");
    assert!(log.contains("permit_mynetworks.wasm"), "{log}");
    let r = c.cmd("RCPT TO:<alice@example.org>");
    assert!(r.starts_with("554 5.7.1"), "{r}");
}
