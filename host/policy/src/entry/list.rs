//! A restriction list as Postfix writes it in main.cf: one string of
//! entries separated by commas, spaces or newlines, some words taking
//! the next as their argument, and restrictions under their pre-2.3
//! names. Apart from [`Entry`](super::Entry) because it reads the list
//! as a whole, before any one entry is parsed.

/// The prefix word that puts the following entry in
/// [`Mode::Shadow`](super::Mode::Shadow).
pub(super) const WARN_IF_REJECT: &str = "warn_if_reject";

/// Restrictions whose next word is their argument in a Postfix list
/// (smtpd_check.c): `check_sender_access hash:/etc/x`,
/// `reject_rbl_client zen.spamhaus.org=127.0.0.[2..11]`.
pub const TAKES_ARGUMENT: &[&str] = &[
    "check_ccert_access",
    "check_client_a_access",
    "check_client_access",
    "check_client_mx_access",
    "check_client_ns_access",
    "check_etrn_access",
    "check_helo_a_access",
    "check_helo_access",
    "check_helo_mx_access",
    "check_helo_ns_access",
    "check_policy_service",
    "check_recipient_a_access",
    "check_recipient_access",
    "check_recipient_mx_access",
    "check_recipient_ns_access",
    "check_reverse_client_hostname_a_access",
    "check_reverse_client_hostname_access",
    "check_reverse_client_hostname_mx_access",
    "check_reverse_client_hostname_ns_access",
    "check_sasl_access",
    "check_sender_a_access",
    "check_sender_access",
    "check_sender_mx_access",
    "check_sender_ns_access",
    "permit_dnswl_client",
    "permit_rhswl_client",
    "reject_rbl_client",
    "reject_rhsbl_client",
    "reject_rhsbl_helo",
    "reject_rhsbl_recipient",
    "reject_rhsbl_reverse_client",
    "reject_rhsbl_sender",
];

/// Names Postfix renamed (2.3) and still accepts, with the name each
/// stands for: an old main.cf runs the renamed plugin.
pub const OLD_NAMES: &[(&str, &str)] = &[
    ("reject_invalid_hostname", "reject_invalid_helo_hostname"),
    ("reject_non_fqdn_hostname", "reject_non_fqdn_helo_hostname"),
    ("reject_unknown_client", "reject_unknown_client_hostname"),
    ("reject_unknown_hostname", "reject_unknown_helo_hostname"),
];

/// The current name of restriction `name` (see [`OLD_NAMES`]).
pub fn current_name(name: &str) -> &str {
    OLD_NAMES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}

/// Splits a restriction list written as one string, as Postfix reads a
/// `smtpd_*_restrictions` value: entries separated by commas, spaces or
/// newlines alike; a word of [`TAKES_ARGUMENT`] keeps the word after it,
/// `warn_if_reject` the entry after it; `{ ... }` stays one word (Postfix
/// 3.0's grouping, as in `check_policy_service { inet:host:port, ... }`).
/// Each entry is a line for [`Entry::from_line`](super::Entry::from_line).
///
/// ```
/// let l = postern_policy::entry::split_list(
///     "permit_mynetworks,\n  check_sender_access hash:/etc/x reject_unauth_destination",
/// );
/// assert_eq!(l, ["permit_mynetworks", "check_sender_access hash:/etc/x", "reject_unauth_destination"]);
/// ```
pub fn split_list(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut depth = 0usize;
    // A main.cf list pasted whole keeps its comment lines (main.cf drops
    // lines that start with `#`, as a commented-out restriction).
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && (c == ',' || c.is_whitespace()) && c != '}' {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut entries = Vec::new();
    let mut words = words.into_iter().peekable();
    while let Some(first) = words.next() {
        let mut entry = first;
        let mut name = entry.clone();
        if name == WARN_IF_REJECT
            && let Some(next) = words.next()
        {
            entry.push(' ');
            entry.push_str(&next);
            name = next;
        }
        if TAKES_ARGUMENT.contains(&name.as_str())
            && let Some(arg) = words.next()
        {
            entry.push(' ');
            entry.push_str(&arg);
        }
        entries.push(entry);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_lists_split_on_commas_spaces_and_newlines() {
        let fixture = "permit_mynetworks\n    permit_sasl_authenticated\n    \
             check_recipient_access hash:/etc/postfix/access\n    reject_non_fqdn_recipient\n    \
             reject_unauth_destination\n    permit_auth_destination\n    reject";
        assert_eq!(
            split_list(fixture),
            [
                "permit_mynetworks",
                "permit_sasl_authenticated",
                "check_recipient_access hash:/etc/postfix/access",
                "reject_non_fqdn_recipient",
                "reject_unauth_destination",
                "permit_auth_destination",
                "reject"
            ]
        );
        assert_eq!(
            split_list(
                " permit_mynetworks,check_client_access  hash:/x,,reject_rbl_client\tzen.spamhaus.org=127.0.0.[2..11], permit "
            ),
            [
                "permit_mynetworks",
                "check_client_access hash:/x",
                "reject_rbl_client zen.spamhaus.org=127.0.0.[2..11]",
                "permit"
            ]
        );
        assert_eq!(
            split_list("warn_if_reject check_helo_access hash:/h, warn_if_reject reject"),
            [
                "warn_if_reject check_helo_access hash:/h",
                "warn_if_reject reject"
            ]
        );
        assert_eq!(
            split_list("check_policy_service { inet:127.0.0.1:9998, timeout=10s }, permit"),
            [
                "check_policy_service { inet:127.0.0.1:9998, timeout=10s }",
                "permit"
            ]
        );
        // A word that needs an argument at the end keeps none: the plugin
        // says what is missing.
        assert_eq!(split_list("check_sender_access"), ["check_sender_access"]);
        assert!(split_list(" ,\n ").is_empty());
        assert_eq!(
            split_list("permit_mynetworks,\n#   reject_rbl_client zen.spamhaus.org,\n  permit"),
            ["permit_mynetworks", "permit"]
        );
    }
}
