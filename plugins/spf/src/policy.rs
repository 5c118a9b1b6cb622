//! What the results mean for the SMTP session, as postfix-policyd-spf-python
//! decides it: the checks a request calls for and their per-transaction
//! cache, then a refusal (550 5.7.23 / 5.7.24, 451 4.7.24) or the header
//! fields a message gets otherwise (Received-SPF, RFC 7208 §9.1, and/or
//! Authentication-Results, RFC 8601), as the entry's arguments
//! ([`crate::config`]) say.

use std::net::IpAddr;
use std::sync::Mutex;

use postern_plugin_sdk::resolver::Resolver;
use postern_plugin_sdk::{Request, Stage, Verdict, reject};

use crate::config::{Config, Headers, Reject};
use crate::eval::{self, Outcome, Query, SpfResult};

/// What the checks look at in a request: the WIT request record
/// narrowed to the SMTP facts SPF uses.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    /// The stage being evaluated.
    pub stage: Stage,
    /// The client address as text.
    pub client_address: &'a str,
    /// The HELO/EHLO name.
    pub helo_name: &'a str,
    /// The MAIL FROM address, empty for the null sender.
    pub sender: &'a str,
    /// The RCPT TO address, at the relay and recipient stages.
    pub recipient: &'a str,
    /// The transaction's token (`request.instance`): the cache's results
    /// are this transaction's only.
    pub instance: &'a str,
}

impl<'a> From<&'a Request> for Session<'a> {
    fn from(r: &'a Request) -> Session<'a> {
        Session {
            stage: r.stage,
            client_address: &r.client_address,
            helo_name: &r.helo_name,
            sender: &r.sender,
            recipient: &r.recipient,
            instance: &r.instance,
        }
    }
}

/// What a transaction's checks found: kept for its later recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    /// The HELO identity's, if checked.
    pub helo: Option<Outcome>,
    /// The MAIL FROM identity's (for the null sender, the HELO's, RFC
    /// 7208 §2.4), if checked.
    pub mail_from: Option<Outcome>,
}

/// The results of one transaction, by (transaction, client, HELO,
/// sender): an instance serves many transactions in turn
/// (`host.reuse-instances`), so the transaction's token is part of the
/// key, and a new MAIL FROM starts afresh anyway.
pub type Cache = Mutex<Option<(String, Results)>>;

/// The checks of §2.3 and §2.4 for `req`: the HELO identity, then MAIL
/// FROM (`postmaster@HELO` for the null sender).
pub fn results<R: Resolver>(
    config: &Config,
    dns: &R,
    req: &Session<'_>,
    ip: IpAddr,
    now: u64,
) -> Results {
    let helo_domain = req.helo_name.trim();
    let query = |sender: &str| {
        eval::check_host(
            dns,
            &Query {
                ip,
                sender,
                helo: helo_domain,
                receiver: &config.receiver,
                now,
                void_limit: config.void_limit,
            },
        )
    };
    // In the HELO list (smtpd_helo_restrictions) an empty sender may
    // only mean "not yet": the HELO identity alone is checked there.
    let helo_stage = req.stage == Stage::Helo;
    let null = req.sender.is_empty() && !helo_stage;
    let helo_sender = format!("postmaster@{helo_domain}");
    let helo = (config.helo_reject != Reject::NoCheck || null).then(|| query(&helo_sender));
    let mail_from = match config.mail_from_reject {
        _ if helo_stage => None,
        Reject::NoCheck => None,
        _ if null => helo.clone(),
        _ => Some(query(req.sender)),
    };
    Results { helo, mail_from }
}

/// The verdict for `req`, from its transaction's results.
pub fn check<R: Resolver>(
    config: &Config,
    dns: &R,
    req: &Session<'_>,
    cache: &Cache,
    now: u64,
) -> Verdict {
    match evaluate(config, dns, req, cache, now) {
        Some(results) => decide(config, req, &results),
        None => Verdict::Dunno,
    }
}

/// The transaction's results for `req`, from the cache or checked now;
/// none when there is nothing to check.
pub fn evaluate<R: Resolver>(
    config: &Config,
    dns: &R,
    req: &Session<'_>,
    cache: &Cache,
    now: u64,
) -> Option<Results> {
    // No identity to check before MAIL FROM (a client-stage entry), and
    // an address that does not parse is not ours to judge.
    if req.stage == Stage::Client || (req.sender.is_empty() && req.helo_name.is_empty()) {
        return None;
    }
    let ip = req.client_address.parse::<IpAddr>().ok()?;
    if config
        .skip
        .iter()
        .any(|(net, bits)| eval::contains(*net, *bits, ip))
    {
        return None;
    }
    let key = format!(
        "{} {:?} {ip} {} {}",
        req.instance,
        req.stage == Stage::Helo,
        req.helo_name,
        req.sender
    );
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    let results = match guard.as_ref() {
        Some((k, r)) if *k == key => r.clone(),
        _ => {
            let r = results(config, dns, req, ip, now);
            *guard = Some((key, r.clone()));
            r
        }
    };
    drop(guard);
    Some(results)
}

