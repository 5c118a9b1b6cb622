//! The local delivery agent: one recipient, through its aliases and
//! `.forward`, into its mailboxes (`store`), files and commands.

use std::collections::VecDeque;
use std::sync::Arc;

use arc_swap::ArcSwap;
use postern_mail::{
    Address, BoxFuture, Deliver, DeliveryStatus, EnhancedCode, Envelope, QueueId, Recipient,
};

use crate::aliases::AliasMap;
use crate::expand::Destination;
use crate::pipe;
use crate::resolve::{Owner, Users};
use crate::settings::LocalSettings;

/// Delivers to users of the users file, into their Maildirs or mbox files
/// or through `mailbox_command` (Postfix's local(8) and virtual(8)). Logs
/// as `postern/local`.
#[derive(Debug)]
pub struct LocalDelivery {
    settings: LocalSettings,
    /// `alias_maps` in force: `settings.aliases` at first, swapped by
    /// [`LocalDelivery::replace_aliases`] on reload. A delivery expands
    /// against one snapshot.
    aliases: ArcSwap<AliasMap>,
    /// The users file in force: `settings.users` at first, swapped by
    /// [`LocalDelivery::replace_users`] on reload. Each lookup reads one
    /// version; the SMTP server's recipient checks ask through
    /// [`LocalDelivery::exists`], so they follow the same swap.
    pub(crate) users: ArcSwap<Users>,
    /// Where mail that an alias or `.forward` sends to another domain is
    /// queued again as a new message (Postfix's local(8) forwards through
    /// cleanup the same way); set once the queue exists.
    pub(crate) forwarder: std::sync::OnceLock<crate::forward::Forwarder>,
}

impl LocalDelivery {
    /// An agent with `settings`.
    pub fn new(settings: LocalSettings) -> LocalDelivery {
        LocalDelivery {
            aliases: ArcSwap::new(Arc::clone(&settings.aliases)),
            users: ArcSwap::from_pointee(Users::new(Arc::clone(&settings.users))),
            settings,
            forwarder: std::sync::OnceLock::new(),
        }
    }

    /// The aliases in force.
    pub fn aliases(&self) -> Arc<AliasMap> {
        self.aliases.load_full()
    }

    /// Swaps in re-read aliases (`postern reload`); deliveries under way
    /// finish with the ones they started with.
    pub fn replace_aliases(&self, aliases: Arc<AliasMap>) {
        self.aliases.store(aliases);
    }

    /// The users file in force.
    pub fn users(&self) -> Arc<postern_auth::UserDb> {
        Arc::clone(&self.users.load().db)
    }

    /// Swaps in a re-read users file (`postern reload`): new users get
    /// mail from the next lookup on, removed ones are unknown (5.1.1).
    /// A delivery under way finishes with the user it looked up.
    pub fn replace_users(&self, users: Arc<postern_auth::UserDb>) {
        self.users.store(Arc::new(Users::new(users)));
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &LocalSettings {
        &self.settings
    }
}

impl Deliver for LocalDelivery {
    fn agent(&self) -> &'static str {
        "local"
    }

    /// Expands aliases of a local-domain recipient, then delivers to each
    /// destination: a Maildir (with `Return-Path:` and `Delivered-To:`
    /// prepended, created on first use), a file or a command (see
    /// `pipe`). Unknown user: bounced 5.1.1. A message that already holds
    /// `Delivered-To:` for a mailbox, or an alias loop: bounced 5.4.6. Any
    /// I/O error: deferred 4.3.0 with the error, so the queue tries again.
    /// Several destinations answer as one: deferred if any deferred, else
    /// bounced if any bounced (the reason of the first), else sent.
    fn deliver<'a>(
        &'a self,
        _id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(async move {
            if let Some(looped) = delivered_to(content, &recipient.address) {
                return looped;
            }
            let destinations = match self.expand(&recipient.address) {
                Ok(d) => d,
                Err(e) => {
                    return DeliveryStatus::Bounced {
                        dsn: EnhancedCode::new(5, 4, 6),
                        detail: e.to_string(),
                    };
                }
            };
            let mut statuses = Vec::with_capacity(destinations.len());
            for destination in destinations {
                statuses.push(
                    self.deliver_one(destination, envelope, recipient, content)
                        .await,
                );
            }
            combine(statuses)
        })
    }
}

