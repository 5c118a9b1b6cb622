//! The access(5) map restrictions (`check_sender_access hash:...` and
//! their kin): which plugins read such maps, the main.cf parameters they
//! are given, the short-hand of a table named alone in a list, and the
//! check at load of every answer a map may give. Apart from the section
//! readers because the daemon uses them when it turns the restriction
//! lists into the policy runtime's entries, after the config is read.

use crate::config::Config;

use super::tables::implicit_table;

/// The plugins that read access(5) maps.
pub const ACCESS_PLUGINS: &[&str] = &[
    "check_client_a_access",
    "check_client_access",
    "check_client_mx_access",
    "check_client_ns_access",
    "check_helo_a_access",
    "check_helo_access",
    "check_helo_mx_access",
    "check_helo_ns_access",
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
];

/// The main.cf parameters the access map plugins read, as arguments for
/// them: those set to something else than Postfix's default (and
/// `recipient_delimiter` when set), so that an entry written as in
/// main.cf shows as written.
pub fn access_map_args(config: &Config) -> Vec<(&'static str, String)> {
    [
        "access_map_defer_code",
        "access_map_reject_code",
        "parent_domain_matches_subdomains",
        "recipient_delimiter",
        "smtpd_null_access_lookup_key",
    ]
    .into_iter()
    .filter_map(|name| {
        let value = config.value(name)?;
        (value != config.default_value(name)?).then_some((name, value))
    })
    .collect()
}

/// A table named alone in a list (`"hash:/etc/postfix/access"`) is
/// Postfix's short-hand for the list's own access check: the client list's
/// `check_client_access`, the HELO list's `check_helo_access`, and so on
/// (smtpd_check.c, `def_acl`). Other lines are returned as they are; so is
/// a table in the data lists, which have no such check (the plugin named
/// by the table's text then fails to load, naming it).
pub fn implicit_access(stage: postern_mail::Stage, line: &str) -> std::borrow::Cow<'_, str> {
    use postern_mail::Stage;
    let first = line.split_whitespace().next().unwrap_or_default();
    let check = match stage {
        Stage::Client => "check_client_access",
        Stage::Helo => "check_helo_access",
        Stage::Sender => "check_sender_access",
        Stage::Relay | Stage::Recipient => "check_recipient_access",
        _ => return line.into(),
    };
    if first.contains(':') && implicit_table(first).is_some() {
        format!("{check} {}", line.trim()).into()
    } else {
        line.into()
    }
}

/// Checks every answer of the table an access map plugin's `entry` names
/// ([`postern_tables::access::check_value`]): a restriction the plugin
/// cannot evaluate, nor `classes` name, is refused at load, not met by a
/// client.
pub fn check_access_table(
    tables: &postern_tables::Tables,
    entry: &postern_policy::Entry,
    classes: &[&str],
) -> Result<(), String> {
    if !ACCESS_PLUGINS.contains(&entry.name()) {
        return Ok(());
    }
    let Some((_, name)) = entry.args().iter().find(|(k, _)| k == "1" || k == "table") else {
        return Ok(());
    };
    let mut answers: Vec<(String, &str)> = match tables.get(name) {
        Some(postern_tables::Table::Hash(t)) => t
            .entries()
            .map(|(k, v)| (format!("key {k:?}"), v))
            .collect(),
        Some(postern_tables::Table::Cidr(t)) => t
            .results()
            .enumerate()
            .map(|(i, v)| (format!("result {}", i + 1), v))
            .collect(),
        // Regexp results may be built from `$1`: known only at lookup.
        _ => Vec::new(),
    };
    answers.sort();
    for (what, value) in answers {
        postern_tables::access::check_value_with(value, classes)
            .map_err(|e| format!("table {name}: {what}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_alone_is_the_lists_own_access_check() {
        use postern_mail::Stage;
        assert_eq!(
            implicit_access(Stage::Sender, "hash:/etc/postfix/access"),
            "check_sender_access hash:/etc/postfix/access"
        );
        assert_eq!(
            implicit_access(Stage::Relay, "cidr:/x"),
            "check_recipient_access cidr:/x"
        );
        assert_eq!(
            implicit_access(Stage::Client, "permit_mynetworks"),
            "permit_mynetworks"
        );
        assert_eq!(implicit_access(Stage::Data, "hash:/x"), "hash:/x");
    }
}
