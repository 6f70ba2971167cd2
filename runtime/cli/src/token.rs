//! The admin token between `membrane serve` and `membrane reload`.
//!
//! When the manifest configures no token, `serve` makes one up at start and writes it to a
//! private file named after the admin listener's address, which `reload` finds from the same
//! address: `$MEMBRANE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/membrane`, else
//! `~/.cache/membrane/run`, as `admin-<IP>-<PORT>.token`. The directory is created with mode
//! 700 and refused when another user owns it or may write it; the file is created anew with
//! mode 600 (never through a link left in its place) and removed when `serve` ends.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::membrane::TokenSource;
use anyhow::{Context, bail};

/// The directory of token files.
fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MEMBRANE_RUNTIME_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Some(PathBuf::from(d).join("membrane"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/membrane/run"))
}

/// Where the made-up token of the admin listener at `admin` is kept.
pub fn path_for(admin: SocketAddr) -> Option<PathBuf> {
    Some(dir()?.join(format!("admin-{}-{}.token", admin.ip(), admin.port())))
}

/// A private directory of ours: created 700, refused if anyone else could change it.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o022 != 0 {
        bail!(
            "{} is not a private directory of this user (it is a link, another user's, or others can write it); \
             set MEMBRANE_RUNTIME_DIR to a directory only you can write",
            dir.display()
        );
    }
    Ok(())
}

/// Writes the made-up token of the listener at `admin`; returns the file's path.
pub fn write(admin: SocketAddr, token: &str) -> anyhow::Result<PathBuf> {
    let path = path_for(admin)
        .context("no directory for the admin token: set MEMBRANE_RUNTIME_DIR or HOME")?;
    let dir = path.parent().context("the token path has no directory")?;
    private_dir(dir)?;
    // A file left by an earlier server on this address (or anything planted there) goes;
    // the new one is created exclusively, so a link in its place is never followed.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", path.display())),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
    writeln!(f, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The token `membrane reload` sends to the listener at `admin`: the one the manifest
/// configures (file or environment), else the one a server made up for that address.
pub fn read(configured: Option<&TokenSource>, admin: SocketAddr) -> anyhow::Result<Option<String>> {
    let text = match configured {
        Some(TokenSource::Env(name)) => Some(std::env::var(name).with_context(|| {
            format!("the admin token is in ${name} ([app.admin] token_env), which is not set here")
        })?),
        Some(TokenSource::File(p)) => Some(std::fs::read_to_string(p).with_context(|| {
            format!(
                "cannot read the admin token from {} ([app.admin] token_file)",
                p.display()
            )
        })?),
        Some(_) => None,
        None => match path_for(admin) {
            Some(p) => match std::fs::read_to_string(&p) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
            },
            None => None,
        },
    };
    Ok(text.map(|t| t.trim().to_string()))
}
