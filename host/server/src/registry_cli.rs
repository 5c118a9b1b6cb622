//! `postern plugin publish|install|update|remove|verify|sign|keygen`:
//! plugins shared through OCI registries (or a layout directory), pinned
//! by digest in `plugin_directory/plugins.lock`, and the resolution of
//! `{ plugin = "oci://..." }` chain entries at start and reload.
//!
//! An install pulls, checks every digest, the artifact layout, that the
//! component links as a plugin of this server (the policy runtime loads
//! it, as a reload would), and its signature against `[plugins]
//! trusted_keys`; only then does it store the component, put it in
//! service as `NAME.wasm` and lock it. Nothing runs it until `postern
//! reload` (or a start); a failed install leaves the directory, the lock
//! and the running server as they were. Start and reload read only the
//! lock and the store: never the network.

#![allow(clippy::print_stdout, reason = "the commands answer on stdout")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use postern_policy::PolicyConfig;
use postern_registry::{
    Fetched, Lock, Locked, PluginRef, Store, Trust, Version, artifact, signature,
};

use crate::config::{Config, RestrictionItem};

/// The registry subcommands of `postern plugin`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Push a component to a registry as REF (oci://HOST/NS/NAME:TAG, or
    /// file:///DIR/NAME:TAG for a layout directory), with the WIT world and
    /// version in its config blob.
    Publish {
        /// The component (.wasm).
        file: PathBuf,
        /// Where to publish it.
        reference: String,
        /// The plugin's version (semver); default: the tag, if it is one.
        #[arg(long)]
        version: Option<String>,
        /// Sign it with this secret key (see `keygen`).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Skip checking that it is a component this server can load.
        #[arg(long)]
        no_check: bool,
    },
    /// Pull REF[@sha256:DIGEST] (a tag, or a constraint such as NAME:^1.2),
    /// check it, store it in plugin_directory and record it in
    /// plugins.lock. `postern reload` puts it in service.
    Install {
        /// The reference.
        reference: String,
    },
    /// Pull again every installed reference (or one), to what its tag or
    /// version constraint names now.
    Update {
        /// One installed reference; all when omitted.
        reference: Option<String>,
    },
    /// Remove an installed reference: its lock entry and NAME.wasm.
    Remove {
        /// The reference as installed.
        reference: String,
    },
    /// Re-hash every installed plugin against plugins.lock and check its
    /// signature against [plugins] trusted_keys; exit 1 on any failure.
    Verify,
    /// Sign REF in its registry with a secret key (its manifest gets the
    /// signature of the component's digest).
    Sign {
        /// The reference (a tag).
        reference: String,
        /// The secret key file (see `keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Make a signing key: write the secret to FILE (mode 0600) and print
    /// the public key for [plugins] trusted_keys.
    Keygen {
        /// Where to write the secret key.
        file: PathBuf,
    },
}

