//! `membrane lock`: resolve every `oci://` component to its digests and write
//! `membrane.lock` beside the manifest (the format is in membrane-spec's `manifest/lock.rs`
//! and docs/guide/registries.md).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use membrane_core::manifest::{Lock, LockEntry};
use membrane_core::spec::oci::Locked;
use membrane_oci::OciError;

use crate::membrane::{ComponentSource, Manifest};
use crate::output::{out, report, say};

/// Pin every oci:// component to its digests in membrane.lock, beside the manifest.
///
/// Each reference's tag is resolved afresh (an existing lock is not read), the artifact is
/// pulled into the cache and verified, and the lock is written only when every module
/// resolved. Loading the manifest then pulls exactly the locked digests.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
}

/// Runs `membrane lock`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let m = Manifest::from_file_unlocked(&a.manifest)?;
    let lock_path = Lock::beside(&m.path);
    let max = m.app.component_size_limit();
    let wanted: Vec<(&String, &membrane_core::OciRef)> = m
        .app
        .modules()
        .iter()
        .filter_map(|(name, spec)| match spec.source() {
            ComponentSource::Oci(r) => Some((name, r)),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        out(&format!(
            "{} has no oci:// component; nothing to lock\n",
            m.path.display()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(fetcher) = crate::config::fetcher() else {
        bail!("no cache directory to pull into: set MEMBRANE_CACHE_DIR or HOME");
    };
    let mut lock = Lock::default();
    let mut failed = false;
    for (name, r) in wanted {
        match fetcher.pull(r, max).await {
            Ok(pulled) => {
                lock.modules.insert(
                    name.clone(),
                    LockEntry {
                        reference: r.clone(),
                        locked: Locked {
                            manifest: pulled.manifest,
                            component: pulled.component,
                        },
                    },
                );
            }
            Err(e) => {
                failed = true;
                report(&anyhow::Error::new(error_of(e, name, &m)));
            }
        }
    }
    if failed {
        say(&format!(
            "{} not written: every oci:// component must resolve",
            lock_path.display()
        ));
        return Ok(ExitCode::FAILURE);
    }
    write_atomically(&lock_path, lock.to_toml().as_bytes())
        .with_context(|| format!("cannot write {}", lock_path.display()))?;
    let mut text = String::new();
    for (name, entry) in &lock.modules {
        text.push_str(&format!(
            "{name}\t{}\tmanifest {}\tcomponent {}\n",
            entry.reference, entry.locked.manifest, entry.locked.component
        ));
    }
    text.push_str(&format!(
        "wrote {} ({} module(s))\n",
        lock_path.display(),
        lock.modules.len()
    ));
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Membrane's error for module `name`, at its `component` line.
fn error_of(e: OciError, name: &str, m: &Manifest) -> membrane_core::Error {
    let mut e = e.into_error(Some(name));
    if let Some(at) = m
        .app
        .locations
        .as_deref()
        .and_then(|l| l.find(&format!("modules.{name}.component")))
    {
        e.set_location(at);
    }
    e
}

/// Writes `path` whole or not at all: a temporary file beside it, renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("lock.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
