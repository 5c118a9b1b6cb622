//! `postern plugin install|update|remove`: the operator's side of the
//! registry commands ([`crate::registry_cli`] has the rest). An install
//! pulls, checks every digest, the version constraint, the signature
//! against `[plugins] trusted_keys` and that the component links as a
//! plugin of this server (`check_links`, which `publish` shares); only
//! then does it store the component, put it in service as `NAME.wasm` and
//! lock it, all under the plugin directory's lock. A failed install,
//! update or removal leaves the directory, plugins.lock and the running
//! server as they were.

#![allow(clippy::print_stdout, reason = "the commands answer on stdout")]

use std::process::ExitCode;

use anyhow::{Context, bail};
use postern_policy::PolicyConfig;
use postern_registry::{Fetched, Lock, Locked, PluginRef, Store, Version, artifact};

use crate::config::Config;
use crate::registry_cli::{access, block_on, hold, store, trust};

/// Checks that `bytes` link as a plugin of this server: the policy runtime
/// loads them alone from a scratch directory, as a reload would (through
/// the server's compile cache, so the start that follows an install does
/// not compile them again).
pub(crate) fn check_links(
    config: &Config,
    store: &Store,
    reference: &str,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let scratch = store
        .dir()
        .join(".store")
        .join(format!("check-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("{}", scratch.display()))?;
    let result = std::fs::write(scratch.join(format!("{name}.wasm")), bytes)
        .with_context(|| format!("{}", scratch.display()))
        .and_then(|()| {
            let policy = PolicyConfig {
                plugin_dir: Some(scratch.clone()),
                ..PolicyConfig::default()
            };
            let runtime = crate::daemon::runtime(config)?;
            runtime.load(&policy).map(drop).map_err(|e| {
                anyhow::anyhow!(
                    "{reference}: not a plugin this server can run (world {}): {e}",
                    artifact::WORLD
                )
            })
        });
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Pulls and checks `r`, then stores, activates and locks it.
pub fn install(config: &Config, r: &PluginRef) -> anyhow::Result<Locked> {
    let fetched = block_on(postern_registry::fetch(r, access(config)))??;
    install_fetched(config, r, fetched)
}

/// Checks what was pulled for `r` (name, version constraint, signature,
/// linking), then stores, activates and locks it.
fn install_fetched(config: &Config, r: &PluginRef, fetched: Fetched) -> anyhow::Result<Locked> {
    let store = store(config)?;
    let trust = trust(config)?;
    let reference = r.without_digest().to_string();
    let name = r.name();
    let _held = hold(&store)?;
    let mut lock = Lock::load(store.dir())?;
    if let Some(other) = lock
        .plugin
        .iter()
        .find(|l| l.name == name && l.reference != reference)
    {
        bail!(
            "{reference}: plugin name {name} is taken by {}; remove that first",
            other.reference
        );
    }
    let path = store.plugin_path(&name);
    if path.exists() && !lock.plugin.iter().any(|l| l.name == name) {
        bail!(
            "{reference}: {} exists and was not installed from a registry; move it away first",
            path.display()
        );
    }
    if let Some(constraint) = r.constraint() {
        let version = fetched.config.version.as_deref().unwrap_or("none");
        let ok =
            Version::parse(version.trim_start_matches('v')).is_ok_and(|v| constraint.matches(&v));
        if !ok {
            bail!("{reference}: the artifact's version {version} does not satisfy {constraint}");
        }
    }
    trust.check(&reference, &fetched.digest, fetched.signature.as_ref())?;
    check_links(config, &store, &reference, &name, &fetched.component)?;
    let digest = store.put(&fetched.component)?;
    store.activate(&name, &digest)?;
    let locked = Locked {
        reference,
        name,
        tag: fetched.tag.clone(),
        digest,
        manifest: fetched.manifest_digest.clone(),
        world: fetched.config.component.target.clone(),
        version: fetched.config.version.clone(),
        key: fetched.signature.as_ref().map(|s| s.key.clone()),
        signature: fetched.signature.as_ref().map(|s| s.value.clone()),
    };
    lock.put(locked.clone());
    lock.save(store.dir())?;
    store.collect_garbage(&lock)?;
    Ok(locked)
}

/// Pulls again every installed reference (or `only`), to what its tag or
/// version constraint names now; a failed one is said and the rest go on.
pub fn update(config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let store = store(config)?;
    let lock = Lock::load(store.dir())?;
    let wanted: Vec<Locked> = match only {
        Some(r) => {
            let key = PluginRef::parse(r)?.without_digest().to_string();
            match lock.get(&key) {
                Some(l) => vec![l.clone()],
                None => bail!("{key} is not installed"),
            }
        }
        None => lock.plugin.clone(),
    };
    let mut failed = false;
    for old in wanted {
        let r = PluginRef::parse(&old.reference)?;
        let result = block_on(postern_registry::fetch(&r, access(config))).and_then(|f| {
            let fetched = f?;
            if fetched.digest == old.digest {
                return Ok(old.clone());
            }
            install_fetched(config, &r, fetched)
        });
        match result {
            Ok(new) if new.digest == old.digest => {
                println!("{}: up to date ({})", new.reference, new.digest)
            }
            Ok(new) => println!(
                "{}: updated {} -> {} ({})",
                new.reference,
                old.tag.as_deref().unwrap_or("-"),
                new.tag.as_deref().unwrap_or("-"),
                new.digest
            ),
            Err(e) => {
                eprintln!("postern: {}: {e:#}", old.reference);
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Removes an installed reference: its lock entry, and `NAME.wasm` unless
/// another reference still runs as that name.
pub fn remove(config: &Config, reference: &str) -> anyhow::Result<ExitCode> {
    let store = store(config)?;
    let key = PluginRef::parse(reference)?.without_digest().to_string();
    let _held = hold(&store)?;
    let mut lock = Lock::load(store.dir())?;
    let Some(gone) = lock.remove(&key) else {
        bail!("{key} is not installed (see `postern plugin list`)");
    };
    lock.save(store.dir())?;
    if !lock.plugin.iter().any(|l| l.name == gone.name) {
        store.deactivate(&gone.name)?;
    }
    store.collect_garbage(&lock)?;
    println!("removed {key} ({}); run `postern reload`", gone.name);
    Ok(ExitCode::SUCCESS)
}
