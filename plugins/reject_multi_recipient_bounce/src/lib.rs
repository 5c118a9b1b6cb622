//! `reject_multi_recipient_bounce`: Postfix's restriction of the same name
//! as a Postern plugin.
//!
//! Rejects mail from the null sender `<>` (a bounce) with more than one
//! recipient: a delivery status notification has one recipient (RFC 3464),
//! so a multi-recipient bounce is backscatter or abuse. As in Postfix, at
//! RCPT TO it rejects the second and later recipients (one was accepted
//! already); at DATA and the end of data, a transaction with more than one
//! recipient. Before MAIL FROM it has no opinion. The reply is Postfix's:
//! `550 5.5.3 <>: Sender address rejected: Multi-recipient bounce`, the
//! code `multi_recipient_bounce_reject_code` (`code = "..."`).

use postern_plugin_sdk::code::Code;
use postern_plugin_sdk::{Guest, Request, Stage, Verdict, export_plugin, reject};

/// Postfix's `multi_recipient_bounce_reject_code`.
const MULTI_RECIPIENT_BOUNCE_REJECT_CODE: u16 = 550;

/// The reply code: Postfix's default, or the entry's `code`.
static CODE: Code = Code::new(MULTI_RECIPIENT_BOUNCE_REJECT_CODE);

/// The plugin.
struct RejectMultiRecipientBounce;

impl Guest for RejectMultiRecipientBounce {
    fn init(args: Vec<(String, String)>) -> Result<(), String> {
        postern_plugin_sdk::host::reuse_instances();
        CODE.init(args)
    }

    fn check(req: Request) -> Verdict {
        // The recipients accepted before this request; at RCPT the one
        // being asked about comes on top.
        let limit = match req.stage {
            Stage::Client | Stage::Helo | Stage::Sender => return Verdict::Dunno,
            Stage::Relay | Stage::Recipient => 0,
            Stage::Data | Stage::EndOfData => 1,
        };
        if !req.sender.is_empty() || req.recipient_count <= limit {
            return Verdict::Dunno;
        }
        let code = CODE.get();
        let enhanced = if code >= 500 { "5.5.3" } else { "4.5.3" };
        reject(
            code,
            enhanced,
            "<>: Sender address rejected: Multi-recipient bounce",
        )
    }
}

export_plugin!(RejectMultiRecipientBounce);
