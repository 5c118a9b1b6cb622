//! What the results mean for the SMTP session, as postfix-policyd-spf-python
//! decides it, with its option names: which results refuse the
//! transaction (`HELO_reject`, `Mail_From_reject`, `PermError_reject`,
//! `TempError_Defer`), and the header fields a message gets otherwise
//! (`Header_Type`: Received-SPF, RFC 7208 §9.1, and/or
//! Authentication-Results, RFC 8601).

use std::net::IpAddr;
use std::sync::Mutex;

use postern_plugin_sdk::resolver::Resolver;
use postern_plugin_sdk::{Args, Request, Stage, Verdict, reject};

use crate::eval::{self, Outcome, Query, SpfResult};

/// When a result refuses the message: policyd-spf's `HELO_reject` and
/// `Mail_From_reject` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// `SPF_Not_Pass`: any result but pass, none and temperror.
    NotPass,
    /// `Softfail`: fail and softfail.
    Softfail,
    /// `Fail`: fail only (the default).
    Fail,
    /// `Null` (HELO only): fail, for the null sender only.
    Null,
    /// `False`: never; the header only.
    Never,
    /// `No_Check`: the identity is not checked at all.
    NoCheck,
}

impl Reject {
    fn parse(value: &str, helo: bool) -> Result<Reject, String> {
        Ok(match value.to_ascii_lowercase().as_str() {
            "spf_not_pass" => Reject::NotPass,
            "softfail" => Reject::Softfail,
            "fail" => Reject::Fail,
            "null" if helo => Reject::Null,
            "false" | "no" => Reject::Never,
            "no_check" => Reject::NoCheck,
            _ => {
                let null = if helo { ", Null" } else { "" };
                return Err(format!(
                    "expected SPF_Not_Pass, Softfail, Fail{null}, False or No_Check"
                ));
            }
        })
    }

    /// Whether `result` is refused.
    fn refuses(self, result: SpfResult, null_sender: bool) -> bool {
        use SpfResult as R;
        match self {
            Reject::NotPass => !matches!(result, R::Pass | R::None | R::TempError),
            Reject::Softfail => matches!(result, R::Fail | R::SoftFail),
            Reject::Fail => result == R::Fail,
            Reject::Null => null_sender && result == R::Fail,
            Reject::Never | Reject::NoCheck => false,
        }
    }
}

/// Which header fields a message that is not refused gets: policyd-spf's
/// `Header_Type`, with `Both` added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    /// `SPF` (or `Received-SPF`): a Received-SPF field, the default.
    ReceivedSpf,
    /// `AR` (or `Authentication-Results`): an Authentication-Results field
    /// with `Authserv_Id` as its authserv-id.
    AuthenticationResults,
    /// `Both`: Received-SPF and Authentication-Results. A verdict carries
    /// one field, so only an end-of-data entry adds both (through the
    /// `message` import); an earlier one adds Received-SPF.
    Both,
    /// `None`: no field.
    None,
}

impl Headers {
    fn parse(value: &str) -> Result<Headers, String> {
        Ok(match value.to_ascii_lowercase().as_str() {
            "spf" | "received-spf" => Headers::ReceivedSpf,
            "ar" | "authentication-results" => Headers::AuthenticationResults,
            "both" => Headers::Both,
            "none" => Headers::None,
            _ => return Err("expected SPF, AR, Both or None".to_owned()),
        })
    }

    /// Whether an Authentication-Results field is asked for.
    pub fn authentication_results(self) -> bool {
        matches!(self, Headers::AuthenticationResults | Headers::Both)
    }
}

/// The receiver's name when `Authserv_Id` is not given (RFC 7208 §7.3).
pub const UNKNOWN_RECEIVER: &str = "unknown";

