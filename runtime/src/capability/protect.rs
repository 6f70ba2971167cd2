//! What a read-write grant must never reach: the files and directories that decide what
//! the host runs. A module that could write a component file (its own or another's) could
//! run its code with that module's grants; one that could write the manifest could grant
//! itself anything; one that could write the compiled-code cache could plant native code,
//! which is loaded without validation. Such apps are refused at load ([`check_overlaps`]).
//!
//! Directories are compared by identity (device and inode), walking up from an open
//! handle with `..`, so neither symlinks nor other names of the same directory fool the
//! check; a component is read through the very directory handle whose ancestors are
//! checked ([`read_component`]).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags};

use super::fs::{DIR_FLAGS, OpenedDir};
use crate::error::{Error, ErrorKind, Problems};

/// A directory's identity: device and inode.
pub(crate) type DirId = (u64, u64);

fn id_of(fd: &OwnedFd) -> std::io::Result<DirId> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// The identities of a directory and of every directory above it, up to the root.
fn ancestors(fd: OwnedFd) -> std::io::Result<Vec<DirId>> {
    let mut ids = vec![id_of(&fd)?];
    let mut cur = fd;
    // Deeper than any real tree; stops a loop on a broken file system.
    for _ in 0..4096 {
        let parent = rustix::fs::openat(
            &cur,
            "..",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let id = id_of(&parent)?;
        if ids.last() == Some(&id) {
            break;
        }
        ids.push(id);
        cur = parent;
    }
    Ok(ids)
}

/// The directories holding the file at `path`, wherever its symlinks lead.
fn ancestors_of_file(path: &Path) -> std::io::Result<Vec<DirId>> {
    let real = std::fs::canonicalize(path)?;
    let parent = real.parent().unwrap_or(Path::new("/"));
    let fd = rustix::fs::openat(
        CWD,
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    ancestors(fd)
}

/// Reads a component file, and returns with its bytes the identities of the directories
/// above it (wherever its symlinks lead), read through the same directory handle.
pub(crate) fn read_component(path: &Path) -> std::io::Result<(Vec<u8>, Vec<DirId>)> {
    let real = std::fs::canonicalize(path)?;
    let parent = real.parent().unwrap_or(Path::new("/"));
    let dir = rustix::fs::openat(
        CWD,
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let name = real.file_name().unwrap_or_default();
    let file = rustix::fs::openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut bytes = Vec::new();
    std::fs::File::from(file).read_to_end(&mut bytes)?;
    Ok((bytes, ancestors(dir)?))
}

/// What a read-write grant must not reach: files and directories whose contents decide
/// what the host runs.
pub(crate) struct Protected<'a> {
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
pub(crate) fn check_overlaps(
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
        && let Ok(above) = ancestors_of_file(m)
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
        let fd = rustix::fs::openat(CWD, cache, DIR_FLAGS, Mode::empty());
        let Ok(above) = fd.map_err(std::io::Error::from).and_then(ancestors) else {
            return;
        };
        let cache_id = above[0];
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