impl LocalDelivery {
    /// One destination of an expanded recipient.
    async fn deliver_one(
        &self,
        destination: Destination,
        envelope: &Envelope,
        recipient: &Recipient,
        content: &[u8],
    ) -> DeliveryStatus {
        match destination {
            Destination::Mailbox(address) => {
                if address != recipient.address
                    && let Some(looped) = delivered_to(content, &address)
                {
                    return looped;
                }
                self.deliver_mailbox(envelope, &address, recipient, content)
                    .await
            }
            other => {
                self.deliver_external(other, envelope, recipient, content)
                    .await
            }
        }
    }

    /// A destination that is not a mailbox: a file, a command, or a
    /// refusal.
    async fn deliver_external(
        &self,
        destination: Destination,
        envelope: &Envelope,
        recipient: &Recipient,
        content: &[u8],
    ) -> DeliveryStatus {
        let (settings, envelope, recipient) =
            (self.settings().clone(), envelope.clone(), recipient.clone());
        let content = content.to_vec();
        match destination {
            Destination::File { path, origin } => {
                blocking(move || {
                    pipe::deliver_file(&path, &origin, &settings, &envelope, &recipient, &content)
                })
                .await
            }
            Destination::Command { command, origin } => {
                blocking(move || {
                    pipe::deliver_command(
                        &command, &origin, &settings, &envelope, &recipient, &content, None,
                    )
                })
                .await
            }
            Destination::Refused { reason } => DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 7, 1),
                detail: reason,
            },
            Destination::Deferred { reason } => DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: reason,
            },
            Destination::Mailbox(address) => DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: format!("internal error: mailbox {address} handed to the wrong step"),
            },
        }
    }

    /// Delivers to the mailbox of `address` (see [`LocalDelivery::store`]),
    /// or where its owner's `.forward` says, or answers why not. Each
    /// owner is visited once: a `.forward` naming someone whose
    /// `.forward` names the first again ends there.
    async fn deliver_mailbox(
        &self,
        envelope: &Envelope,
        address: &Address,
        recipient: &Recipient,
        content: &[u8],
    ) -> DeliveryStatus {
        let mut statuses = Vec::new();
        let mut visited: Vec<String> = Vec::new();
        let mut remote = Vec::new();
        let mut work = VecDeque::from([address.clone()]);
        while let Some(address) = work.pop_front() {
            let Some(owner) = self.owner(&address) else {
                if address != recipient.address && !self.is_ours(address.domain()) {
                    // Named by an alias or a .forward: sent on below.
                    if !remote.contains(&address) {
                        remote.push(address);
                    }
                } else {
                    statuses.push(self.nobody(&address));
                }
                continue;
            };
            let key = match &owner {
                Owner::User(user) | Owner::Account(user) => user.full_name().to_lowercase(),
                _ => "postmaster".to_owned(),
            };
            if visited.contains(&key) {
                continue;
            }
            visited.push(key);
            if visited.len() > MAX_FORWARDS {
                return DeliveryStatus::Bounced {
                    dsn: EnhancedCode::new(5, 4, 6),
                    detail: format!("mail forwarding loop for {address}: too many .forward hops"),
                };
            }
            let forward = match &owner {
                Owner::User(user) | Owner::Account(user) => {
                    self.forward_file(user, &address).map(|f| (user, f))
                }
                _ => None,
            };
            let Some((user, file)) = forward else {
                statuses.push(
                    self.store(envelope, &address, &owner, recipient, content)
                        .await,
                );
                continue;
            };
            let destinations = match self.expand_forward(&file, &address, user.uid) {
                Ok(d) => d,
                Err(e) => {
                    statuses.push(DeliveryStatus::Bounced {
                        dsn: EnhancedCode::new(5, 4, 6),
                        detail: format!("{}: {e}", file.display()),
                    });
                    continue;
                }
            };
            let name = user.name.to_lowercase();
            let mut own = destinations.is_empty();
            for destination in destinations {
                match destination {
                    Destination::Mailbox(a)
                        if a.local_base(self.settings.recipient_delimiter)
                            .eq_ignore_ascii_case(&name)
                            && (self.is_local(a.domain()) || a.domain() == address.domain()) =>
                    {
                        own = true;
                    }
                    Destination::Mailbox(a) => {
                        if let Some(looped) = delivered_to(content, &a) {
                            statuses.push(looped);
                        } else {
                            work.push_back(a);
                        }
                    }
                    other => statuses.push(
                        self.deliver_external(other, envelope, recipient, content)
                            .await,
                    ),
                }
            }
            if own {
                statuses.push(
                    self.store(envelope, &address, &owner, recipient, content)
                        .await,
                );
            }
        }
        if !remote.is_empty() {
            statuses.push(
                self.forward_remote(envelope, recipient, remote, content)
                    .await,
            );
        }
        if statuses.is_empty() && visited.len() > 1 {
            // `.forward` files that name each other and no mailbox.
            return DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 4, 6),
                detail: format!("mail forwarding loop for {address}"),
            };
        }
        combine(statuses)
    }

    /// Whether mailboxes at `domain` are ours: a local domain, or one of
    /// the users file.
    fn is_ours(&self, domain: &postern_mail::Domain) -> bool {
        self.is_local(domain) || self.has_users_at(domain)
    }

    /// Why there is no mailbox for `address`.
    fn nobody(&self, address: &Address) -> DeliveryStatus {
        let domain = address.domain();
        if !self.is_ours(domain) {
            // Routed here for a domain without mailboxes here (a
            // transport_maps `local:` entry, say): keep the message
            // queued for the operator rather than bounce it as unknown.
            return DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 4, 0),
                detail: format!(
                    "{domain} has no mailboxes here and is not delivered locally; \
                     the message stays queued"
                ),
            };
        }
        DeliveryStatus::Bounced {
            dsn: EnhancedCode::new(5, 1, 1),
            detail: format!("unknown user: \"{}\"", address.local().to_lowercase()),
        }
    }
}

