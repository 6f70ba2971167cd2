//! `membrane_app_t`: loading an app, calling its exports (WAVE text or the binary value
//! form), running its entry, its status, upgrades, reloads and rollbacks.
//!
//! Calls run on the caller's thread (`App::call_blocking`); loads, runs and upgrades block
//! on the runtime's tokio runtime.

use std::ffi::c_char;
use std::sync::Arc;

use membrane::{App, Error, ErrorKind, Result, UpgradeOptions, Val};
use membrane_core::wire::value::{NoHandles, decode_all, encode_all};

use crate::error::{MembraneError, guard};
use crate::ffi::{
    bytes_arg, guard_plain, live, out, owned_bytes, owned_string, path_arg, str_arg, str_array,
};
use crate::host::DECODE_BUDGET;
use crate::runtime::{MembraneRuntime, Shared, drop_shared};
use crate::spec::MembraneSpec;

/// A loaded app (`membrane_app_t`); it keeps its runtime alive.
pub struct MembraneApp {
    app: App,
    shared: Arc<Shared>,
}

impl MembraneApp {
    fn app(&self) -> &App {
        &self.app
    }
}

fn new_app(shared: &Arc<Shared>, app: App) -> *mut MembraneApp {
    Box::into_raw(Box::new(MembraneApp {
        app,
        shared: shared.clone(),
    }))
}

/// Writes an optional JSON report to `*report` (when `report` is not NULL).
///
/// # Safety
/// `report` is NULL or writable.
unsafe fn put_report(report: *mut *mut c_char, value: impl FnOnce() -> serde_json::Value) {
    if !report.is_null() {
        // SAFETY: not NULL, writable by the contract.
        unsafe { *report = owned_string(&value().to_string()) };
    }
}

/// Loads the app of the manifest at `manifest_path`.
///
/// # Safety
/// `runtime` is NULL or live; `manifest_path` is NULL or NUL-terminated; `error` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_runtime_load(
    runtime: *mut MembraneRuntime,
    manifest_path: *const c_char,
    error: *mut *mut MembraneError,
) -> *mut MembraneApp {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, std::ptr::null_mut(), || {
            let shared = &live(runtime, "runtime")?.shared;
            let path = path_arg(manifest_path, "manifest_path")?;
            let app = shared.block_on(shared.runtime.load(path))??;
            Ok(new_app(shared, app))
        })
    }
}

/// Loads the app `spec` declares.
///
/// # Safety
/// `runtime` and `spec` are NULL or live; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_runtime_load_spec(
    runtime: *mut MembraneRuntime,
    spec: *const MembraneSpec,
    error: *mut *mut MembraneError,
) -> *mut MembraneApp {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, std::ptr::null_mut(), || {
            let shared = &live(runtime, "runtime")?.shared;
            let spec = live(spec, "spec")?.app();
            let app = shared.block_on(shared.runtime.load_spec(spec))??;
            Ok(new_app(shared, app))
        })
    }
}

/// Calls `export` of `module` with one WAVE text per parameter; the result as WAVE.
///
/// # Safety
/// `app` is NULL or live; the strings are NULL or NUL-terminated; `args` is NULL or
/// points to `nargs` strings; `result` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_call(
    app: *const MembraneApp,
    module: *const c_char,
    export: *const c_char,
    args: *const *const c_char,
    nargs: usize,
    result: *mut *mut c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let app = live(app, "app")?.app();
            let module = str_arg(module, "module")?;
            let export = str_arg(export, "export")?;
            let texts = str_array(args, nargs, "args")?;
            let func = app.function(module, export)?;
            let vals = func.parse_args(&texts).map_err(|e| e.with_module(module))?;
            let results = app.call_blocking(module, export, &vals)?;
            if !result.is_null() {
                *result = match results.as_slice() {
                    [] => std::ptr::null_mut(),
                    [one] => owned_string(&membrane::to_wave(one)?),
                    many => {
                        let each: Result<Vec<String>> =
                            many.iter().map(membrane::to_wave).collect();
                        owned_string(&format!("({})", each?.join(", ")))
                    }
                };
            }
            Ok(true)
        })
    }
}

/// Calls `export` of `module` with arguments in the binary value form; the results in the
/// same form.
///
/// # Safety
/// `app` is NULL or live; the strings are NULL or NUL-terminated; `args` is NULL or points
/// to `args_len` bytes; `results`, `results_len` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_call_binary(
    app: *const MembraneApp,
    module: *const c_char,
    export: *const c_char,
    args: *const u8,
    args_len: usize,
    results: *mut *mut u8,
    results_len: *mut usize,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let app = live(app, "app")?.app();
            let module = str_arg(module, "module")?;
            let export = str_arg(export, "export")?;
            let bytes = bytes_arg(args, args_len, "args")?;
            out(results, "results")?;
            out(results_len, "results_len")?;
            let func = app.function(module, export)?;
            let types: Vec<_> = func.params.iter().map(|(_, t)| t.clone()).collect();
            let vals = decode_all(bytes, &types, &mut NoHandles, DECODE_BUDGET).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgs,
                    format!(
                        "{export}: the arguments are not in the binary value form of its parameters"
                    ),
                )
                .with_module(module)
                .with_export(export)
                .with_source(e)
            })?;
            let vals: Vec<Val> = app.call_blocking(module, export, &vals)?;
            let mut encoded = Vec::new();
            encode_all(&vals, &func.results, &mut encoded, &mut NoHandles)?;
            *results = owned_bytes(&encoded);
            *results_len = encoded.len();
            Ok(true)
        })
    }
}

