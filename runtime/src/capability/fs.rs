//! Filesystem: preopened host directories, read-only or read-write.
//!
//! Enforcement is wasmtime-wasi's preopens on top of cap-std: every path a guest opens is
//! resolved beneath a preopened directory handle, so `..`, absolute paths and symlinks that
//! lead outside the grant fail with a WASI error. A read-only grant refuses every mutation,
//! including truncation and renames or links into it. Nothing outside the listed directories
//! exists for the guest.
//!
//! Every granted directory is opened once, when the app loads, and never again by name:
//! instances get clones of that handle. The path is walked one component at a time without
//! following symbolic links, so a grant whose path passes through a symlink is refused. This
//! matters when grants nest: a module with a read-write grant of `box` can rename
//! `box/inner` away and plant a symlink in its place, but another module's grant of
//! `box/inner` keeps the directory it was given, and the next load refuses the symlink
//! instead of following it wherever it points.
//!
//! Nested grants are allowed and mean what they say: a module that may write the outer
//! directory may change what a module with the inner grant sees (files, subdirectories,
//! even which directory sits at the inner path for the next load), but never beyond the
//! outer grant. [`check_overlaps`] refuses the cases where a read-write grant would let a
//! module change what the host runs: a component file, the manifest, or the compiled-code
//! cache inside (or around) a read-write grant.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::quota::Quota;
use super::{Capability, InstanceCx};
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::spec::{DirMode, Grants};

/// One granted directory, opened.
#[derive(Debug)]
pub(crate) struct OpenedDir {
    /// The path as the manifest gave it, for messages.
    pub host: PathBuf,
    pub mode: DirMode,
    /// The handle opened at load; it identifies the directory for the overlap checks.
    handle: Arc<OwnedFd>,
}

pub(crate) struct Filesystem {
    dirs: Vec<OpenedDir>,
    /// The preopens every instance gets: clones of one handle per grant.
    template: Option<WasiFilesystemCtx>,
    /// Grants with a disk quota, by guest path.
    quotas: Arc<Vec<(String, Arc<Quota>)>>,
}

impl std::fmt::Debug for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filesystem")
            .field("dirs", &self.dirs)
            .finish()
    }
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

/// Why a granted directory could not be opened.
enum OpenFailure {
    Symlink(PathBuf),
    NotDir(PathBuf),
    Io(PathBuf, std::io::Error),
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens `path` as a directory, one component at a time, refusing symbolic links at every
/// step (a symlink's target is whatever its author wants it to be).
fn open_real_dir(path: &Path) -> std::result::Result<OwnedFd, OpenFailure> {
    let start = if path.is_absolute() { "/" } else { "." };
    let mut walked = PathBuf::from(if path.is_absolute() { "/" } else { "" });
    let mut cur = rustix::fs::openat(CWD, start, DIR_FLAGS, Mode::empty())
        .map_err(|e| OpenFailure::Io(walked.clone(), e.into()))?;
    for component in path.components() {
        let name: &OsStr = match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => continue,
            Component::ParentDir => OsStr::new(".."),
            Component::Normal(n) => n,
        };
        walked.push(name);
        match rustix::fs::openat(&cur, name, DIR_FLAGS, Mode::empty()) {
            Ok(next) => cur = next,
            Err(e) => {
                let st = rustix::fs::statat(&cur, name, AtFlags::SYMLINK_NOFOLLOW);
                return Err(match st {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                        OpenFailure::Symlink(walked)
                    }
                    Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {
                        OpenFailure::NotDir(walked)
                    }
                    _ => OpenFailure::Io(walked, e.into()),
                });
            }
        }
    }
    Ok(cur)
}

/// A directory's identity: device and inode.
type DirId = (u64, u64);

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

/// Refuses a template built from something that is not procfs: the handles are passed to
/// wasmtime-wasi through `/proc/self/fd`, which must be the kernel's own.
fn check_procfs() -> std::io::Result<bool> {
    let st = rustix::fs::statfs("/proc/self/fd")?;
    Ok(st.f_type == rustix::fs::PROC_SUPER_MAGIC)
}

