//! The Landlock layer: filesystem access beneath the granted directories only, TCP rules
//! when the module has no network grant, and scoping of signals and abstract unix sockets.
//!
//! The rules are written for one ABI, [`TARGET`] (7, what these machines run and what the
//! tests exercise); the `landlock` crate drops what an older kernel cannot enforce and
//! reports it, and [`super::Support::missing`] turns that into "weaker". Rights of later
//! ABIs (pathname unix sockets, UDP) are not asked for: seccomp refuses unix socket
//! creation and, without a network grant, every new socket.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ::landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use super::{Enforcement, Plan};
use crate::error::{Error, ErrorKind, Result};

/// The ABI the rules are written for.
const TARGET: ABI = ABI::V7;

/// The first ABI that restricts every filesystem right of [`TARGET`] (`IoctlDev` came
/// with 5, `Truncate` with 3, `Refer` with 2).
pub(super) const FILESYSTEM_ABI: u32 = 5;
/// The first ABI with TCP bind and connect rules.
pub(super) const NETWORK_ABI: u32 = 4;
/// The first ABI that scopes signals and abstract unix sockets.
pub(super) const SCOPE_ABI: u32 = 6;

/// Files a resolver reads to look a name up (glibc's `getaddrinfo` with `files dns`, the
/// only NSS modules built into glibc since 2.34). Others named in nsswitch.conf fail to
/// load and are skipped, which is what a named grant needs.
const RESOLVER_FILES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
];

/// The flag of `landlock_create_ruleset` that asks for the ABI version (uapi/linux/landlock.h).
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

/// The running kernel's Landlock ABI, 0 when it has none (not built in, or disabled at
/// boot). Applies nothing.
pub(super) fn kernel_abi() -> u32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only
    // returns the ABI version (or -1 with ENOSYS / EOPNOTSUPP); it creates nothing.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).unwrap_or(0)
}

/// Whether a kernel with Landlock `abi` restricts every filesystem right the rules use.
pub(super) fn filesystem_complete(abi: u32) -> bool {
    abi >= FILESYSTEM_ABI
}

/// The filesystem rights of [`TARGET`] a kernel with Landlock `abi` cannot restrict, by
/// name ("all" when it has no Landlock).
pub(super) fn rights_missing(abi: u32) -> String {
    if abi == 0 {
        return "all rights".to_string();
    }
    let have = AccessFs::from_all(ABI::from(abi as i32));
    let names: Vec<String> = (AccessFs::from_all(TARGET) & !have)
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    names.join(", ")
}

/// Read beneath a read-only grant: files and listings. No `Execute`: nothing the worker
/// maps from a grant is run as a program.
fn read_rights() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

/// Read and write beneath a read-write grant: what WASI's filesystem can do (create,
/// remove, rename and link within grants, symlinks, truncate). Not `Execute`, not device
/// or socket nodes, not device ioctls.
fn write_rights() -> BitFlags<AccessFs> {
    read_rights()
        | AccessFs::WriteFile
        | AccessFs::RemoveDir
        | AccessFs::RemoveFile
        | AccessFs::MakeDir
        | AccessFs::MakeReg
        | AccessFs::MakeSym
        | AccessFs::Refer
        | AccessFs::Truncate
}

/// Applies the ruleset to the calling thread (and its later threads). Returns the
/// kernel's ABI and how much was enforced.
pub(super) fn restrict(plan: &Plan) -> Result<(u32, Enforcement)> {
    let failed = |e: ::landlock::RulesetError| {
        Error::new(ErrorKind::Io, "the worker cannot apply its Landlock rules").with_source(e)
    };
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET))
        .map_err(failed)?;
    if !plan.network {
        // Handled and never allowed: every TCP bind and connect is refused.
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TARGET))
            .map_err(failed)?;
    }
    let mut created = ruleset
        .scope(Scope::from_all(TARGET))
        .map_err(failed)?
        .create()
        .map_err(failed)?;
    for dir in &plan.ro {
        created = created
            .add_rule(PathBeneath::new(open_dir(dir)?, read_rights()))
            .map_err(failed)?;
    }
    for dir in &plan.rw {
        created = created
            .add_rule(PathBeneath::new(open_dir(dir)?, write_rights()))
            .map_err(failed)?;
    }
    if plan.names {
        for file in RESOLVER_FILES {
            // Absent files are skipped; a symlink (resolv.conf often is one) is followed
            // and the rule is on its target, which is what the resolver opens.
            if let Ok(fd) = PathFd::new(file) {
                created = created
                    .add_rule(PathBeneath::new(fd, AccessFs::ReadFile))
                    .map_err(failed)?;
            }
        }
    }
    let status = created.restrict_self().map_err(failed)?;
    let abi = match status.landlock {
        ::landlock::LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
        _ => 0,
    };
    let enforcement = match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Full,
        RulesetStatus::PartiallyEnforced => Enforcement::Partial,
        RulesetStatus::NotEnforced => Enforcement::None,
    };
    Ok((abi, enforcement))
}

/// Opens a granted directory for a rule without following a symbolic link in its last
/// component: the host refused grants through symlinks, and a link swapped in since must
/// not move the rule elsewhere.
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        Error::new(
            ErrorKind::Denied,
            format!("granted directory {} has a NUL byte", dir.display()),
        )
    })?;
    // SAFETY: a NUL-terminated path and flags that take no mode.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::io(
            format!(
                "the worker cannot open granted directory {} for its sandbox",
                dir.display()
            ),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rights_are_named_by_abi() {
        assert_eq!(rights_missing(0), "all rights");
        assert_eq!(rights_missing(4), "IoctlDev");
        assert_eq!(rights_missing(2), "Truncate, IoctlDev");
        assert!(rights_missing(5).is_empty());
        assert!(filesystem_complete(7) && !filesystem_complete(4));
    }

    #[test]
    fn grants_never_include_execute() {
        assert!(!write_rights().contains(AccessFs::Execute));
        assert!(write_rights().contains(read_rights()));
        assert!((AccessFs::from_all(TARGET)).contains(write_rights()));
    }
}