/// How many owners one recipient's `.forward` files may lead through.
const MAX_FORWARDS: usize = 20;

/// Runs a blocking delivery off the async threads.
pub(crate) async fn blocking<F>(f: F) -> DeliveryStatus
where
    F: FnOnce() -> DeliveryStatus + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| DeliveryStatus::Deferred {
            dsn: EnhancedCode::new(4, 3, 0),
            detail: format!("delivery task failed: {e}"),
        })
}

/// Postfix's `hopcount_limit` (50): a message with this many
/// `Delivered-To:` lines has been forwarded round in circles, whatever
/// the addresses were.
const HOPCOUNT_LIMIT: usize = 50;

/// Bounced 5.4.6 when the header of `content` already has
/// `Delivered-To: address` (Postfix's local(8) loop detection): this
/// message went round and came back. Also when it has
/// [`HOPCOUNT_LIMIT`] of them.
pub(crate) fn delivered_to(content: &[u8], address: &Address) -> Option<DeliveryStatus> {
    let wanted = address.to_string();
    let mut hops = 0;
    for line in content.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if !name.eq_ignore_ascii_case("Delivered-To") {
            continue;
        }
        hops += 1;
        if value.trim().eq_ignore_ascii_case(&wanted) || hops >= HOPCOUNT_LIMIT {
            return Some(DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 4, 6),
                detail: format!("mail forwarding loop for {wanted}"),
            });
        }
    }
    None
}

/// One answer for several destinations.
fn combine(statuses: Vec<DeliveryStatus>) -> DeliveryStatus {
    if let Some(d) = statuses.iter().find(|s| s.word() == "deferred") {
        return d.clone();
    }
    if let Some(b) = statuses.iter().find(|s| s.word() == "bounced") {
        return b.clone();
    }
    match statuses.len() {
        1 => statuses.into_iter().next().unwrap_or_else(nothing),
        0 => nothing(),
        n => DeliveryStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: format!("delivered via alias to {n} destinations"),
        },
    }
}

/// An alias that expands to nothing.
fn nothing() -> DeliveryStatus {
    DeliveryStatus::Bounced {
        dsn: EnhancedCode::new(5, 1, 1),
        detail: "alias expands to no recipient".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    use postern_auth::UserDb;
    use postern_mail::{Address, Domain, ReversePath};

    use super::*;

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

    async fn deliver(
        agent: &LocalDelivery,
        env: &Envelope,
        rcpt: &str,
        body: &[u8],
    ) -> DeliveryStatus {
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
        let mut a = agent(base.path(), "alice@example.org:{PLAIN}x\nbob:{PLAIN}x\n");
        a.settings.home_mailbox = "Mailbox".to_owned();
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
        a.settings.home_mailbox = String::new();
        a.settings.mail_spool_directory = spool.clone();
        a.settings
            .local_domains
            .push(Domain::parse("localhost").unwrap());
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
        let mut a = agent(base.path(), "alice@example.org:{PLAIN}x\nbob:{PLAIN}x\n");
        a.settings.mailbox_command = Some(format!(
            "cat > {}; echo \"$USER $EXTENSION\" >> {}",
            out.display(),
            out.display()
        ));
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
}
