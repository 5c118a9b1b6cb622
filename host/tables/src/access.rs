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
    "HANGUP",
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
    check_value_with(value, &[])
}

/// [`check_value`] where the config defines the restriction classes
/// `classes` (`smtpd_restriction_classes`). The plugin evaluates the names
/// of [`RESTRICTIONS`] itself and hands the rest of the list, from the
/// first other name on, to the server: from there each name must be a
/// class or one of `permit`, `reject`, `defer`, `dunno`.
pub fn check_value_with(value: &str, classes: &[&str]) -> Result<(), String> {
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
    let mut handed_over = false;
    for name in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let lower = name.to_ascii_lowercase();
        let builtin = matches!(lower.as_str(), "permit" | "reject" | "defer" | "dunno");
        if classes.contains(&name) || (handed_over && builtin) {
            handed_over = true;
            continue;
        }
        if handed_over {
            return Err(format!(
                "{value:?}: {name:?} follows a restriction class, where only classes and \
                 permit, reject, defer, dunno may stand"
            ));
        }
        if !RESTRICTIONS.contains(&lower.as_str()) {
            let classes = if classes.is_empty() {
                String::new()
            } else {
                format!(", or a restriction class: {}", classes.join(", "))
            };
            return Err(format!(
                "{value:?}: {name:?} is neither an access(5) action nor a restriction an access map can name here ({}{classes})",
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
    fn restriction_classes_may_be_named() {
        let classes = ["from_freemail", "strict"];
        for ok in [
            "from_freemail",
            "permit_mynetworks, from_freemail",
            "from_freemail, strict, reject",
        ] {
            assert_eq!(check_value_with(ok, &classes), Ok(()), "{ok}");
        }
        assert!(check_value("from_freemail").is_err());
        let err = check_value_with("from_freemail permit_mynetworks", &classes).unwrap_err();
        assert!(err.contains("follows a restriction class"), "{err}");
        let err = check_value_with("From_Freemail", &classes).unwrap_err();
        assert!(
            err.contains("or a restriction class: from_freemail, strict"),
            "{err}"
        );
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
