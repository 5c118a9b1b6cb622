//! Restriction classes (Postfix `smtpd_restriction_classes`): named lists
//! that an entry of any list, or an access map's answer (the `restriction`
//! verdict), names to have them evaluated in place.
//!
//! Postfix evaluates a class as a nested list (smtpd_check.c
//! `generic_checks` calling itself): the class's first permit, reject or
//! defer is the answer of the whole stage, and a class that runs out is
//! "dunno", so the list that named it goes on. `defer_if_permit`,
//! `defer_if_reject` and the collected actions are the stage's, whatever
//! the depth. `warn_if_reject` before a class name puts every entry of the
//! class in shadow mode.
//!
//! What is checked here, at load, so that no client ever meets it: a class
//! name that a built-in or a plugin already has, a class without entries,
//! a class named with arguments, a loop (`a` names `b`, `b` names `a`) and
//! nesting deeper than [`MAX_CLASS_DEPTH`]. An access map may still name a
//! class from a class (a loop only data can make): the evaluation stops at
//! [`MAX_CLASS_DEPTH`] with `451 4.3.5`.

use std::collections::{BTreeMap, BTreeSet};

use postern_mail::Stage;

use crate::config::PolicyConfig;
use crate::entry::{Builtin, Entry};
use crate::error::{Error, Place};

/// How deep classes may nest: a list naming a class is depth 1, a class
/// named by that class depth 2, and so on. Postfix has no such limit but
/// its stack; eight is far more than any main.cf needs, and bounds what a
/// table answer naming classes can make the server do.
pub const MAX_CLASS_DEPTH: usize = 8;

/// Checks `config`'s classes; `is_plugin` says whether a name is a plugin.
pub(crate) fn check(config: &PolicyConfig, is_plugin: impl Fn(&str) -> bool) -> Result<(), Error> {
    let classes = &config.classes;
    for (name, list) in classes {
        let place = Place::Class(name.clone());
        let taken = if Builtin::from_name(name).is_some() {
            Some("the built-in")
        } else if is_plugin(name) {
            Some("the plugin")
        } else {
            None
        };
        if let Some(what) = taken {
            return Err(Error::Class {
                place,
                message: format!("{name} is the name of {what} {name}; give the class another"),
            });
        }
        if list.is_empty() {
            return Err(Error::Class {
                place,
                message: "needs a definition (a list of restrictions)".to_owned(),
            });
        }
    }
    // Every entry that names a class, in the lists and in classes.
    let lists = Stage::ALL.into_iter().map(|s| {
        (
            Place::List(s),
            config
                .restrictions
                .get(&s)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    });
    let defined = classes
        .iter()
        .map(|(n, l)| (Place::Class(n.clone()), l.as_slice()));
    for (place, list) in lists.chain(defined) {
        for entry in list {
            if classes.contains_key(entry.name()) && !entry.args().is_empty() {
                return Err(Error::Class {
                    place,
                    message: format!(
                        "entry {entry}: restriction class {} takes no arguments",
                        entry.name()
                    ),
                });
            }
        }
    }
    // Loops and depth: the longest chain of classes below each one.
    let mut depth = BTreeMap::new();
    for name in classes.keys() {
        let mut path = Vec::new();
        nesting(config, name, &mut path, &mut depth)?;
    }
    Ok(())
}

/// How many classes deep `name` goes (1 for a class that names none),
/// memoised in `depth`; `path` is the chain that led here, for the loop
/// message.
fn nesting<'c>(
    config: &'c PolicyConfig,
    name: &'c str,
    path: &mut Vec<&'c str>,
    depth: &mut BTreeMap<&'c str, usize>,
) -> Result<usize, Error> {
    if let Some(d) = depth.get(name) {
        return Ok(*d);
    }
    if let Some(start) = path.iter().position(|n| *n == name) {
        let mut cycle: Vec<&str> = path[start..].to_vec();
        cycle.push(name);
        return Err(Error::Class {
            place: Place::Class(name.to_owned()),
            message: format!("names itself through {}", cycle.join(" -> ")),
        });
    }
    path.push(name);
    let mut below = 0;
    for entry in config.classes.get(name).into_iter().flatten() {
        if config.classes.contains_key(entry.name()) {
            below = below.max(nesting(config, entry.name(), path, depth)?);
        }
    }
    path.pop();
    let d = below + 1;
    if d > MAX_CLASS_DEPTH {
        return Err(Error::Class {
            place: Place::Class(name.to_owned()),
            message: format!("classes nest more than {MAX_CLASS_DEPTH} deep below it"),
        });
    }
    depth.insert(name, d);
    Ok(d)
}

