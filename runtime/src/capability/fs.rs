//! Filesystem: preopened host directories, read-only or read-write.
//!
//! Enforcement is wasmtime-wasi's preopens on top of cap-std: every path a guest opens is
//! resolved beneath a preopened directory handle, so `..`, absolute paths and symlinks that
//! lead outside the grant fail with a WASI error. A read-only grant refuses every mutation,
//! including truncation and renames or links into it. Nothing outside the listed directories
//! exists for the guest.

use std::path::PathBuf;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::{Capability, InstanceCx};
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::spec::{DirMode, Grants};

#[derive(Debug)]
pub(crate) struct Filesystem {
    dirs: Vec<(PathBuf, String, DirMode)>,
}

/// Checks the guest side of a directory grant.
pub(crate) fn validate_guest_path(guest: &str) -> std::result::Result<(), String> {
    if !guest.starts_with('/') {
        return Err(format!(
            "guest path {guest:?} must be absolute, like \"/data\""
        ));
    }
    if guest.split('/').any(|c| c == ".." || c == ".") {
        return Err(format!("guest path {guest:?} must not contain '.' or '..'"));
    }
    Ok(())
}

impl Filesystem {
    pub(crate) fn prepare(module: &str, grants: &Grants, problems: &mut Problems) -> Self {
        let mut dirs = Vec::new();
        for grant in &grants.dirs {
            let guest = grant.guest.trim_end_matches('/');
            let guest = if guest.is_empty() { "/" } else { guest };
            if let Err(msg) = validate_guest_path(guest) {
                problems.push(Error::manifest(format!(
                    "module `{module}`: grants.dirs: {msg}"
                )));
                continue;
            }
            if dirs.iter().any(|(_, g, _)| g == guest) {
                problems.push(Error::manifest(format!(
                    "module `{module}`: grants.dirs: guest path {guest:?} is granted twice; keep one entry"
                )));
                continue;
            }
            match std::fs::canonicalize(&grant.host) {
                Ok(host) if host.is_dir() => dirs.push((host, guest.to_string(), grant.mode)),
                Ok(host) => problems.push(Error::manifest(format!(
                    "module `{module}`: grants.dirs: host path {} is not a directory; grant its parent directory instead",
                    host.display()
                ))),
                Err(e) => problems.push(
                    Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "module `{module}`: grants.dirs: host directory {} cannot be opened; create it or fix `host`",
                            grant.host.display()
                        ),
                    )
                    .with_source(e),
                ),
            }
        }
        Filesystem { dirs }
    }
}

impl Capability for Filesystem {
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()> {
        for (host, guest, mode) in &self.dirs {
            let perms = match mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(host, guest, perms).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!(
                        "module `{}`: cannot open granted directory {}: {e}",
                        cx.module,
                        host.display()
                    ),
                )
            })?;
        }
        Ok(())
    }
}
