//! What a read-write grant must never reach: the files and directories that decide what
//! the host runs. A module that could write a component file (its own or another's) could
//! run its code with that module's grants; one that could write the manifest could grant
//! itself anything; one that could write the compiled-code cache could plant native code,
//! which is loaded without validation. Such apps are refused at load ([`check_overlaps`]).
//!
//! Directories are compared by identity (device and inode), walking up from an open
//! handle with `..`, so neither symlinks nor other names of the same directory fool the
//! check. What counts for a path is every directory it depends on ([`super::walk`]): where
//! the file lives, and where each directory and link on the way to it lives, so a grant
//! that holds a link to a component (and could re-point it) is refused like one that holds
//! the component. A component is read through the very handles its path was checked with
//! ([`read_component`]), and only if it is a regular file within the size limit.

use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::fs::OpenedDir;
pub use super::walk::DirId;
use super::walk::{Refused, ancestors, id_of, read_regular, walk};
use crate::error::{Error, ErrorKind, Problems};

/// The directories a file's path depends on (see [`super::walk`]): every directory an
/// entry on the way lives in, wherever its links lead, and every directory above those.
fn dirs_of(path: &Path) -> std::io::Result<Vec<DirId>> {
    Ok(walk(path)?.dirs)
}

/// Reads a component file of at most `max` bytes, and returns with its bytes the
/// directories its path depends on, read through the same handles (see [`read_regular`]).
pub fn read_component(path: &Path, max: u64) -> Result<(Vec<u8>, Vec<DirId>), Refused> {
    read_regular(path, max)
}

/// What a read-write grant must not reach: files and directories whose contents decide
/// what the host runs.
pub struct Protected<'a> {
    /// Component files by module, with the directories above them.
    pub components: Vec<(&'a str, &'a Path, &'a [DirId])>,
    /// The manifest the app was read from.
    pub manifest: Option<&'a Path>,
    /// The compiled-code cache: code loaded from it is not validated again.
    pub cache: Option<&'a Path>,
}

/// Refuses read-write grants that contain a component, the manifest or the cache, or that
/// lie inside the cache: a module could otherwise replace the code of a module (its own
/// included) with grants it was not given, or plant native code.
pub fn check_overlaps(
    writable: &[(&str, &OpenedDir)],
    protected: &Protected<'_>,
    problems: &mut Problems,
) {
    if writable.is_empty() {
        return;
    }
    let ids: Vec<(&str, &OpenedDir, DirId)> = writable
        .iter()
        .filter_map(|(m, d)| id_of(&d.handle).ok().map(|id| (*m, *d, id)))
        .collect();
    let refuse = |problems: &mut Problems, module: &str, dir: &OpenedDir, what: String| {
        problems.push(Error::new(
            ErrorKind::Denied,
            format!(
                "module `{module}`: grants.dirs: the read-write grant {} contains {what}; a module that may write there \
                 could change what the host runs. Move it out of the grant, or make the grant read-only (mode = \"ro\")",
                dir.host.display()
            ),
        )
        .with_module(module)
        .with_key(format!("modules.{module}.grants.dirs")));
    };
    let mut files: Vec<(String, Vec<DirId>)> = protected
        .components
        .iter()
        .map(|(m, p, above)| {
            (
                format!("the component of module `{m}` ({})", p.display()),
                above.to_vec(),
            )
        })
        .collect();
    if let Some(m) = protected.manifest
        && let Ok(above) = dirs_of(m)
    {
        files.push((format!("the manifest {}", m.display()), above));
    }
    for (what, above) in files {
        for (module, dir, id) in &ids {
            if above.contains(id) {
                refuse(problems, module, dir, what.clone());
            }
        }
    }
    if let Some(cache) = protected.cache {
        // The cache directory itself, every directory above it, and every directory its
        // path depends on (a link on the way to it counts like one on the way to a
        // component).
        let Ok(w) = walk(cache) else {
            return;
        };
        let Ok(cache_id) = id_of(&w.entry) else {
            return;
        };
        let mut above = w.dirs;
        above.push(cache_id);
        for (module, dir, id) in &ids {
            let inside_cache = rustix::fs::openat(
                &*dir.handle,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(std::io::Error::from)
            .and_then(ancestors)
            .is_ok_and(|a| a.contains(&cache_id));
            if above.contains(id) || inside_cache {
                refuse(
                    problems,
                    module,
                    dir,
                    format!(
                        "or overlaps the compiled-code cache {} (set MEMBRANE_CACHE_DIR elsewhere)",
                        cache.display()
                    ),
                );
            }
        }
    }
}
