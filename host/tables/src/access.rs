//! The right-hand sides of an access(5) table, checked when the server
//! loads a table that a `check_*_access` entry names: a value is an
//! action (`OK`, `REJECT text`, `550 text`, `HOLD`, ...) or a list of
//! restriction names, and the plugins can evaluate only some restrictions
//! in-process (`postern_plugin_sdk::restriction`). Postfix finds an
//! unknown name only when a lookup hits it, and answers the client
//! `451 4.3.5 Server configuration error`; Postern refuses the table at
//! start and reload instead, naming the key, so the mistake never reaches
//! a client.

/// access(5)'s actions, matched case-insensitively on the first word.
pub const ACTIONS: &[&str] = &[
    "OK",
    "RELAY",
    "REJECT",
    "DEFER",
    "DEFER_IF_REJECT",
    "DEFER_IF_PERMIT",
    "DUNNO",
    "DISCARD",
    "HOLD",
    "PREPEND",
    "REDIRECT",
    "BCC",
    "FILTER",
    "INFO",
    "WARN",
];

/// The restriction names an access map may answer with; keep in step with
/// `postern_plugin_sdk::restriction::SUPPORTED` (a test there compares
/// the two).
pub const RESTRICTIONS: &[&str] = &[
    "permit",
    "reject",
    "defer",
    "dunno",
    "permit_mynetworks",
    "permit_sasl_authenticated",
    "permit_pop_before_smtp",
    "permit_auth_destination",
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject_non_fqdn_sender",
    "reject_non_fqdn_recipient",
    "reject_non_fqdn_helo_hostname",
    "reject_non_fqdn_hostname",
    "reject_unauth_pipelining",
    "reject_unlisted_recipient",
    "reject_unlisted_sender",
];

/// Whether `value` is something an access map can answer; the error says
/// what is wrong with it.
pub fn check_value(value: &str) -> Result<(), String> {
    let value = value.trim();
    let first = value.split([' ', '\t']).next().unwrap_or_default();
    let numeric = first.len() == 3
        && first.starts_with(['4', '5'])
        && first.bytes().all(|b| b.is_ascii_digit());
    if value.is_empty()
        || ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(first))
        || value.bytes().all(|b| b.is_ascii_digit())
        || numeric
    {
        return Ok(());
    }
    if value.contains(':') {
        return Err(format!(
            "{value:?}: a lookup table inside an access map (name the restriction in the list instead)"
        ));
    }
    for name in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !RESTRICTIONS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{value:?}: {name:?} is neither an access(5) action nor a restriction an access map can name here ({})",
                RESTRICTIONS.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn actions_numbers_and_restriction_lists_pass() {
        for ok in [
            "OK",
            "reject Go away",
            "550 5.7.1 no",
            "421 closing",
            "1700000000",
            "HOLD",
            "permit_mynetworks, reject",
            "PERMIT_SASL_AUTHENTICATED reject_unauth_destination",
        ] {
            assert_eq!(check_value(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn unknown_names_and_tables_are_refused() {
        let err = check_value("reject_rbl_client zen.spamhaus.org").unwrap_err();
        assert!(
            err.starts_with(
                "\"reject_rbl_client zen.spamhaus.org\": \"reject_rbl_client\" is neither"
            ),
            "{err}"
        );
        assert!(check_value("REJEKT spam").is_err());
        assert!(
            check_value("check_sender_access hash:/x")
                .unwrap_err()
                .contains("a lookup table inside an access map")
        );
    }
}