impl Filesystem {
    pub(crate) fn prepare(module: &str, grants: &Grants, problems: &mut Problems) -> Self {
        let mut dirs = Vec::new();
        let mut guests: Vec<String> = Vec::new();
        let mut quotas = Vec::new();
        for grant in &grants.dirs {
            let guest = grant.guest.trim_end_matches('/');
            let guest = if guest.is_empty() { "/" } else { guest };
            if let Err(msg) = validate_guest_path(guest) {
                problems.push(Error::manifest(format!(
                    "module `{module}`: grants.dirs: {msg}"
                )));
                continue;
            }
            if guests.iter().any(|g| g == guest) {
                problems.push(Error::manifest(format!(
                    "module `{module}`: grants.dirs: guest path {guest:?} is granted twice; keep one entry"
                )));
                continue;
            }
            let wants_quota = grant.quota.is_some() || grant.quota_files.is_some();
            if wants_quota && grant.mode != DirMode::ReadWrite {
                problems.push(Error::manifest(format!(
                    "module `{module}`: grants.dirs: {guest:?} has a quota but is read-only; a quota bounds \
                     what a module writes, so give it to a grant with mode = \"rw\" or remove it"
                )));
                continue;
            }
            match open_real_dir(&grant.host) {
                Ok(fd) => {
                    let handle = Arc::new(fd);
                    if wants_quota {
                        quotas.push((
                            guest.to_string(),
                            Arc::new(Quota::new(
                                grant.host.clone(),
                                handle.clone(),
                                grant.quota,
                                grant.quota_files,
                            )),
                        ));
                    }
                    guests.push(guest.to_string());
                    dirs.push(OpenedDir {
                        host: grant.host.clone(),
                        mode: grant.mode,
                        handle,
                    });
                }
                Err(OpenFailure::Symlink(at)) => problems.push(Error::new(
                    ErrorKind::Denied,
                    format!(
                        "module `{module}`: grants.dirs: host path {} passes through the symbolic link {}; \
                         a grant must name a real directory (a module that can write next to a symlink could \
                         point it anywhere). Grant the directory itself",
                        grant.host.display(),
                        at.display()
                    ),
                )),
                Err(OpenFailure::NotDir(at)) => problems.push(Error::manifest(format!(
                    "module `{module}`: grants.dirs: host path {} is not a directory ({} is not one); \
                     grant its parent directory instead",
                    grant.host.display(),
                    at.display()
                ))),
                Err(OpenFailure::Io(at, e)) => {
                    let kind = if e.kind() == std::io::ErrorKind::NotFound {
                        ErrorKind::NotFound
                    } else {
                        ErrorKind::Io
                    };
                    problems.push(
                        Error::new(
                            kind,
                            format!(
                                "module `{module}`: grants.dirs: host directory {} cannot be opened (at {}); \
                                 create it or fix `host`",
                                grant.host.display(),
                                at.display()
                            ),
                        )
                        .with_source(e),
                    )
                }
            }
        }
        let template = if dirs.is_empty() || !problems.is_empty() {
            None
        } else {
            match Self::template(&dirs, &guests) {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.push(e.context(format!("module `{module}`: grants.dirs")));
                    None
                }
            }
        };
        Filesystem {
            dirs,
            template,
            quotas: Arc::new(quotas),
        }
    }

    /// The grants with a quota, by guest path.
    pub(crate) fn quotas(&self) -> &Arc<Vec<(String, Arc<Quota>)>> {
        &self.quotas
    }

    /// Builds the preopens once; instances get clones that share the handles.
    fn template(dirs: &[OpenedDir], guests: &[String]) -> Result<WasiFilesystemCtx> {
        match check_procfs() {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    "cannot hand granted directories to instances: /proc/self/fd is not the kernel's procfs; mount /proc",
                ));
            }
            Err(e) => {
                return Err(Error::io(
                    "cannot hand granted directories to instances: /proc/self/fd is missing; mount /proc",
                    e,
                ));
            }
        }
        let mut builder = WasiCtxBuilder::new();
        // Must come first: each preopen records it when it is added.
        builder.allow_blocking_current_thread(true);
        for (dir, guest) in dirs.iter().zip(guests) {
            let perms = match dir.mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            // wasmtime-wasi opens preopens by path only; `/proc/self/fd/N` resolves to the
            // very directory of our handle (by reference, not by name), however it was
            // renamed or replaced since.
            let path = format!("/proc/self/fd/{}", dir.handle.as_raw_fd());
            builder.preopened_dir(&path, guest, perms).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot reopen granted directory {}", dir.host.display()),
                )
                .with_source(e)
            })?;
        }
        let mut ctx = builder.build();
        Ok(ctx.filesystem().clone())
    }

    /// The read-write grants, for [`check_overlaps`].
    pub(crate) fn writable(&self) -> impl Iterator<Item = &OpenedDir> {
        self.dirs.iter().filter(|d| d.mode == DirMode::ReadWrite)
    }
}

impl Capability for Filesystem {
    fn apply(&self, _wasi: &mut WasiCtxBuilder, _cx: &InstanceCx<'_>) -> Result<()> {
        Ok(())
    }

    fn finish(&self, ctx: &mut WasiCtx) {
        if let Some(t) = &self.template {
            *ctx.filesystem() = t.clone();
        }
    }
}

/// What a read-write grant must not reach: files and directories whose contents decide
/// what the host runs.
pub(crate) struct Protected<'a> {
    /// Component files by module.
    pub components: Vec<(&'a str, &'a Path)>,
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
        ));
    };
    let mut files: Vec<(String, &Path)> = protected
        .components
        .iter()
        .map(|(m, p)| {
            (
                format!("the component of module `{m}` ({})", p.display()),
                *p,
            )
        })
        .collect();
    if let Some(m) = protected.manifest {
        files.push((format!("the manifest {}", m.display()), m));
    }
    for (what, path) in files {
        let Ok(above) = ancestors_of_file(path) else {
            continue;
        };
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
