//! LIST and LSUB (RFC 3501 §6.3.8-9) with LIST-EXTENDED (RFC 5258),
//! LIST-STATUS (RFC 5819), CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154)
//! attributes, and STATUS (§6.3.10).

use postern_mailbox::{FolderError, Mailbox, Store};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, internal};
use crate::codec::response::mailbox as mailbox_name;
use crate::codec::{ListOptions, StatusItem};
use crate::session::Session;
use crate::session::view::blocking;

/// Whether `name` matches `pattern`: `*` matches anything, `%` anything
/// but the delimiter (RFC 3501 §6.3.8). Iterative, so a pattern of many
/// wildcards cannot blow up.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Dynamic programming over (pattern position, name position).
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                let mut on = false;
                for j in 0..=n.len() {
                    if reach[j] {
                        on = true;
                    }
                    next[j] = on;
                    if *pc == '%' && j < n.len() && n[j] == '.' {
                        on = false;
                    }
                }
            }
            c => {
                for j in 0..n.len() {
                    if reach[j] && n[j] == *c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[n.len()]
}

pub(crate) async fn list<S>(
    s: &mut Session<'_, S>,
    reference: &str,
    patterns: &[String],
    lsub: bool,
    options: &ListOptions,
) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let verb = if lsub { "LSUB" } else { "LIST" };
    let done = Done::ok(format!("{} completed.", if lsub { "Lsub" } else { "List" }));
    if patterns.iter().all(String::is_empty) && !lsub {
        // RFC 3501 §6.3.8: the delimiter and the root.
        s.io.send(b"* LIST (\\Noselect) \".\" \"\"\r\n");
        return done;
    }
    let Some((_, store)) = &s.user else {
        return Done::bad("Please log in first.");
    };
    let store = store.clone();
    let listed = {
        let store = store.clone();
        blocking(move || Ok((store.list()?, store.subscriptions()))).await
    };
    let (names, subscribed) = match listed {
        Ok(pair) => pair,
        Err(e) => return internal(s, "list", &e),
    };
    let show_subscribed = options.subscribed || options.return_subscribed;
    let mut out = Vec::new();
    for name in &names {
        let matched = patterns.iter().any(|pattern| {
            let full = format!("{reference}{pattern}");
            matches(&full, name)
                || Store::is_inbox(name) && matches(&full.to_ascii_uppercase(), "INBOX")
        });
        let is_subscribed = subscribed.iter().any(|s| s == name);
        let special = Store::special_use(name);
        if !matched
            || ((lsub || options.subscribed) && !is_subscribed)
            || (options.special_use_only && special.is_none())
        {
            continue;
        }
        let prefix = format!("{name}.");
        let children = names.iter().any(|n| n.starts_with(&prefix));
        let mut attrs = vec![if children {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        }];
        if show_subscribed && is_subscribed {
            attrs.push("\\Subscribed");
        }
        attrs.extend(special);
        out.extend_from_slice(format!("* {verb} ({}) \".\" ", attrs.join(" ")).as_bytes());
        mailbox_name(&mut out, name);
        out.extend_from_slice(b"\r\n");
        if let Some(items) = &options.status {
            // RFC 5819: a STATUS after the LIST line of each mailbox.
            match store.mailbox(name) {
                Ok(mailbox) => match status_line(mailbox, name, items).await {
                    Ok(line) => out.extend_from_slice(&line),
                    Err(e) => return internal(s, "list status", &e),
                },
                Err(_) => continue,
            }
        }
    }
    s.io.send(&out);
    done
}

/// `* STATUS name (...)` for `mailbox`.
async fn status_line(
    mailbox: Mailbox,
    name: &str,
    items: &[StatusItem],
) -> std::io::Result<Vec<u8>> {
    let snapshot = blocking(move || mailbox.peek()).await?;
    let mut fields = Vec::new();
    for item in items {
        let (key, value) = match item {
            StatusItem::Messages => ("MESSAGES", snapshot.messages.len() as u64),
            StatusItem::Recent => (
                "RECENT",
                snapshot.messages.iter().filter(|m| m.recent).count() as u64,
            ),
            StatusItem::UidNext => ("UIDNEXT", u64::from(snapshot.next)),
            StatusItem::UidValidity => ("UIDVALIDITY", u64::from(snapshot.validity)),
            StatusItem::Unseen => (
                "UNSEEN",
                snapshot
                    .messages
                    .iter()
                    .filter(|m| !m.flags.has("\\Seen"))
                    .count() as u64,
            ),
            StatusItem::Size => ("SIZE", snapshot.messages.iter().map(|m| m.size).sum()),
            StatusItem::HighestModseq => ("HIGHESTMODSEQ", snapshot.highest_modseq),
        };
        fields.push(format!("{key} {value}"));
    }
    let mut out = b"* STATUS ".to_vec();
    mailbox_name(&mut out, name);
    out.extend_from_slice(format!(" ({})\r\n", fields.join(" ")).as_bytes());
    Ok(out)
}

pub(crate) async fn status<S>(s: &mut Session<'_, S>, name: &str, items: &[StatusItem]) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some((_, store)) = &s.user else {
        return Done::bad("Please log in first.");
    };
    let mailbox = match store.mailbox(name) {
        Ok(m) => m,
        Err(FolderError::NotFound(_)) => {
            return Done::no(format!("[NONEXISTENT] Mailbox doesn't exist: {name}"));
        }
        Err(e) => return Done::no(e.to_string()),
    };
    match status_line(mailbox, name, items).await {
        Ok(line) => {
            s.io.send(&line);
            Done::ok("Status completed.")
        }
        Err(e) => internal(s, "status", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches("*", "Work.Projects"));
        assert!(matches("%", "Work") && !matches("%", "Work.Projects"));
        assert!(matches("Work.%", "Work.Projects") && !matches("Work.%", "Work"));
        assert!(matches("W*s", "Work.Projects") && !matches("W%s", "Work.Projects"));
        assert!(matches(&"*%".repeat(500), ""));
        assert!(matches(&"*".repeat(1000), &"a.".repeat(100)));
    }
}