/// The stages whose lists reach each plugin or class name, directly or
/// through classes (for [`crate::Runtime::plugins`]).
pub(crate) fn used_by(config: &PolicyConfig) -> BTreeMap<&str, Vec<Stage>> {
    let mut used: BTreeMap<&str, Vec<Stage>> = BTreeMap::new();
    for stage in Stage::ALL {
        let mut todo: Vec<&Entry> = config
            .restrictions
            .get(&stage)
            .into_iter()
            .flatten()
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(entry) = todo.pop() {
            let stages = used.entry(entry.name()).or_default();
            if !stages.contains(&stage) {
                stages.push(stage);
            }
            if let Some(list) = config.classes.get(entry.name())
                && seen.insert(entry.name())
            {
                todo.extend(list);
            }
        }
    }
    used
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(lists: &[(&str, &[&str])]) -> PolicyConfig {
        let mut c = PolicyConfig::default().with(
            Stage::Recipient,
            vec![
                Entry::from_line("a").unwrap(),
                Entry::from_line("x").unwrap(),
            ],
        );
        for (name, list) in lists {
            c.classes.insert(
                (*name).to_owned(),
                list.iter().map(|l| Entry::from_line(l).unwrap()).collect(),
            );
        }
        c
    }

    fn err(c: &PolicyConfig) -> String {
        check(c, |n| n == "x" || n == "reject_rbl_client")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn sound_classes_pass_and_reach_their_stages() {
        let c = config(&[
            ("a", &["b", "x", "permit"]),
            ("b", &["reject_rbl_client z"]),
        ]);
        check(&c, |n| n == "x" || n == "reject_rbl_client").unwrap();
        let used = used_by(&c);
        assert_eq!(used["reject_rbl_client"], [Stage::Recipient]);
        assert_eq!(used["b"], [Stage::Recipient]);
    }

    #[test]
    fn loops_are_refused_with_the_chain() {
        let c = config(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        assert_eq!(
            err(&c),
            "restriction class a: names itself through a -> b -> c -> a"
        );
        let c = config(&[("a", &["a"])]);
        assert_eq!(err(&c), "restriction class a: names itself through a -> a");
    }

    #[test]
    fn names_arguments_emptiness_and_depth() {
        assert_eq!(
            err(&config(&[("x", &["permit"])])),
            "restriction class x: x is the name of the plugin x; give the class another"
        );
        assert_eq!(
            err(&config(&[("reject", &["permit"])])),
            "restriction class reject: reject is the name of the built-in reject; give the \
             class another"
        );
        assert_eq!(
            err(&config(&[("a", &[])])),
            "restriction class a: needs a definition (a list of restrictions)"
        );
        assert_eq!(
            err(&config(&[("a", &["b now"]), ("b", &["permit"])])),
            "restriction class a: entry b now: restriction class b takes no arguments"
        );
        let names: Vec<String> = (0..=MAX_CLASS_DEPTH).map(|i| format!("c{i}")).collect();
        let mut lists: Vec<(&str, Vec<&str>)> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            lists.push((
                n,
                names
                    .get(i + 1)
                    .map(|m| vec![m.as_str()])
                    .unwrap_or(vec!["permit"]),
            ));
        }
        let lists: Vec<(&str, &[&str])> = lists.iter().map(|(n, l)| (*n, l.as_slice())).collect();
        assert!(
            err(&config(&lists)).contains("classes nest more than 8 deep"),
            "{}",
            err(&config(&lists))
        );
    }
}
