//! The OS-level sandbox of a worker process (`placement = "process"`).
//!
//! A worker runs one module's instances. Before it touches the component it calls
//! `lock_down` with the module's `Plan`, while it is still the process's only thread:
//! Landlock and seccomp (applied without TSYNC) bind the calling thread and the threads it
//! starts later, never threads that exist already.
//!
//! The layers, in the order they are applied:
//! - `no_new_privs` (prctl): no set-uid or file-capability gain, and the precondition of the
//!   two layers below for an unprivileged process;
//! - resource limits (`rlimits`): no core files, the plan's data and descriptor limits;
//! - Landlock (`landlock`): read-only and read-write access beneath exactly the granted
//!   directories and nothing else on the filesystem; with no network grant, no TCP bind or
//!   connect (ABI 4); no signals to, and no abstract unix sockets of, processes outside the
//!   sandbox (ABI 6);
//! - seccomp (`seccomp`): an allow-list of system calls; no process creation, no exec, no
//!   ptrace, no namespaces, no new sockets without a network grant. A refused call fails
//!   with an errno (EPERM, ENOSYS for `clone3`), so a missing entry is diagnosable.
//!
//! What is guaranteed: after `lock_down` returns `Ok`, every layer is applied in full, or
//! the plan said `allow_weaker` and `Applied::missing` says what is not. What is not:
//! this is no container. There are no namespaces and no cgroups; the kernel is shared; file
//! metadata outside the grants (stat, access) stays visible because Landlock does not
//! restrict it. See SECURITY.md, "Process placement: the worker sandbox".
//!
//! `MEMBRANE_SANDBOX_LANDLOCK=off` makes `support` and
//! `lock_down` behave as on a kernel without Landlock. It exists to test the refusal and
//! the `allow_weaker_sandbox` path; it only ever weakens the sandbox, and a module is still
//! refused unless its manifest accepts the weaker sandbox.

pub(crate) mod descriptors;
mod landlock;
#[cfg(feature = "test-hooks")]
pub(crate) mod probe;
mod rlimits;
mod seccomp;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The environment variable that simulates a kernel without Landlock (value `off`), for
/// tests of the refusal and of `allow_weaker_sandbox`.
pub(crate) const LANDLOCK_OVERRIDE_ENV: &str = "MEMBRANE_SANDBOX_LANDLOCK";

/// What a worker's sandbox allows: built by the host from the module's grants and limits,
/// sent to the worker as JSON.
///
/// Everything not listed is denied: no file outside `ro` and `rw`, no new socket unless
/// `network`, no exec, no new process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Plan {
    /// Host directories the worker may read beneath (files and listings; never execute).
    pub ro: Vec<PathBuf>,
    /// Host directories the worker may read and write beneath: create, remove, rename and
    /// link within them, truncate.
    pub rw: Vec<PathBuf>,
    /// The module has `grants.network` or `grants.http` entries: the worker may create
    /// TCP/UDP sockets (IPv4 and IPv6 only). The in-process WASI layer checks each
    /// destination; the kernel does not.
    pub network: bool,
    /// A network or HTTP destination is a name: the worker may read the resolver's
    /// configuration (/etc/resolv.conf, /etc/hosts, /etc/nsswitch.conf, /etc/gai.conf,
    /// /etc/host.conf, where present).
    pub names: bool,
    /// RLIMIT_DATA in bytes: what the worker may make writable in all (wasm memories,
    /// tables, the runtime's heap, and every thread's and fiber's stack, which are private
    /// writable mappings too). Reserved but inaccessible address space does not count.
    pub data_limit: Option<u64>,
    /// RLIMIT_NOFILE: a bound on descriptor numbers, so it must cover the descriptors the
    /// worker holds already (stdio, its sockets) as well as new ones.
    pub files: Option<u64>,
    /// The manifest accepts a weaker sandbox (`allow_weaker_sandbox = true`) on a kernel
    /// that lacks a layer; without it [`lock_down`] refuses.
    pub allow_weaker: bool,
}

/// A layer of the sandbox that this kernel cannot provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Layer {
    /// Landlock filesystem rules: some (or all) of the filesystem rights cannot be
    /// restricted (no Landlock, or an ABI before 5).
    LandlockFilesystem,
    /// Landlock TCP rules (ABI 4), needed when the module has no network grant.
    LandlockNetwork,
    /// seccomp filters.
    Seccomp,
}

