//! SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), sans-IO:
//! the protocol (SMTP AUTH, RFC 4954; IMAP AUTHENTICATE) hands over the
//! mechanism name, the initial response if the client sent one (SASL-IR),
//! and each base64 line; an [`Exchange`] answers with a challenge to send
//! or the [`Credentials`] to check. No I/O and no password check here.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The mechanisms offered, in the order EHLO lists them.
pub const MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// RFC 4616: `authzid NUL authcid NUL passwd` in one response.
    Plain,
    /// The de-facto LOGIN: user name, then password, each asked for.
    Login,
}

impl Mechanism {
    /// The mechanism called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }

    /// The name as EHLO announces it and logs show it (`sasl_method=`).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the client claims. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authorization identity, if the client asked for one different
    /// from `username` (PLAIN only). Postern refuses proxy logins.
    pub authzid: Option<String>,
    /// The login name.
    pub username: String,
    /// The password, in clear.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why an exchange ended without credentials. The SMTP session maps each
/// to its RFC 4954 reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The client sent `*` (RFC 4954 §4): `501 5.7.0`.
    #[error("authentication aborted")]
    Cancelled,
    /// A response that is not base64: `501 5.5.2`.
    #[error("cannot decode response")]
    BadBase64,
    /// A decoded response of the wrong shape (PLAIN without two NULs, a
    /// name that is not UTF-8): `535 5.7.8`.
    #[error("malformed response")]
    Malformed,
}

/// One authentication exchange in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    mechanism: Mechanism,
    /// LOGIN: the user name once given.
    username: Option<String>,
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge, base64 encoded already (`334 <text>`).
    Challenge(String),
    /// The client's claim is complete: check it.
    Done(Credentials),
}

impl Exchange {
    /// Starts `mechanism`, with the SASL-IR initial response if the AUTH
    /// command carried one (`=` is an empty one).
    pub fn start(
        mechanism: Mechanism,
        initial: Option<&str>,
    ) -> Result<(Exchange, Step), SaslError> {
        let mut exchange = Exchange {
            mechanism,
            username: None,
        };
        let step = match (mechanism, initial) {
            // An empty challenge: "send your response".
            (Mechanism::Plain, None) => Step::Challenge(String::new()),
            (Mechanism::Login, None) => Step::Challenge(BASE64.encode("Username:")),
            (_, Some(response)) => exchange.step(response)?,
        };
        Ok((exchange, step))
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feeds one client response line (base64, `*` to cancel).
    pub fn step(&mut self, line: &str) -> Result<Step, SaslError> {
        let line = line.trim();
        if line == "*" {
            return Err(SaslError::Cancelled);
        }
        let decoded = if line == "=" {
            Vec::new()
        } else {
            BASE64.decode(line).map_err(|_| SaslError::BadBase64)?
        };
        match self.mechanism {
            Mechanism::Plain => plain(&decoded).map(Step::Done),
            Mechanism::Login => {
                let text = String::from_utf8(decoded).map_err(|_| SaslError::Malformed)?;
                match self.username.take() {
                    None => {
                        if text.is_empty() || text.contains('\0') {
                            return Err(SaslError::Malformed);
                        }
                        self.username = Some(text);
                        Ok(Step::Challenge(BASE64.encode("Password:")))
                    }
                    Some(username) => Ok(Step::Done(Credentials {
                        authzid: None,
                        username,
                        password: text,
                    })),
                }
            }
        }
    }
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, all UTF-8.
fn plain(decoded: &[u8]) -> Result<Credentials, SaslError> {
    let text = std::str::from_utf8(decoded).map_err(|_| SaslError::Malformed)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if username.is_empty() {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        authzid: (!authzid.is_empty() && authzid != username).then(|| authzid.to_owned()),
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        BASE64.encode(s)
    }

    fn creds(user: &str, pass: &str) -> Credentials {
        Credentials {
            authzid: None,
            username: user.to_owned(),
            password: pass.to_owned(),
        }
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        let ir = b64("\0alice@example.org\0secret");
        let (_, step) = Exchange::start(Mechanism::Plain, Some(&ir)).unwrap();
        assert_eq!(step, Step::Done(creds("alice@example.org", "secret")));

        let (mut ex, step) = Exchange::start(Mechanism::Plain, None).unwrap();
        assert_eq!(step, Step::Challenge(String::new()));
        let same = b64("alice@example.org\0alice@example.org\0secret");
        assert_eq!(
            ex.step(&same).unwrap(),
            Step::Done(creds("alice@example.org", "secret"))
        );
        let proxy = ex.step(&b64("bob\0alice\0pw")).unwrap();
        let Step::Done(c) = proxy else { panic!() };
        assert_eq!(c.authzid.as_deref(), Some("bob"));
    }

    #[test]
    fn login_asks_name_then_password() {
        let (mut ex, step) = Exchange::start(Mechanism::Login, None).unwrap();
        assert_eq!(step, Step::Challenge("VXNlcm5hbWU6".to_owned()));
        assert_eq!(
            ex.step(&b64("alice")).unwrap(),
            Step::Challenge("UGFzc3dvcmQ6".to_owned())
        );
        assert_eq!(
            ex.step(&b64("pw")).unwrap(),
            Step::Done(creds("alice", "pw"))
        );
        // SASL-IR carries the user name.
        let (mut ex, step) = Exchange::start(Mechanism::Login, Some(&b64("bob"))).unwrap();
        assert_eq!(step, Step::Challenge("UGFzc3dvcmQ6".to_owned()));
        assert_eq!(ex.step("=").unwrap(), Step::Done(creds("bob", "")));
    }

    #[test]
    fn bad_input() {
        let (mut ex, _) = Exchange::start(Mechanism::Plain, None).unwrap();
        assert_eq!(ex.step("*"), Err(SaslError::Cancelled));
        assert_eq!(ex.step("!!!"), Err(SaslError::BadBase64));
        assert_eq!(ex.step(&b64("no nuls")), Err(SaslError::Malformed));
        assert_eq!(ex.step(&b64("\0\0pw")), Err(SaslError::Malformed));
        assert_eq!(ex.step(&b64("a\0b\0c\0d")), Err(SaslError::Malformed));
        assert_eq!(ex.step("="), Err(SaslError::Malformed));
        assert_eq!(Mechanism::from_name("login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    }

    #[test]
    fn debug_hides_the_password() {
        let c = creds("alice", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
