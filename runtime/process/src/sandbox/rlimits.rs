//! Resource limits of a worker: no core files, the plan's data and descriptor limits.
//!
//! Soft and hard limits are set equal, so the worker cannot raise them again. Two limits
//! are deliberately left alone:
//! - RLIMIT_AS: wasmtime reserves GiBs of address space per memory (guard regions, pooled
//!   slots) that it never touches; an address-space limit fails the engine, not the guest.
//!   RLIMIT_DATA is charged only when pages are made writable, which is what the guest
//!   and the runtime actually use.
//! - RLIMIT_NPROC: it counts every thread of the user across all processes, so a value low
//!   enough to matter breaks unrelated processes of the same user; seccomp refuses process
//!   creation instead.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use super::Plan;
use crate::error::{Error, Result};

/// Applies the limits of `plan` to the calling process.
pub(super) fn apply(plan: &Plan) -> Result<()> {
    set(Resource::Core, "RLIMIT_CORE", 0)?;
    if let Some(bytes) = plan.data_limit {
        set(Resource::Data, "RLIMIT_DATA", bytes)?;
    }
    if let Some(files) = plan.files {
        set(Resource::Nofile, "RLIMIT_NOFILE", files)?;
    }
    Ok(())
}

/// Sets soft and hard limit to `value`, or to the current hard limit if that is lower (an
/// unprivileged process cannot raise it, and lower is what the plan wants anyway).
fn set(resource: Resource, name: &str, value: u64) -> Result<()> {
    // `None` is unlimited.
    let value = getrlimit(resource)
        .maximum
        .map_or(value, |max| value.min(max));
    let limit = Rlimit {
        current: Some(value),
        maximum: Some(value),
    };
    setrlimit(resource, limit).map_err(|e| {
        Error::io(
            format!("the worker cannot set its {name} to {value}"),
            e.into(),
        )
    })
}
