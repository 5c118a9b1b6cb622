//! Postern's IMAP4rev1 server (RFC 3501) over the Maildir store that
//! local delivery writes: Dovecot's `imap` and `imap-login`.
//!
//! Offered with IMAP4rev1: STARTTLS and imaps (RFC 8314), SASL-IR
//! (RFC 4959) with AUTHENTICATE PLAIN, LITERAL+ (RFC 7888), IDLE
//! (RFC 2177), UIDPLUS (RFC 4315), MOVE (RFC 6851), NAMESPACE (RFC 2342),
//! UNSELECT (RFC 3691), ENABLE (RFC 5161), ID (RFC 2971), SPECIAL-USE
//! (RFC 6154, Drafts/Sent/Trash/Junk made for a new user). Replies follow
//! Dovecot's wording so that clients and operators see what they know.
//!
//! CONDSTORE and QRESYNC (RFC 7162) too: MODSEQs kept durably beside the
//! Maildir by the store, HIGHESTMODSEQ, CHANGEDSINCE, UNCHANGEDSINCE with
//! MODIFIED, SEARCH MODSEQ; SELECT's QRESYNC catch-up, VANISHED. SEARCH
//! matches decoded text (RFC 2047 encoded-words, quoted-printable and
//! base64 text parts) as well as the stored octets.
//!
//! Not here (yet): MODSEQs of expunges (VANISHED (EARLIER) names every
//! known UID that is gone, as RFC 7162 §3.2.5.1 allows), MODSEQs of
//! metadata other than flags (annotations), QRESYNC's use of the
//! sequence match data.
//!
//! # Layout
//! - [`codec`]: sans-IO framing (literals and their caps), commands,
//!   sequence sets, search keys, fetch items, dates, response strings.
//! - [`mime`]: part tree, sections, ENVELOPE and BODYSTRUCTURE.
//! - [`session`]: the states (not authenticated, authenticated, selected)
//!   over a socket, TLS, and the view of the selected mailbox; the
//!   [`Handover`] of a login to a process of the mailbox's owner
//!   (Dovecot's imap-login to imap), which runs [`serve_handed`].
//! - [`command`]: one file per command group, as `session` dispatches them.

pub mod codec;
pub mod command;
pub mod mime;
pub mod session;

pub use session::handover::{Handed, Handover};
pub use session::{Connection, Mailboxes, Settings, serve, serve_handed};
