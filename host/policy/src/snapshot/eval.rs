//! Evaluating one stage's list with Postfix's rules: entry by entry, a
//! restriction class in place, a plugin in the instance the session keeps,
//! and a failed plugin's `on_error`. Apart from [`Snapshot`]'s loading,
//! pinning and swapping, which never look inside a list.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use postern_mail::policy::BoxFuture;
use postern_mail::{Decision, EnhancedCode, PolicyRequest, Reply, Verdict};

use super::{LoadedEntry, Snapshot, Target};
use crate::bindings::postern::policy::types;
use crate::chain::Chain;
use crate::class::MAX_CLASS_DEPTH;
use crate::convert;
use crate::entry::{Builtin, Entry, Mode, OnError};
use crate::message::Parsed;
use crate::plugin::{CallError, Live, LoadedPlugin};
use crate::reuse::Instances;
use crate::runtime::builtin_verdict;

impl Snapshot {
    pub(super) async fn evaluate(
        &self,
        request: &PolicyRequest,
        instances: &mut Instances,
    ) -> Decision {
        let Some(list) = self.lists.get(&request.stage) else {
            return Decision::permit();
        };
        let mut eval = Eval {
            request,
            wit: None,
            message: request.message.clone().map(|m| Arc::new(Parsed::new(m))),
            chain: Chain::new(request),
            instances,
        };
        match self.run(list, &mut eval, false, 0).await {
            Some(decision) => decision,
            None => eval.chain.finish(),
        }
    }

    /// Evaluates `list` (a stage's, or a class's `depth` classes down)
    /// into `eval`'s chain; `Some` when an entry decided. `shadow`: the
    /// list is a class named after `warn_if_reject`.
    fn run<'s>(
        &'s self,
        list: &'s [LoadedEntry],
        eval: &'s mut Eval<'_>,
        shadow: bool,
        depth: usize,
    ) -> BoxFuture<'s, Option<Decision>> {
        Box::pin(async move {
            for item in list {
                let shadow = shadow || item.entry.mode() == Mode::Shadow;
                let verdict = match &item.target {
                    Target::Builtin(verdict) => verdict.clone(),
                    Target::Class(name) => Verdict::Restriction(name.clone()),
                    Target::Plugin(plugin) => self.ask(item, plugin, eval, shadow).await,
                };
                let decided = match verdict {
                    Verdict::Restriction(names) => {
                        self.classes_named(&names, item, eval, shadow, depth).await
                    }
                    verdict => eval.chain.step_as(&item.entry, verdict, shadow),
                };
                if decided.is_some() {
                    return decided;
                }
            }
            None
        })
    }

    /// Evaluates the restriction names of a class entry or a
    /// `restriction` verdict, in order: a class's list in place, a
    /// built-in as its verdict. A name that is neither is Postfix's
    /// `unknown smtpd restriction` (logged; `451 4.3.5`), as is nesting
    /// past [`MAX_CLASS_DEPTH`].
    async fn classes_named(
        &self,
        names: &str,
        item: &LoadedEntry,
        eval: &mut Eval<'_>,
        shadow: bool,
        depth: usize,
    ) -> Option<Decision> {
        for name in names
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
        {
            let verdict = if let Some(builtin) = Builtin::from_name(name) {
                builtin_verdict(builtin)
            } else if let Some(list) = self.classes.get(name) {
                if depth < MAX_CLASS_DEPTH {
                    match self.run(list, eval, shadow, depth + 1).await {
                        Some(decision) => return Some(decision),
                        None => continue,
                    }
                }
                config_error(
                    eval.request,
                    &item.entry,
                    &format!(
                        "restriction class {name}: more than {MAX_CLASS_DEPTH} levels of nesting"
                    ),
                )
            } else {
                config_error(
                    eval.request,
                    &item.entry,
                    &format!("unknown smtpd restriction: \"{name}\""),
                )
            };
            if let Some(decision) = eval.chain.step_as(&item.entry, verdict, shadow) {
                return Some(decision);
            }
        }
        None
    }

    /// Calls one plugin entry, in the instance the session keeps for it;
    /// header fields it added become PREPEND actions of the entry, met
    /// before its verdict (none for a shadow entry).
    async fn ask(
        &self,
        item: &LoadedEntry,
        plugin: &LoadedPlugin,
        eval: &mut Eval<'_>,
        shadow: bool,
    ) -> Verdict {
        let wit = eval
            .wit
            .get_or_insert_with(|| convert::request(eval.request));
        // An entry whose plugin declared what its verdicts depend on: a
        // kept verdict answers, else the plugin sees only that.
        let masked;
        let mut keep = None;
        let wit = match (item.verdicts.get(), &*wit) {
            (Some(cache), Ok(request)) => {
                let key = cache.spec().key(request);
                if let Some(verdict) = cache.get(&key, Instant::now()) {
                    plugin.counters.cached(&verdict);
                    return verdict;
                }
                masked = Ok(cache.spec().mask(request));
                keep = Some((cache, key));
                &masked
            }
            _ => wit,
        };
        let mut held = eval.instances.remove(plugin.instance_key);
        let call = Call {
            request: eval.request,
            wit,
            message: eval.message.as_ref(),
            max_failures: self.max_failures,
        };
        let (added, verdict, cacheable) = call.ask(item, plugin, &mut held).await;
        if let Some(live) = held {
            eval.instances.insert(plugin.instance_key, live);
        }
        if let (Some((cache, key)), true) = (keep, cacheable) {
            cache.put(key, verdict.clone(), Instant::now());
        }
        if !shadow {
            for line in added {
                eval.chain
                    .step_as(&item.entry, Verdict::Prepend(line), false);
            }
        }
        verdict
    }
}