/// Runs a registry subcommand.
pub fn run(config: &Config, command: RegistryCommand) -> anyhow::Result<ExitCode> {
    match command {
        RegistryCommand::Publish {
            file,
            reference,
            version,
            key,
            no_check,
        } => publish(config, &file, &reference, version, key.as_deref(), no_check),
        RegistryCommand::Install { reference } => {
            let r = PluginRef::parse(&reference)?;
            let locked = install(config, &r)?;
            println!(
                "installed {} as {} ({})",
                locked.reference, locked.name, locked.digest
            );
            println!("run `postern reload` to put it in service");
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Update { reference } => update(config, reference.as_deref()),
        RegistryCommand::Remove { reference } => remove(config, &reference),
        RegistryCommand::Verify => verify(config),
        RegistryCommand::Sign { reference, key } => {
            let secret = signature::read_secret_key(&key)?;
            let r = PluginRef::parse(&reference)?;
            let digest = block_on(postern_registry::sign(
                &r,
                |d| signature::sign(&secret, d),
                access(config),
            ))??;
            let id = signature::key_id(&secret.verifying_key());
            println!("signed {r} ({digest}) with key {id}");
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Keygen { file } => keygen(&file),
    }
}

fn block_on<T>(f: impl Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    Ok(rt.block_on(f))
}

/// The plugin directory's store; installed plugins need one.
fn store(config: &Config) -> anyhow::Result<Store> {
    match &config.main.plugin_directory {
        Some(dir) => Ok(Store::new(dir)),
        None => bail!("plugin_directory is not set: installed plugins live there"),
    }
}

/// The plugin directory's lock, held for a whole read-modify-write of
/// plugins.lock and the store (see [`Lock::hold`]).
fn hold(store: &Store) -> anyhow::Result<postern_registry::lock::Held> {
    Ok(Lock::hold(store.dir(), |path| {
        eprintln!(
            "postern: waiting for another `postern plugin` command (it holds {})",
            path.display()
        );
    })?)
}

/// How registries are reached: `[plugins] max_plugin_size` and
/// `[plugins.registries."HOST"]` (credentials, timeouts).
fn access(config: &Config) -> &postern_registry::Access {
    &config.policy.registry_access
}

/// The operator's trust, from `[plugins]`.
pub fn trust(config: &Config) -> anyhow::Result<Trust> {
    let p = &config.policy;
    Ok(Trust::new(&p.trusted_keys, p.require_signatures)?)
}

/// Whether a restriction entry names a registry reference.
fn is_reference(name: &str) -> bool {
    name.starts_with("oci://") || name.starts_with("file://")
}

/// The name of the installed plugin registry reference `reference` runs
/// as, through plugins.lock (local files only); the name itself for
/// anything else.
pub fn resolve_name(config: &Config, reference: &str) -> anyhow::Result<String> {
    if !is_reference(reference) {
        return Ok(reference.to_owned());
    }
    let store = store(config).with_context(|| format!("entry {reference}"))?;
    store
        .resolve(reference, &trust(config)?)
        .with_context(|| format!("entry {reference}"))
}

/// A restriction entry with a registry reference replaced by the name of
/// the installed plugin it resolves to through plugins.lock (local files
/// only); any other entry as it is.
pub fn resolve(config: &Config, item: &RestrictionItem) -> anyhow::Result<RestrictionItem> {
    let resolved = |reference: &str| resolve_name(config, reference);
    Ok(match item {
        RestrictionItem::Table(t) => {
            let mut t = t.clone();
            if let Some(name) = t.get_mut("plugin")
                && is_reference(name.trim())
            {
                *name = resolved(name.trim())?;
            }
            RestrictionItem::Table(t)
        }
        // `"oci://HOST/NS/NAME:TAG ARG..."`: the first word.
        RestrictionItem::Line(l) => match l.split_once(char::is_whitespace) {
            Some((first, rest)) if is_reference(first) => {
                RestrictionItem::Line(format!("{} {rest}", resolved(first)?))
            }
            None if is_reference(l.trim()) => RestrictionItem::Line(resolved(l.trim())?),
            _ => item.clone(),
        },
    })
}

/// Checks that `bytes` link as a plugin of this server: the policy runtime
/// loads them alone from a scratch directory, as a reload would (through
/// the server's compile cache, so the start that follows an install does
/// not compile them again).
fn check_links(
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

fn publish(
    config: &Config,
    file: &Path,
    reference: &str,
    version: Option<String>,
    key: Option<&Path>,
    no_check: bool,
) -> anyhow::Result<ExitCode> {
    let r = PluginRef::parse(reference)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !no_check {
        artifact::check_component(&file.display().to_string(), &bytes)?;
        let scratch = std::env::temp_dir().join(format!("postern-publish-{}", std::process::id()));
        let result = check_links(config, &Store::new(&scratch), reference, &r.name(), &bytes);
        let _ = std::fs::remove_dir_all(&scratch);
        result?;
    }
    let version = version.or_else(|| {
        r.tag
            .clone()
            .filter(|t| Version::parse(t.trim_start_matches('v')).is_ok())
    });
    if let Some(v) = &version {
        Version::parse(v.trim_start_matches('v'))
            .with_context(|| format!("--version {v}: not a semver version"))?;
    }
    let sig = match key {
        Some(path) => {
            let secret = signature::read_secret_key(path)?;
            Some(signature::sign(&secret, &artifact::digest(&bytes)))
        }
        None => None,
    };
    let (manifest, component) = block_on(postern_registry::publish(
        &r,
        &bytes,
        version.as_deref(),
        sig.as_ref(),
        access(config),
    ))??;
    println!("published {r}: manifest {manifest}, component {component}");
    Ok(ExitCode::SUCCESS)
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

fn update(config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
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

fn remove(config: &Config, reference: &str) -> anyhow::Result<ExitCode> {
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

fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let store = store(config)?;
    let trust = trust(config)?;
    let lock = Lock::load(store.dir())?;
    let mut failed = 0;
    for l in &lock.plugin {
        let world = if l.world == artifact::WORLD {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "world {}, this server runs {}",
                l.world,
                artifact::WORLD
            ))
        };
        match world.and_then(|()| Ok(store.check(l, &trust)?)) {
            Ok(()) => println!(
                "ok      {} {} {}",
                l.reference,
                l.digest,
                l.key
                    .as_deref()
                    .map_or("unsigned".to_owned(), |k| format!("key {k}"))
            ),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}: {e:#}", l.reference);
            }
        }
    }
    println!("{} installed, {failed} failed", lock.plugin.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn keygen(file: &Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let (secret, public) = signature::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(secret.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!("{}", signature::public_key_text(&public));
    eprintln!(
        "postern: secret key in {}, key id {}; put the line above in [plugins] trusted_keys",
        file.display(),
        signature::key_id(&public)
    );
    Ok(ExitCode::SUCCESS)
}

/// The installed references, for `postern plugin list`: one line each.
pub fn installed(config: &Config) -> Vec<String> {
    let Some(dir) = &config.main.plugin_directory else {
        return Vec::new();
    };
    let Ok(lock) = Lock::load(dir) else {
        return vec!["(plugins.lock cannot be read; run `postern plugin verify`)".to_owned()];
    };
    lock.plugin
        .iter()
        .map(|l| {
            format!(
                "{}  {}  {}  {}  {}",
                l.reference,
                l.name,
                l.version.as_deref().unwrap_or("-"),
                l.digest,
                l.key
                    .as_deref()
                    .map_or("unsigned".to_owned(), |k| format!("key {k}"))
            )
        })
        .collect()
}
