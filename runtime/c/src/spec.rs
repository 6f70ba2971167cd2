//! `membrane_spec_t`: an app declared in code, module by module (`membrane::AppSpec` and
//! `membrane::ModuleSpec`). Each setter names the module it changes, which
//! `membrane_spec_module` declared first.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::time::Duration;

use membrane::{AppSpec, DirMode, Error, ModuleSpec, Result};

use crate::error::{MembraneError, guard};
use crate::ffi::{guard_plain, live_mut, path_arg, str_arg};

/// An app declared in code (`membrane_spec_t`).
#[derive(Default)]
pub struct MembraneSpec {
    modules: BTreeMap<String, ModuleSpec>,
    entry: Option<String>,
}

impl MembraneSpec {
    /// The app this declares.
    pub fn app(&self) -> AppSpec {
        let mut app = AppSpec::new();
        for (name, m) in &self.modules {
            app = app.module(name.clone(), m.clone());
        }
        if let Some(entry) = &self.entry {
            app = app.entry(entry.clone());
        }
        app
    }

    /// The declaration of `module`.
    pub fn module(&self, module: &str) -> Result<ModuleSpec> {
        self.modules
            .get(module)
            .cloned()
            .ok_or_else(|| undeclared(module))
    }
}

fn undeclared(module: &str) -> Error {
    Error::not_found(format!(
        "the spec declares no module `{module}`: declare it with membrane_spec_module first"
    ))
    .with_module(module)
}

/// Runs a setter on the module named by the C string `module`.
///
/// # Safety
/// `spec` is NULL or live and unshared; `module` is NULL or a NUL-terminated string;
/// `error` is NULL or writable.
unsafe fn set(
    spec: *mut MembraneSpec,
    module: *const c_char,
    error: *mut *mut MembraneError,
    f: impl FnOnce(ModuleSpec) -> Result<ModuleSpec>,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let spec = live_mut(spec, "spec")?;
            let module = str_arg(module, "module")?;
            let changed = f(spec.module(module)?)?;
            spec.modules.insert(module.to_string(), changed);
            Ok(true)
        })
    }
}

/// A new, empty app declaration.
#[unsafe(no_mangle)]
pub extern "C" fn membrane_spec_new() -> *mut MembraneSpec {
    guard_plain(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(MembraneSpec::default()))
    })
}

/// Declares module `name` with the component at `component_path` (replacing an earlier
/// declaration of that name).
///
/// # Safety
/// `spec` is NULL or live; the strings are NULL or NUL-terminated; `error` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_module(
    spec: *mut MembraneSpec,
    name: *const c_char,
    component_path: *const c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let spec = live_mut(spec, "spec")?;
            let name = str_arg(name, "name")?;
            let path = path_arg(component_path, "component_path")?;
            spec.modules
                .insert(name.to_string(), ModuleSpec::from_file(path));
            Ok(true)
        })
    }
}

/// Makes `module` the app's entry (what `membrane_app_run` runs).
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_entry(
    spec: *mut MembraneSpec,
    module: *const c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let spec = live_mut(spec, "spec")?;
            let module = str_arg(module, "module")?;
            spec.module(module)?;
            spec.entry = Some(module.to_string());
            Ok(true)
        })
    }
}

/// Caps the module's linear memory at `bytes`.
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_memory(
    spec: *mut MembraneSpec,
    module: *const c_char,
    bytes: u64,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe { set(spec, module, error, |m| Ok(m.memory(bytes))) }
}

/// Sets the wall-clock budget of one call into the module, in milliseconds.
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_timeout_ms(
    spec: *mut MembraneSpec,
    module: *const c_char,
    milliseconds: u64,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        set(spec, module, error, |m| {
            Ok(m.timeout(Duration::from_millis(milliseconds)))
        })
    }
}

/// Gives every call of the module a fuel budget (the runtime needs fuel metering on).
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_fuel(
    spec: *mut MembraneSpec,
    module: *const c_char,
    fuel: u64,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe { set(spec, module, error, |m| Ok(m.fuel(fuel))) }
}

/// Caps the instances of the module running at once, and the callers that may wait.
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_concurrency(
    spec: *mut MembraneSpec,
    module: *const c_char,
    instances: usize,
    queue: usize,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe { set(spec, module, error, |m| Ok(m.concurrency(instances, queue))) }
}

/// Grants the module one environment variable.
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_env(
    spec: *mut MembraneSpec,
    module: *const c_char,
    key: *const c_char,
    value: *const c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        set(spec, module, error, |m| {
            Ok(m.env(str_arg(key, "key")?, str_arg(value, "value")?))
        })
    }
}

/// Grants the module the host directory `host_path` at `guest_path`, read-only or
/// read-write.
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_dir(
    spec: *mut MembraneSpec,
    module: *const c_char,
    host_path: *const c_char,
    guest_path: *const c_char,
    writable: bool,
    error: *mut *mut MembraneError,
) -> bool {
    let mode = if writable {
        DirMode::ReadWrite
    } else {
        DirMode::ReadOnly
    };
    // SAFETY: forwarded contract.
    unsafe {
        set(spec, module, error, |m| {
            Ok(m.dir(
                path_arg(host_path, "host_path")?,
                str_arg(guest_path, "guest_path")?,
                mode,
            ))
        })
    }
}

/// Allows the module outbound TCP connections to `destination` (`host:port`).
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_network(
    spec: *mut MembraneSpec,
    module: *const c_char,
    destination: *const c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        set(spec, module, error, |m| {
            Ok(m.network(str_arg(destination, "destination")?))
        })
    }
}

/// Links the module's import `interface` to the module `provider`, or to `"host"`.
///
/// # Safety
/// As for `membrane_spec_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_link(
    spec: *mut MembraneSpec,
    module: *const c_char,
    interface: *const c_char,
    provider: *const c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        set(spec, module, error, |m| {
            Ok(m.link(
                str_arg(interface, "interface")?,
                str_arg(provider, "provider")?,
            ))
        })
    }
}

/// Frees a declaration. NULL does nothing.
///
/// # Safety
/// `spec` is NULL or returned by `membrane_spec_new` and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_spec_free(spec: *mut MembraneSpec) {
    guard_plain((), || {
        if !spec.is_null() {
            // SAFETY: made by `Box::into_raw`, by the contract.
            drop(unsafe { Box::from_raw(spec) });
        }
    })
}