/// How much of the Landlock ruleset the kernel enforced (the `landlock` crate's
/// `RulesetStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Enforcement {
    /// Every requested right.
    Full,
    /// Some rights; the kernel's ABI lacks the others.
    Partial,
    /// None: no Landlock (or the override).
    None,
}

/// What [`lock_down`] applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Applied {
    /// The kernel's Landlock ABI (0: none, or switched off by the override).
    pub landlock_abi: u32,
    /// How much of the Landlock ruleset is enforced.
    pub landlock: Enforcement,
    /// Landlock's signal and abstract-socket scoping (ABI 6). Without it, seccomp still
    /// limits signals to the worker itself and refuses unix sockets.
    pub scoped: bool,
    /// The seccomp filter is installed.
    pub seccomp: bool,
    /// `no_new_privs` is set.
    pub no_new_privs: bool,
    /// Layers this kernel could not provide; non-empty only when the plan allowed a weaker
    /// sandbox.
    pub missing: Vec<Layer>,
}

/// What the running kernel offers, found without applying anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Support {
    /// The Landlock ABI (0: none, or switched off by the override).
    pub landlock_abi: u32,
    /// seccomp filters with an errno action are available.
    pub seccomp: bool,
    /// The override [`LANDLOCK_OVERRIDE_ENV`] is in effect.
    pub simulated: bool,
}

impl Support {
    /// The layers a worker with `plan` would miss on this kernel.
    pub(crate) fn missing(&self, plan: &Plan) -> Vec<Layer> {
        let mut missing = Vec::new();
        if !landlock::filesystem_complete(self.landlock_abi) {
            missing.push(Layer::LandlockFilesystem);
        }
        if !plan.network && self.landlock_abi < landlock::NETWORK_ABI {
            missing.push(Layer::LandlockNetwork);
        }
        if !self.seccomp {
            missing.push(Layer::Seccomp);
        }
        missing
    }

    /// Ok when a worker with `plan` gets the full sandbox here, or the plan accepts a
    /// weaker one; otherwise the [`ErrorKind::Denied`] error that [`lock_down`] would
    /// return. `membrane check` can use it to refuse a `process` module ahead of time.
    pub(crate) fn require(&self, plan: &Plan) -> Result<()> {
        let missing = self.missing(plan);
        if missing.is_empty() || plan.allow_weaker {
            return Ok(());
        }
        Err(self.refusal(&missing))
    }

    fn refusal(&self, missing: &[Layer]) -> Error {
        let abi = self.landlock_abi;
        let kernel = if self.simulated {
            format!("Landlock switched off by {LANDLOCK_OVERRIDE_ENV}=off")
        } else if abi == 0 {
            "this kernel has no Landlock".to_string()
        } else {
            format!("this kernel has Landlock ABI {abi}")
        };
        let layers: Vec<String> = missing
            .iter()
            // Said once, with the filesystem, when there is no Landlock at all.
            .filter(|l| abi > 0 || **l != Layer::LandlockNetwork)
            .map(|l| match l {
                Layer::LandlockFilesystem if abi == 0 => {
                    "no Landlock (files outside the grants stay reachable by the worker, \
                     and TCP is not restricted by the kernel)"
                        .to_string()
                }
                Layer::LandlockFilesystem => format!(
                    "incomplete Landlock filesystem rules ({} cannot be restricted before \
                     ABI {})",
                    landlock::rights_missing(abi),
                    landlock::FILESYSTEM_ABI
                ),
                Layer::LandlockNetwork => format!(
                    "no Landlock TCP rules (ABI {}; seccomp still refuses new sockets)",
                    landlock::NETWORK_ABI
                ),
                Layer::Seccomp => "no seccomp filter (exec, process creation, ptrace and new \
                                   sockets are not blocked)"
                    .to_string(),
            })
            .collect();
        Error::new(
            ErrorKind::Denied,
            format!(
                "the worker sandbox of a `process` module would be weaker than required: {}; \
                 {kernel}. To run the module with this weaker sandbox anyway, set \
                 `allow_weaker_sandbox = true` under its [modules.<name>] table",
                layers.join(", ")
            ),
        )
    }
}

/// Whether [`LANDLOCK_OVERRIDE_ENV`] switches Landlock off.
fn landlock_switched_off() -> bool {
    std::env::var_os(LANDLOCK_OVERRIDE_ENV).is_some_and(|v| v == "off")
}