/// The WIT type of `export`: `func(name: type, ...) -> type`.
///
/// # Safety
/// `app` is NULL or live; the strings are NULL or NUL-terminated; `signature` and `error`
/// are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_signature(
    app: *const MembraneApp,
    module: *const c_char,
    export: *const c_char,
    signature: *mut *mut c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let app = live(app, "app")?.app();
            let module = str_arg(module, "module")?;
            let export = str_arg(export, "export")?;
            out(signature, "signature")?;
            let func = app.function(module, export)?;
            let params: Vec<String> = func
                .params
                .iter()
                .map(|(n, t)| format!("{n}: {}", membrane::type_name(t)))
                .collect();
            let mut text = format!("func({})", params.join(", "));
            if let [r] = func.results.as_slice() {
                text.push_str(" -> ");
                text.push_str(&membrane::type_name(r));
            }
            *signature = owned_string(&text);
            Ok(true)
        })
    }
}

/// Runs the entry module's `wasi:cli/run` with `args`; its exit status to `*exit_code`.
///
/// # Safety
/// `app` is NULL or live; `args` is NULL or points to `nargs` NUL-terminated strings;
/// `exit_code` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_run(
    app: *const MembraneApp,
    args: *const *const c_char,
    nargs: usize,
    exit_code: *mut i32,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let handle = live(app, "app")?;
            let args: Vec<String> = str_array(args, nargs, "args")?
                .into_iter()
                .map(str::to_string)
                .collect();
            let code = handle.shared.block_on(handle.app().run(args, false))??;
            if !exit_code.is_null() {
                *exit_code = code;
            }
            Ok(true)
        })
    }
}

/// The status of `module` (NULL: every module) as JSON text.
///
/// # Safety
/// `app` is NULL or live; `module` is NULL or NUL-terminated; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_status(
    app: *const MembraneApp,
    module: *const c_char,
    error: *mut *mut MembraneError,
) -> *mut c_char {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, std::ptr::null_mut(), || {
            let app = live(app, "app")?.app();
            let value = if module.is_null() {
                crate::report::app_status(app)
            } else {
                let module = str_arg(module, "module")?;
                app.module(module)?;
                let all = app.status();
                let s = all.get(module).ok_or_else(|| {
                    Error::not_found(format!("no status for module `{module}`")).with_module(module)
                })?;
                crate::report::module_status(app, module, s)
            };
            Ok(owned_string(&value.to_string()))
        })
    }
}

fn options(accept_wider_grants: bool) -> UpgradeOptions {
    if accept_wider_grants {
        UpgradeOptions::new().accept_wider_grants()
    } else {
        UpgradeOptions::new()
    }
}

/// Replaces `module` of the app, live, with the declaration of the same name in `spec`.
///
/// # Safety
/// `app` and `spec` are NULL or live; `module` is NULL or NUL-terminated; `report` and
/// `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_upgrade(
    app: *const MembraneApp,
    spec: *const MembraneSpec,
    module: *const c_char,
    accept_wider_grants: bool,
    report: *mut *mut c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let handle = live(app, "app")?;
            let module = str_arg(module, "module")?;
            let next = live(spec, "spec")?.module(module)?;
            let done = handle.shared.block_on(handle.app().upgrade_with(
                module,
                next,
                options(accept_wider_grants),
            ))??;
            put_report(report, || done.to_json());
            Ok(true)
        })
    }
}

/// Reads the manifest again (NULL: the one the app was loaded from) and upgrades the
/// modules that changed.
///
/// # Safety
/// `app` is NULL or live; `manifest_path` is NULL or NUL-terminated; `report` and `error`
/// are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_reload(
    app: *const MembraneApp,
    manifest_path: *const c_char,
    accept_wider_grants: bool,
    report: *mut *mut c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let handle = live(app, "app")?;
            let app = handle.app();
            let path = if manifest_path.is_null() {
                app.manifest_path()
                    .map(|p| p.to_path_buf())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidArgs,
                            "the app was not loaded from a manifest: pass `manifest_path`",
                        )
                    })?
            } else {
                path_arg(manifest_path, "manifest_path")?
            };
            let done = handle
                .shared
                .block_on(app.reload_with(path, options(accept_wider_grants)))??;
            put_report(report, || done.to_json());
            Ok(true)
        })
    }
}

/// Goes back to the previous generation of `module`, kept during its probation.
///
/// # Safety
/// `app` is NULL or live; `module` is NULL or NUL-terminated; `report` and `error` are
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_rollback(
    app: *const MembraneApp,
    module: *const c_char,
    report: *mut *mut c_char,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let handle = live(app, "app")?;
            let module = str_arg(module, "module")?;
            let done = {
                let _enter = handle.shared.tokio.enter();
                handle.app().rollback(module)?
            };
            put_report(report, || done.to_json());
            Ok(true)
        })
    }
}

/// Frees an app, and its runtime when the runtime's handle is freed already.
///
/// # Safety
/// `app` is NULL or returned by a load and not freed yet, with no call of it running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_app_free(app: *mut MembraneApp) {
    guard_plain((), || {
        if app.is_null() {
            return;
        }
        // SAFETY: made by `Box::into_raw`, by the contract.
        let MembraneApp { app, shared } = *unsafe { Box::from_raw(app) };
        // Inside the tokio context: what the app's drop spawns has a runtime to go to.
        {
            let _enter = shared.tokio.enter();
            drop(app);
        }
        drop_shared(shared);
    })
}
