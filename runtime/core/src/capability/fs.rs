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
//! outer grant. [`super::protect`] refuses the cases where a read-write grant would let a
//! module change what the host runs: a component file, the manifest, or the compiled-code
//! cache inside (or around) a read-write grant.

use std::any::Any;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::quota::{Quota, QuotaMap};
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::spec::{DirGrant, DirMode};
use crate::unit::{BlameCx, ModuleCx, Slots, Unit, UnitDef};

/// One granted directory, opened.
#[derive(Debug)]
pub struct OpenedDir {
    /// The path as the manifest gave it, for messages.
    pub host: PathBuf,
    pub mode: DirMode,
    /// The handle opened at load; it identifies the directory for the overlap checks.
    pub handle: Arc<OwnedFd>,
}

pub struct Filesystem {
    dirs: Vec<OpenedDir>,
    /// The preopens every instance gets: clones of one handle per grant.
    template: WasiFilesystemCtx,
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
pub fn validate_guest_path(guest: &str) -> std::result::Result<(), String> {
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

pub const DIR_FLAGS: OFlags = OFlags::RDONLY
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

/// Refuses a template built from something that is not procfs: the handles are passed to
/// wasmtime-wasi through `/proc/self/fd`, which must be the kernel's own.
fn check_procfs() -> std::io::Result<bool> {
    let st = rustix::fs::statfs("/proc/self/fd")?;
    Ok(st.f_type == rustix::fs::PROC_SUPER_MAGIC)
}

pub const DEF: UnitDef = UnitDef { validate, prepare };

/// The guest path as the guest sees it: no trailing slash, `/` for the root.
fn guest_of(grant: &DirGrant) -> &str {
    let guest = grant.guest.trim_end_matches('/');
    if guest.is_empty() { "/" } else { guest }
}

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, grant) in cx.spec.grants.dirs.iter().enumerate() {
        let key = cx.key(&format!("grants.dirs[{i}]"));
        let bad = |msg: String| {
            Error::manifest(format!("module `{}`: grants.dirs: {msg}", cx.name))
                .with_key(key.clone())
        };
        let guest = guest_of(grant);
        if let Err(msg) = validate_guest_path(guest) {
            problems.push(bad(msg));
            continue;
        }
        if seen.contains(&guest) {
            problems.push(bad(format!(
                "guest path {guest:?} is granted twice; keep one entry"
            )));
        }
        seen.push(guest);
        if (grant.quota.is_some() || grant.quota_files.is_some())
            && grant.mode != DirMode::ReadWrite
        {
            problems.push(bad(format!(
                "{guest:?} has a quota but is read-only; a quota bounds what a module writes, so give it \
                 to a grant with mode = \"rw\" or remove it"
            )));
        }
        if grant.host.as_os_str().is_empty() {
            problems.push(bad(
                "`host` is empty: give the host directory to grant".into()
            ));
        }
    }
}

fn prepare(cx: &ModuleCx<'_>, problems: &mut Problems) -> Option<Box<dyn Unit>> {
    let module = cx.name;
    let mut dirs = Vec::new();
    let mut guests: Vec<String> = Vec::new();
    let mut quotas = Vec::new();
    let before = problems.len();
    for (i, grant) in cx.spec.grants.dirs.iter().enumerate() {
        let key = cx.key(&format!("grants.dirs[{i}]"));
        let guest = guest_of(grant);
        match open_real_dir(&grant.host) {
            Ok(fd) => {
                let handle = Arc::new(fd);
                if grant.quota.is_some() || grant.quota_files.is_some() {
                    let quota = Arc::new(Quota::new(
                        grant.host.clone(),
                        handle.clone(),
                        grant.quota,
                        grant.quota_files,
                    ));
                    quota.register();
                    quotas.push((guest.to_string(), quota));
                }
                guests.push(guest.to_string());
                dirs.push(OpenedDir {
                    host: grant.host.clone(),
                    mode: grant.mode,
                    handle,
                });
            }
            Err(OpenFailure::Symlink(at)) => problems.push(
                Error::new(
                    ErrorKind::Denied,
                    format!(
                        "module `{module}`: grants.dirs: host path {} passes through the symbolic link {}; \
                         a grant must name a real directory (a module that can write next to a symlink could \
                         point it anywhere). Grant the directory itself",
                        grant.host.display(),
                        at.display()
                    ),
                )
                .with_key(key),
            ),
            Err(OpenFailure::NotDir(at)) => problems.push(
                Error::manifest(format!(
                    "module `{module}`: grants.dirs: host path {} is not a directory ({} is not one); \
                     grant its parent directory instead",
                    grant.host.display(),
                    at.display()
                ))
                .with_key(key),
            ),
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
                    .with_key(key)
                    .with_source(e),
                )
            }
        }
    }
    if dirs.is_empty() || problems.len() > before {
        return None;
    }
    match Filesystem::template(&dirs, &guests) {
        Ok(template) => Some(Box::new(Filesystem {
            dirs,
            template,
            quotas: Arc::new(quotas),
        })),
        Err(e) => {
            problems.push(
                e.context(format!("module `{module}`: grants.dirs"))
                    .with_key(cx.key("grants.dirs")),
            );
            None
        }
    }
}

impl Filesystem {
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

    /// The read-write grants, for the overlap checks ([`super::protect`]).
    pub fn writable(&self) -> impl Iterator<Item = &OpenedDir> {
        self.dirs.iter().filter(|d| d.mode == DirMode::ReadWrite)
    }
}

impl Unit for Filesystem {
    fn new_state(&self) -> Option<Box<dyn Any + Send>> {
        (!self.quotas.is_empty()).then(|| Box::new(QuotaMap::new(self.quotas.clone())) as _)
    }

    fn finish(&self, ctx: &mut WasiCtx) {
        *ctx.filesystem() = self.template.clone();
    }

    fn reset_state(&self, state: &mut (dyn Any + Send)) {
        if let Some(q) = state.downcast_mut::<QuotaMap>() {
            q.denied.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn blame(&self, slots: &Slots, cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        let q = slots.get::<QuotaMap>()?;
        q.denied.load(std::sync::atomic::Ordering::Relaxed).then(|| {
            (
                ErrorKind::DiskQuota,
                format!(
                    "module `{}`: {} failed after a write past the disk quota of one of its grants was refused; \
                     raise `quota` or `quota_files` of that entry of [modules.{}.grants] dirs",
                    cx.module, cx.what, cx.module
                ),
            )
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
