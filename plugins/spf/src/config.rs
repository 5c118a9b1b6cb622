//! The entry's arguments, as postfix-policyd-spf-python names them:
//! which results refuse the transaction (`HELO_reject`,
//! `Mail_From_reject`, `PermError_reject`, `TempError_Defer`), which
//! header fields a message gets otherwise (`Header_Type`), this host's
//! name (`Authserv_Id`), the void lookup limit and the clients not
//! checked. Parsed once, in `init`; an error names the argument.

use std::net::IpAddr;

use postern_plugin_sdk::Args;

use crate::eval::{self, SpfResult};

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
    pub(crate) fn refuses(self, result: SpfResult, null_sender: bool) -> bool {
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