/// The verdict the results call for: a refusal, or the first of the
/// header fields (a verdict carries one).
pub fn decide(config: &Config, req: &Session<'_>, results: &Results) -> Verdict {
    match answer(config, req, results) {
        Answer::Refuse(verdict) => verdict,
        Answer::Accept(fields) => fields
            .into_iter()
            .next()
            .map_or(Verdict::Dunno, Verdict::Prepend),
    }
}

/// What the results call for.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A refusal (reject or defer).
    Refuse(Verdict),
    /// No refusal: the header lines (`Name: value`) the message gets, in
    /// `Header_Type`'s order (Received-SPF first); none for `None` or when
    /// no identity was checked.
    Accept(Vec<String>),
}

/// Whether the results refuse the request, and the header fields
/// otherwise.
pub fn answer(config: &Config, req: &Session<'_>, results: &Results) -> Answer {
    let null = req.sender.is_empty() && req.stage != Stage::Helo;
    if let Some(helo) = &results.helo
        && config.helo_reject.refuses(helo.result, null)
    {
        return Answer::Refuse(refuse(req, helo, "helo", false, &config.receiver));
    }
    let Some(mail_from) = &results.mail_from else {
        return Answer::Accept(Vec::new());
    };
    let identity = if null { "helo" } else { "mailfrom" };
    if config.mail_from_reject.refuses(mail_from.result, null)
        || (mail_from.result == SpfResult::PermError && config.permerror_reject)
    {
        return Answer::Refuse(refuse(req, mail_from, identity, !null, &config.receiver));
    }
    if mail_from.result == SpfResult::TempError && config.temperror_defer {
        let problem = mail_from.problem.as_deref().unwrap_or("DNS error");
        return Answer::Refuse(postern_plugin_sdk::defer(
            451,
            "4.7.24",
            format!("{}SPF temporary error: {problem}", prefix(req)),
        ));
    }
    let sender = if null { None } else { Some(req.sender) };
    let mut fields = Vec::new();
    if matches!(config.headers, Headers::ReceivedSpf | Headers::Both) {
        fields.push(crate::header::received_spf(
            mail_from,
            identity,
            req,
            sender,
            &config.receiver,
        ));
    }
    if config.headers.authentication_results() {
        fields.push(crate::header::authentication_results(
            mail_from,
            null,
            req,
            &config.receiver,
        ));
    }
    Answer::Accept(fields)
}

/// The start of a refusal's text, as Postfix words a policy refusal at
/// each stage.
fn prefix(req: &Session<'_>) -> String {
    match req.stage {
        Stage::Relay | Stage::Recipient => {
            format!("<{}>: Recipient address rejected: ", req.recipient)
        }
        Stage::Sender => format!("<{}>: Sender address rejected: ", req.sender),
        Stage::Helo => format!("<{}>: Helo command rejected: ", req.helo_name),
        _ => String::new(),
    }
}

/// 550 5.7.23 for a fail (RFC 7372 §3.2), with the domain's explanation
/// or the default one; 5.7.24 for other refused results.
fn refuse(
    req: &Session<'_>,
    outcome: &Outcome,
    identity: &str,
    mail_from: bool,
    receiver: &str,
) -> Verdict {
    let prefix = prefix(req);
    let id = if mail_from {
        req.sender.to_owned()
    } else {
        format!("postmaster@{}", req.helo_name)
    };
    let scope = if identity == "helo" { "helo" } else { "mfrom" };
    match (outcome.result, &outcome.explanation) {
        (SpfResult::Fail, Some(exp)) => reject(
            550,
            "5.7.23",
            format!("{prefix}Message rejected due to: {exp}"),
        ),
        (SpfResult::Fail | SpfResult::SoftFail, _) => reject(
            550,
            "5.7.23",
            format!(
                "{prefix}Message rejected due to: SPF {} - not authorized. Please see \
                 http://www.open-spf.org/Why?s={scope};id={id};ip={};r={receiver}",
                outcome.result.as_str(),
                req.client_address
            ),
        ),
        (result, _) => {
            let problem = outcome
                .problem
                .as_deref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default();
            reject(
                550,
                "5.7.24",
                format!(
                    "{prefix}Message rejected due to: SPF {}{problem}",
                    result.as_str()
                ),
            )
        }
    }
}
