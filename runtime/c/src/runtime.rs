//! `membrane_config_t` and `membrane_runtime_t`: the engine, and the tokio runtime that
//! loads and upgrades block on.

use std::ffi::c_char;
use std::sync::Arc;

use membrane::{Config, Error, ErrorKind, Result};

use crate::error::{MembraneError, guard};
use crate::ffi::{guard_plain, invalid, live, live_mut, path_arg};
use crate::host::MembraneInterface;

/// Settings of a runtime (`membrane_config_t`).
pub struct MembraneConfig {
    config: Config,
    worker_threads: usize,
}

/// A runtime (`membrane_runtime_t`): its handle and the apps it loaded share [`Shared`].
pub struct MembraneRuntime {
    pub shared: Arc<Shared>,
}

/// What a runtime and its apps share. The membrane runtime is dropped before the tokio
/// runtime (field order).
pub struct Shared {
    pub runtime: membrane::Runtime,
    pub tokio: tokio::runtime::Runtime,
}

impl Shared {
    /// Runs `f` to its end on the calling thread, the runtime's workers driving what it
    /// spawns.
    pub fn block_on<F: Future>(&self, f: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::new(
                ErrorKind::InvalidArgs,
                "called from inside a tokio runtime (a host function?); loads, runs and \
                 upgrades block, and cannot run there",
            ));
        }
        Ok(self.tokio.block_on(f))
    }
}

/// New settings with the defaults (see the header).
#[unsafe(no_mangle)]
pub extern "C" fn membrane_config_new() -> *mut MembraneConfig {
    guard_plain(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(MembraneConfig {
            config: Config::default(),
            worker_threads: 2,
        }))
    })
}

/// Sets the compiled-code cache directory.
///
/// # Safety
/// `config` is NULL or live; `dir` is NULL or a NUL-terminated string; `error` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_config_cache_dir(
    config: *mut MembraneConfig,
    dir: *const c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let c = live_mut(config, "config")?;
            c.config.cache_dir = Some(path_arg(dir, "dir")?);
            Ok(true)
        })
    }
}

/// Sets the cache directory to the `membrane` command's.
///
/// # Safety
/// `config` is NULL or live; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_config_default_cache(
    config: *mut MembraneConfig,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let c = live_mut(config, "config")?;
            let dir = membrane::default_cache_dir().ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "no cache directory: set MEMBRANE_CACHE_DIR, XDG_CACHE_HOME or HOME",
                )
            })?;
            c.config.cache_dir = Some(dir);
            Ok(true)
        })
    }
}

/// Sets how many instances may be live at once (0: allocate on demand).
///
/// # Safety
/// `config` is NULL or live; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_config_instance_slots(
    config: *mut MembraneConfig,
    slots: u32,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            live_mut(config, "config")?.config.instance_slots = slots;
            Ok(true)
        })
    }
}

/// Turns fuel metering on or off.
///
/// # Safety
/// `config` is NULL or live; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_config_fuel(
    config: *mut MembraneConfig,
    on: bool,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            live_mut(config, "config")?.config.fuel = on;
            Ok(true)
        })
    }
}

/// Sets the worker threads of the runtime's tokio runtime.
///
/// # Safety
/// `config` is NULL or live; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_config_worker_threads(
    config: *mut MembraneConfig,
    threads: usize,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            if threads == 0 {
                return Err(invalid("`threads` must be at least 1"));
            }
            live_mut(config, "config")?.worker_threads = threads;
            Ok(true)
        })
    }
}

/// Frees settings. NULL does nothing.
///
/// # Safety
/// `config` is NULL or returned by `membrane_config_new` and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_config_free(config: *mut MembraneConfig) {
    guard_plain((), || {
        if !config.is_null() {
            // SAFETY: made by `Box::into_raw`, by the contract.
            drop(unsafe { Box::from_raw(config) });
        }
    })
}

/// Creates a runtime from `config` (NULL: the defaults).
///
/// # Safety
/// `config` is NULL or live; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_runtime_new(
    config: *const MembraneConfig,
    error: *mut *mut MembraneError,
) -> *mut MembraneRuntime {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, std::ptr::null_mut(), || {
            // SAFETY: NULL or live, by the contract.
            let (config, threads) = match config.as_ref() {
                Some(c) => (c.config.clone(), c.worker_threads),
                None => (Config::default(), 2),
            };
            let tokio = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("membrane-c")
                .enable_all()
                .build()
                .map_err(|e| Error::io("cannot start the tokio runtime", e))?;
            let runtime = {
                let _enter = tokio.enter();
                membrane::Runtime::new(config)?
            };
            let shared = Arc::new(Shared { runtime, tokio });
            Ok(Box::into_raw(Box::new(MembraneRuntime { shared })))
        })
    }
}

/// Registers a host interface for the apps loaded afterwards.
///
/// # Safety
/// `runtime` and `interface` are NULL or live; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_runtime_provide(
    runtime: *mut MembraneRuntime,
    interface: *const MembraneInterface,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let rt = live(runtime, "runtime")?;
            let iface = live(interface, "interface")?;
            rt.shared.runtime.provide(iface.interface.clone())?;
            Ok(true)
        })
    }
}

/// Frees a runtime handle; apps loaded from it keep working until they are freed.
///
/// # Safety
/// `runtime` is NULL or returned by `membrane_runtime_new` and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_runtime_free(runtime: *mut MembraneRuntime) {
    guard_plain((), || {
        if !runtime.is_null() {
            // SAFETY: made by `Box::into_raw`, by the contract.
            let rt = unsafe { Box::from_raw(runtime) };
            drop_shared(rt.shared);
        }
    })
}

/// Drops a reference to the shared runtime inside its tokio context (what the membrane
/// runtime's drop may spawn has a runtime to go to).
pub fn drop_shared(shared: Arc<Shared>) {
    match Arc::try_unwrap(shared) {
        Ok(Shared { runtime, tokio }) => {
            {
                let _enter = tokio.enter();
                drop(runtime);
            }
            drop(tokio);
        }
        Err(still_shared) => drop(still_shared),
    }
}