/// The entry's arguments.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HELO_reject`: `Fail`.
    pub helo_reject: Reject,
    /// `Mail_From_reject`: `Fail`.
    pub mail_from_reject: Reject,
    /// `PermError_reject`: `False`; true refuses a permerror with 550
    /// 5.7.24.
    pub permerror_reject: bool,
    /// `TempError_Defer`: `False`; true defers a temperror with 451
    /// 4.7.24.
    pub temperror_defer: bool,
    /// `Header_Type`: `SPF` (a Received-SPF header), `AR`, `Both` or
    /// `None`.
    pub headers: Headers,
    /// `Authserv_Id`: this host's name in the headers and `%{r}`;
    /// "unknown" if not given (RFC 7208 §7.3), which only Received-SPF
    /// accepts: an Authentication-Results field names its authserv-id.
    pub receiver: String,
    /// `Void_Limit`: 2 (RFC 7208 §4.6.4).
    pub void_limit: u32,
    /// `Skip_Addresses`: clients not checked (address/prefix list).
    pub skip: Vec<(IpAddr, u8)>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            helo_reject: Reject::Fail,
            mail_from_reject: Reject::Fail,
            permerror_reject: false,
            temperror_defer: false,
            headers: Headers::ReceivedSpf,
            receiver: UNKNOWN_RECEIVER.to_owned(),
            void_limit: eval::VOID_LIMIT,
            skip: Vec::new(),
        }
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err("expected True or False".to_owned()),
    }
}

/// One `address[/prefix]` of `Skip_Addresses`.
fn network(item: &str) -> Result<(IpAddr, u8), String> {
    let (ip, bits) = item.split_once('/').unwrap_or((item, ""));
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{item:?} is not an address or network"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        "" => max,
        b => b
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{item:?}: bad prefix length"))?,
    };
    Ok((ip, bits))
}

impl Config {
    /// Reads the entry's arguments (policyd-spf's names); an error names
    /// the argument.
    pub fn from_args(args: Vec<(String, String)>) -> Result<Config, String> {
        let mut args = Args::new(args);
        let mut c = Config::default();
        if let Some(r) = args.parse("HELO_reject", |v| Reject::parse(v, true))? {
            c.helo_reject = r;
        }
        if let Some(r) = args.parse("Mail_From_reject", |v| Reject::parse(v, false))? {
            c.mail_from_reject = r;
        }
        if let Some(b) = args.parse("PermError_reject", boolean)? {
            c.permerror_reject = b;
        }
        if let Some(b) = args.parse("TempError_Defer", boolean)? {
            c.temperror_defer = b;
        }
        if let Some(h) = args.parse("Header_Type", Headers::parse)? {
            c.headers = h;
        }
        let named = args.parse("Authserv_Id", |v| {
            let ok = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            ok.then(|| v.to_owned())
                .ok_or_else(|| "expected a host name".to_owned())
        })?;
        // Plugins are not told `myhostname`; an Authentication-Results
        // field without this host's own authserv-id could not be told
        // from a forged one (RFC 8601 §5).
        if c.headers.authentication_results() && named.is_none() {
            return Err(
                "Header_Type: Authentication-Results needs Authserv_Id (this host's name, \
                 as myhostname)"
                    .to_owned(),
            );
        }
        if let Some(id) = named {
            c.receiver = id;
        }
        if let Some(n) = args.parse("Void_Limit", |v| {
            v.trim().parse::<u32>().map_err(|e| e.to_string())
        })? {
            c.void_limit = n;
        }
        if let Some(list) = args.parse("Skip_Addresses", |v| {
            v.split([',', ' '])
                .filter(|w| !w.is_empty())
                .map(network)
                .collect::<Result<Vec<_>, _>>()
        })? {
            c.skip = list;
        }
        args.done()?;
        Ok(c)
    }
}

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
}

impl<'a> From<&'a Request> for Session<'a> {
    fn from(r: &'a Request) -> Session<'a> {
        Session {
            stage: r.stage,
            client_address: &r.client_address,
            helo_name: &r.helo_name,
            sender: &r.sender,
            recipient: &r.recipient,
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

/// The results of one transaction, by (client, HELO, sender): the
/// instance lives one transaction (wit/policy.wit), so this is the
/// per-transaction cache, and a new MAIL FROM starts afresh anyway.
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
        "{:?} {ip} {} {}",
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
