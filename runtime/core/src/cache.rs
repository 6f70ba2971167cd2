//! The compiled-component cache: compiling is the slow part of loading, so compiled code is
//! kept on disk, keyed by the SHA-256 of the component's bytes, in a directory named after
//! the engine's compatibility hash (wasmtime version and compilation settings).
//!
//! Loading compiled code skips wasmtime's validation, so the cache is only ever filled by
//! Membrane itself: a user-supplied precompiled file is never loaded, the directory is
//! created private (0700), and a directory that others can write to is refused.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

/// The cache directory the `membrane` command uses: `$MEMBRANE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/membrane`, else `$HOME/.cache/membrane`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MEMBRANE_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("membrane"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("membrane"))
}

/// Creates `dir` (and its parents) private to this user (0700), and refuses it when others
/// can write to it: what is kept there decides code the host runs.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Error::io(
                format!("cannot create the cache directory {}", dir.display()),
                e,
            )
        })?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| {
            Error::io(
                format!("cannot read the cache directory {}", dir.display()),
                e,
            )
        })?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "the cache directory {} can be written by other users (mode {:o}); compiled code from it cannot be trusted. \
                 Run `chmod 700` on it or choose another directory",
                dir.display(),
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

impl Cache {
    pub fn open(root: &Path, engine: &Engine) -> Result<Cache> {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        private_dir(root)?;
        let dir = root.join(format!("{:016x}", h.finish()));
        private_dir(&dir)?;
        Ok(Cache { dir })
    }

    /// Returns the compiled component for `bytes`, from the cache or freshly compiled (and
    /// then stored). A damaged or stale entry is recompiled, not trusted.
    /// `key` is [`digest`] of the bytes.
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        key: &str,
    ) -> wasmtime::Result<Component> {
        let t = std::time::Instant::now();
        let path = self.dir.join(format!("{key}.cwasm"));
        // Read into memory rather than map the file: a mapped file that someone truncates
        // would crash the process with SIGBUS.
        if let Ok(artifact) = std::fs::read(&path) {
            // SAFETY: files in this private directory are only written by `store` below,
            // from code this engine compiled; wasmtime also checks the engine compatibility
            // header and refuses an artifact of another version or configuration.
            tracing::trace!(target: "membrane::cache", elapsed = ?t.elapsed(), bytes = artifact.len(), "read");
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(c) => {
                    tracing::trace!(target: "membrane::cache", elapsed = ?t.elapsed(), "deserialized");
                    return Ok(c);
                }
                Err(e) => {
                    tracing::warn!(target: "membrane::cache", path = %path.display(), "recompiling a bad cache entry: {e}")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(target: "membrane::cache", path = %path.display(), "cannot store compiled code: {e}");
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, path)
    }
}

/// A new file with a unique name in `dir`, created exclusively.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut n = 0u32;
    loop {
        let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The SHA-256 of component bytes, in hex: the cache key, and the hash a module's
/// generation shows in `App::status`.
pub fn digest(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