/// One list evaluation in progress: the request (converted once, on
/// demand, for every plugin of the list and its classes), the message,
/// Postfix's rules, and the session's plugin instances.
struct Eval<'a> {
    request: &'a PolicyRequest,
    wit: Option<Result<types::Request, String>>,
    message: Option<Arc<Parsed>>,
    chain: Chain<'a>,
    instances: &'a mut Instances,
}

/// Postfix's answer to a restriction it cannot evaluate
/// (`reject_server_error`): `451 4.3.5 Server configuration error`, after
/// a warning that names the entry.
fn config_error(request: &PolicyRequest, entry: &Entry, why: &str) -> Verdict {
    let id = if request.queue_id.is_empty() {
        "NOQUEUE"
    } else {
        &request.queue_id
    };
    tracing::warn!(
        target: "postern/policy",
        plugin = entry.name(),
        stage = %request.stage,
        "{id}: {why} (named by entry {entry} of the {} list)",
        request.stage
    );
    Verdict::Reject(Reply::new(
        451,
        EnhancedCode::new(4, 3, 5),
        "Server configuration error",
    ))
}

/// What every plugin call of one list evaluation shares.
struct Call<'a> {
    request: &'a PolicyRequest,
    wit: &'a Result<types::Request, String>,
    message: Option<&'a Arc<Parsed>>,
    max_failures: u32,
}

impl Call<'_> {
    /// Calls one plugin entry in the instance `held` (made if there is
    /// none); returns the header fields it added, its verdict, and whether
    /// the verdict may be kept ([`crate::verdicts`]). A failure becomes
    /// the entry's `on_error` (and drops the instance), as does an entry
    /// taken out after `max_failures` failures in a row; neither is kept.
    async fn ask(
        &self,
        item: &LoadedEntry,
        plugin: &LoadedPlugin,
        held: &mut Option<Live>,
    ) -> (Vec<String>, Verdict, bool) {
        let (request, max_failures) = (self.request, self.max_failures);
        let entry = &item.entry;
        if max_failures > 0 && item.failures.load(Ordering::Relaxed) >= max_failures {
            return (Vec::new(), on_error(entry), false);
        }
        let started = Instant::now();
        let answer = match self.wit {
            Ok(wit) => match plugin.check(entry.args(), wit, self.message, held).await {
                Ok(answer) => convert::verdict(answer.verdict)
                    .map(|verdict| (answer.added, verdict, answer.cacheable))
                    .map_err(|e| format!("bad answer: {e}")),
                Err(CallError::Refused(message)) => {
                    Err(format!("init refused the arguments: {message}"))
                }
                Err(CallError::Failed(cause)) => Err(cause),
            },
            Err(cause) => Err(cause.clone()),
        };
        if answer.is_err() {
            *held = None;
        }
        plugin
            .counters
            .record(started.elapsed(), answer.as_ref().ok().map(|(_, v, _)| v));
        match answer {
            Ok(answer) => {
                item.failures.store(0, Ordering::Relaxed);
                answer
            }
            Err(cause) => {
                let id = if request.queue_id.is_empty() {
                    "NOQUEUE"
                } else {
                    &request.queue_id
                };
                tracing::warn!(
                    target: "postern/policy",
                    plugin = &*plugin.name,
                    stage = %request.stage,
                    on_error = %entry.on_error(),
                    "{id}: plugin {} failed at {} ({}): {cause}; on_error {}",
                    plugin.name,
                    request.stage,
                    plugin.origin,
                    entry.on_error()
                );
                let failures = item.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures == max_failures {
                    tracing::error!(
                        target: "postern/policy",
                        plugin = &*plugin.name,
                        stage = %request.stage,
                        "{id}: entry {entry} of the {} list failed {failures} times in a row: \
                         skipped until reload, on_error {} answers for it",
                        request.stage,
                        entry.on_error()
                    );
                }
                (Vec::new(), on_error(entry), false)
            }
        }
    }
}

/// The verdict that replaces a failed plugin's answer.
fn on_error(entry: &Entry) -> Verdict {
    let text = format!("Error: policy plugin {} failed", entry.name());
    match entry.on_error() {
        OnError::Defer => Verdict::Defer(Reply::new(451, EnhancedCode::new(4, 3, 0), text)),
        OnError::Reject => Verdict::Reject(Reply::new(554, EnhancedCode::new(5, 3, 0), text)),
        OnError::Dunno => Verdict::Dunno,
    }
}
