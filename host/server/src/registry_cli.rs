//! `postern plugin publish|install|update|remove|verify|sign|keygen`:
//! plugins shared through OCI registries (or a layout directory), pinned
//! by digest in `plugin_directory/plugins.lock`, and the resolution of
//! `{ plugin = "oci://..." }` chain entries at start and reload.
//!
//! This file has the commands' words, the author's side (`publish`,
//! `sign`, `keygen`), `verify`, the listing and the shared set-up;
//! [`crate::registry_install`] has install, update and remove. Nothing
//! installed runs until `postern reload` (or a start). Start and reload
//! read only the lock and the store: never the network.

#![allow(clippy::print_stdout, reason = "the commands answer on stdout")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use postern_registry::{Lock, PluginRef, Store, Trust, Version, artifact, signature};

use crate::config::{Config, RestrictionItem};
use crate::registry_install;

/// The registry subcommands of `postern plugin`.
// clap prints these comments as `--help`, where `[plugins]` is the
// config table and `REF[@sha256:DIGEST]` a usage pattern, not links.
#[allow(rustdoc::broken_intra_doc_links)]
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
            let locked = registry_install::install(config, &r)?;
            println!(
                "installed {} as {} ({})",
                locked.reference, locked.name, locked.digest
            );
            println!("run `postern reload` to put it in service");
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Update { reference } => {
            registry_install::update(config, reference.as_deref())
        }
        RegistryCommand::Remove { reference } => registry_install::remove(config, &reference),
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

pub(crate) fn block_on<T>(f: impl Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    Ok(rt.block_on(f))
}

/// The plugin directory's store; installed plugins need one.
pub(crate) fn store(config: &Config) -> anyhow::Result<Store> {
    match &config.main.plugin_directory {
        Some(dir) => Ok(Store::new(dir)),
        None => bail!("plugin_directory is not set: installed plugins live there"),
    }
}

/// The plugin directory's lock, held for a whole read-modify-write of
/// plugins.lock and the store (see [`Lock::hold`]).
pub(crate) fn hold(store: &Store) -> anyhow::Result<postern_registry::lock::Held> {
    Ok(Lock::hold(store.dir(), |path| {
        eprintln!(
            "postern: waiting for another `postern plugin` command (it holds {})",
            path.display()
        );
    })?)
}

/// How registries are reached: `[plugins] max_plugin_size` and
/// `[plugins.registries."HOST"]` (credentials, timeouts).
pub(crate) fn access(config: &Config) -> &postern_registry::Access {
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
        let result = registry_install::check_links(
            config,
            &Store::new(&scratch),
            reference,
            &r.name(),
            &bytes,
        );
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
