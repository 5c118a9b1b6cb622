//! [`ParseError`]: why a command line was refused, and the reply
//! Postfix's smtpd gives for each refusal; apart from the parser because
//! the path parser (`codec::path`) returns these too.

use postern_mail::{EnhancedCode, Reply};

use super::Verb;

/// Why a command line was refused before any state was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not a verb we know.
    #[error("command not recognized")]
    Unrecognized,
    /// Not UTF-8 (RFC 6531 §3.3: command lines are UTF-8).
    #[error("bad UTF-8 syntax")]
    BadUtf8,
    /// Nothing but white space.
    #[error("bad syntax")]
    Empty,
    /// A known verb with missing or extra arguments.
    #[error("syntax error in {0} command")]
    Syntax(Verb),
    /// MAIL FROM with a path that is not an address (RFC 3463 X.1.7).
    #[error("bad sender address syntax")]
    BadSender,
    /// RCPT TO with a path that is not an address (RFC 3463 X.1.3).
    #[error("bad recipient address syntax")]
    BadRecipient,
    /// `SIZE=` with a value that is not a number.
    #[error("bad message size syntax")]
    BadSize,
    /// `SIZE=` with a number too big to represent.
    #[error("message size exceeds file system imposed limit")]
    SizeOverflow,
    /// `RET=` that is not FULL or HDRS, or given twice (RFC 3461 §4.3).
    #[error("bad RET parameter syntax")]
    BadRet,
    /// `ENVID=` that is not xtext, too long, or given twice (§4.4).
    #[error("bad ENVID parameter syntax")]
    BadEnvid,
    /// `NOTIFY=` that is not NEVER or a list of SUCCESS/FAILURE/DELAY
    /// (§4.1).
    #[error("bad NOTIFY parameter syntax")]
    BadNotify,
    /// `ORCPT=` that is not `type;xtext` (§4.2).
    #[error("bad ORCPT parameter syntax")]
    BadOrcpt,
    /// `BDAT` without a usable size: the chunk's end is unknown, so the
    /// session cannot go on (521, then close).
    #[error("bad BDAT command syntax")]
    BadChunk,
    /// An ESMTP parameter we did not announce.
    #[error("unsupported option {option} in {verb} command")]
    UnsupportedOption {
        /// MAIL or RCPT.
        verb: Verb,
        /// The parameter as the client wrote it.
        option: String,
    },
}

impl ParseError {
    /// The verb the line started with, when it was a known one.
    pub fn verb(&self) -> Option<Verb> {
        match self {
            ParseError::Unrecognized | ParseError::BadUtf8 | ParseError::Empty => None,
            ParseError::Syntax(v) | ParseError::UnsupportedOption { verb: v, .. } => Some(*v),
            ParseError::BadSender
            | ParseError::BadSize
            | ParseError::SizeOverflow
            | ParseError::BadRet
            | ParseError::BadEnvid => Some(Verb::Mail),
            ParseError::BadRecipient | ParseError::BadNotify | ParseError::BadOrcpt => {
                Some(Verb::Rcpt)
            }
            ParseError::BadChunk => Some(Verb::Bdat),
        }
    }

    /// The reply Postfix's smtpd gives for this error.
    pub fn reply(&self) -> Reply {
        let e554 = EnhancedCode::new(5, 5, 4);
        match self {
            ParseError::Unrecognized => Reply::new(
                500,
                EnhancedCode::new(5, 5, 2),
                "Error: command not recognized",
            ),
            ParseError::BadUtf8 => {
                Reply::new(500, EnhancedCode::new(5, 5, 2), "Error: bad UTF-8 syntax")
            }
            ParseError::Empty => Reply::new(500, EnhancedCode::new(5, 5, 2), "Error: bad syntax"),
            // RFC 2034 §3: no enhanced code in a reply to HELO or EHLO.
            ParseError::Syntax(v @ (Verb::Helo | Verb::Ehlo)) => Reply::plain(501, v.usage()),
            // Postfix's etrn_cmd words it so, without an enhanced code.
            ParseError::Syntax(Verb::Etrn) => Reply::plain(500, Verb::Etrn.usage()),
            ParseError::Syntax(v) => Reply::new(501, e554, v.usage()),
            ParseError::BadSender => {
                Reply::new(501, EnhancedCode::new(5, 1, 7), "Bad sender address syntax")
            }
            ParseError::BadRecipient => Reply::new(
                501,
                EnhancedCode::new(5, 1, 3),
                "Bad recipient address syntax",
            ),
            ParseError::BadSize => Reply::new(501, e554, "Bad message size syntax"),
            ParseError::BadRet => Reply::new(501, e554, "Bad RET parameter syntax"),
            ParseError::BadEnvid => Reply::new(501, e554, "Bad ENVID parameter syntax"),
            ParseError::BadNotify => Reply::new(501, e554, "Error: Bad NOTIFY parameter syntax"),
            ParseError::BadOrcpt => Reply::new(501, e554, "Error: Bad ORCPT parameter syntax"),
            // Postfix's smtpd: 521 and hang up, the byte stream is lost.
            ParseError::BadChunk => Reply::new(521, e554, Verb::Bdat.usage()),
            ParseError::SizeOverflow => Reply::new(
                552,
                EnhancedCode::new(5, 3, 4),
                "Message size exceeds file system imposed limit",
            ),
            ParseError::UnsupportedOption { option, .. } => Reply::new(
                555,
                e554,
                format!("Unsupported option: {}", crate::codec::printable(option)),
            ),
        }
    }
}