/// What this kernel offers, without applying anything.
pub(crate) fn support() -> Support {
    let simulated = landlock_switched_off();
    Support {
        landlock_abi: if simulated { 0 } else { landlock::kernel_abi() },
        seccomp: seccomp::available(),
        simulated,
    }
}

/// Locks the calling process down according to `plan`.
///
/// Call it while the process has exactly one thread (it checks, where /proc is mounted),
/// after opening everything the worker needs from outside the grants and before creating
/// the engine or touching the component. On an error the process must exit: some layers
/// may be applied already. A kernel without a layer is an error ([`ErrorKind::Denied`],
/// naming the layer) unless `plan.allow_weaker`; nothing is applied then.
pub(crate) fn lock_down(plan: &Plan) -> Result<Applied> {
    single_threaded()?;
    let support = support();
    support.require(plan)?;

    set_no_new_privs()?;
    rlimits::apply(plan)?;
    let (landlock_abi, landlock) = if support.simulated || support.landlock_abi == 0 {
        (0, Enforcement::None)
    } else {
        landlock::restrict(plan)?
    };
    let seccomp = if support.seccomp {
        seccomp::apply(plan.network)?;
        true
    } else {
        false
    };

    // What the kernel actually did, not what it advertised.
    let actual = Support {
        landlock_abi: if landlock == Enforcement::None {
            0
        } else {
            landlock_abi
        },
        seccomp,
        simulated: support.simulated,
    };
    let missing = actual.missing(plan);
    if !missing.is_empty() && !plan.allow_weaker {
        return Err(actual.refusal(&missing));
    }
    Ok(Applied {
        landlock_abi: actual.landlock_abi,
        landlock,
        scoped: actual.landlock_abi >= landlock::SCOPE_ABI,
        seccomp,
        no_new_privs: true,
        missing,
    })
}

/// Refuses to go on when another thread exists: it would escape Landlock and seccomp.
fn single_threaded() -> Result<()> {
    // Without /proc the check is skipped: the worker's entry runs first in `main` by
    // construction, this only catches a regression.
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Ok(());
    };
    let n = tasks.count();
    if n > 1 {
        return Err(Error::new(
            ErrorKind::HostPanic,
            format!(
                "the worker sandbox must be applied while the process has one thread, and it \
                 has {n}: `membrane::worker::main_if_worker()` must run first in `main`"
            ),
        ));
    }
    Ok(())
}

fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(Error::io(
            "the worker cannot set no_new_privs",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(abi: u32, seccomp: bool) -> Support {
        Support {
            landlock_abi: abi,
            seccomp,
            simulated: false,
        }
    }

    #[test]
    fn weaker_is_defined_by_the_abi_and_the_network_grant() {
        let offline = Plan::default();
        let online = Plan {
            network: true,
            ..Plan::default()
        };
        assert!(kernel(7, true).missing(&offline).is_empty());
        assert!(kernel(5, true).missing(&offline).is_empty());
        assert_eq!(
            kernel(4, true).missing(&offline),
            [Layer::LandlockFilesystem]
        );
        assert_eq!(
            kernel(3, true).missing(&offline),
            [Layer::LandlockFilesystem, Layer::LandlockNetwork]
        );
        assert_eq!(
            kernel(3, true).missing(&online),
            [Layer::LandlockFilesystem]
        );
        assert_eq!(kernel(7, false).missing(&online), [Layer::Seccomp]);
    }

    #[test]
    fn a_refusal_names_the_layer_the_abi_and_the_manifest_key() {
        let e = kernel(3, true).require(&Plan::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Denied);
        let m = e.message();
        assert!(m.contains("ABI 3"), "{m}");
        assert!(m.contains("IoctlDev"), "{m}");
        assert!(m.contains("allow_weaker_sandbox = true"), "{m}");
        let weaker = Plan {
            allow_weaker: true,
            ..Plan::default()
        };
        assert!(kernel(0, false).require(&weaker).is_ok());
    }

    #[test]
    fn the_plan_is_plain_json() {
        let plan = Plan {
            ro: vec!["/a".into()],
            rw: vec!["/b".into()],
            network: true,
            names: true,
            data_limit: Some(1 << 30),
            files: Some(64),
            allow_weaker: false,
        };
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
        assert_eq!(
            serde_json::from_str::<Plan>(r#"{"ro": ["/x"]}"#)
                .unwrap()
                .ro,
            [PathBuf::from("/x")]
        );
        assert!(serde_json::from_str::<Plan>(r#"{"rox": []}"#).is_err());
    }
}
