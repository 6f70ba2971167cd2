//! Host interfaces implemented in C (`membrane_interface_t`): one C callback per
//! function, over `HostInterface::func_dynamic`. A callback reads its arguments and writes
//! its results through the `membrane_host_call_t` it gets, in WAVE text or in the binary
//! value form; a result that is not a value of the function's result type is refused
//! there, so it fails the guest's call and never reaches the guest.

use std::ffi::{CString, c_char, c_void};

use membrane::{Error, ErrorKind, HostInterface, Result, Type, Val};
use membrane_core::wire::value::{NoHandles, decode_all, encode_all};
use wasmtime::component::types::ComponentFunc;

use crate::error::{MembraneError, guard};
use crate::ffi::{bytes_arg, c_string, guard_plain, invalid, live_mut, panicked, str_arg};

/// A host function implemented in C: `userdata` and the call's arguments and results.
/// Returns whether it succeeded.
pub type MembraneHostFn =
    unsafe extern "C" fn(userdata: *mut c_void, call: *mut MembraneHostCall<'_>) -> bool;

/// Frees a host function's `userdata` when the library no longer needs it.
pub type MembraneFreeFn = unsafe extern "C" fn(userdata: *mut c_void);

/// The most bytes of `Val`s that binary results may decode into.
pub const DECODE_BUDGET: usize = 256 << 20;

/// A host interface being declared (`membrane_interface_t`).
pub struct MembraneInterface {
    pub interface: HostInterface,
}

/// A callback and its userdata, shared by every copy of the interface.
struct Callback {
    f: MembraneHostFn,
    userdata: *mut c_void,
    free: Option<MembraneFreeFn>,
}

// SAFETY: the header requires callbacks (and their userdata) to be callable from any
// thread, at once; the library only passes the pointer back to them.
unsafe impl Send for Callback {}
// SAFETY: as for `Send`.
unsafe impl Sync for Callback {}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the embedder's function for its own userdata, called once, when the
            // last copy of the interface is gone.
            unsafe { free(self.userdata) };
        }
    }
}

/// One call of a host function (`membrane_host_call_t`), alive while its callback runs.
pub struct MembraneHostCall<'a> {
    ty: &'a ComponentFunc,
    args: &'a [Val],
    /// The arguments as WAVE, made on the first request (`None`: not writable as WAVE).
    waves: Option<Vec<Option<CString>>>,
    /// The arguments in the binary form, made on the first request.
    binary: Option<Vec<u8>>,
    results: Option<Vec<Val>>,
    /// Why the last attempt to set the results failed.
    refused: Option<String>,
    error: Option<Error>,
}

impl MembraneHostCall<'_> {
    fn result_types(&self) -> Vec<Type> {
        self.ty.results().collect()
    }

    fn param_types(&self) -> Vec<Type> {
        self.ty.params().map(|(_, t)| t).collect()
    }

    fn set_results(&mut self, results: Result<Vec<Val>>) -> bool {
        match results {
            Ok(r) => {
                self.results = Some(r);
                self.refused = None;
                true
            }
            Err(e) => {
                self.refused = Some(membrane::chain(&e));
                false
            }
        }
    }

    /// What the callback's return value and calls amount to.
    fn finish(self, ok: bool, results: &mut [Val]) -> Result<()> {
        if !ok {
            return Err(self
                .error
                .unwrap_or_else(|| Error::new(ErrorKind::HostPanic, "the host function failed")));
        }
        match self.results {
            Some(r) if r.len() == results.len() => {
                results.clone_from_slice(&r);
                Ok(())
            }
            None if results.is_empty() => Ok(()),
            _ => Err(Error::new(
                ErrorKind::InvalidArgs,
                match self.refused {
                    Some(why) => format!("the host function set no valid result ({why})"),
                    None => "the host function returned without setting its result".to_string(),
                },
            )),
        }
    }
}

/// Calls `cb` for one guest call, without letting a panic out.
fn invoke(cb: &Callback, ty: &ComponentFunc, args: &[Val], results: &mut [Val]) -> Result<()> {
    let mut call = MembraneHostCall {
        ty,
        args,
        waves: None,
        binary: None,
        results: None,
        refused: None,
        error: None,
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `call` lives until the callback returns; the callback and userdata are
        // the embedder's, registered for this function.
        let ok = unsafe { (cb.f)(cb.userdata, &mut call) };
        call.finish(ok, results)
    }));
    run.unwrap_or_else(|p| Err(panicked(p.as_ref())))
}

/// A new host interface named `name` (`ns:pkg/iface@version`), with no functions yet.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_interface_new(
    name: *const c_char,
    error: *mut *mut MembraneError,
) -> *mut MembraneInterface {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, std::ptr::null_mut(), || {
            let interface = HostInterface::new(str_arg(name, "name")?);
            interface.validate()?;
            Ok(Box::into_raw(Box::new(MembraneInterface { interface })))
        })
    }
}

/// Adds function `name` of WIT type `signature`, implemented by `callback`.
///
/// # Safety
/// `interface` is NULL or live; the strings are NULL or NUL-terminated; `callback` and
/// `free_userdata` are NULL or functions of their types, callable from any thread;
/// `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_interface_func(
    interface: *mut MembraneInterface,
    name: *const c_char,
    signature: *const c_char,
    callback: Option<MembraneHostFn>,
    userdata: *mut c_void,
    free_userdata: Option<MembraneFreeFn>,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let iface = live_mut(interface, "interface")?;
            let name = str_arg(name, "name")?;
            let signature = str_arg(signature, "signature")?;
            let f = callback.ok_or_else(|| invalid("`callback` is NULL"))?;
            // Made last: from here the library owns `userdata`.
            let cb = std::sync::Arc::new(Callback {
                f,
                userdata,
                free: free_userdata,
            });
            let taken = std::mem::replace(&mut iface.interface, HostInterface::new(""));
            iface.interface = taken.func_dynamic(name, signature, move |ty, args, results| {
                invoke(&cb, ty, args, results)
            });
            Ok(true)
        })
    }
}

/// Frees an interface. NULL does nothing.
///
/// # Safety
/// `interface` is NULL or returned by `membrane_interface_new` and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_interface_free(interface: *mut MembraneInterface) {
    guard_plain((), || {
        if !interface.is_null() {
            // SAFETY: made by `Box::into_raw`, by the contract.
            drop(unsafe { Box::from_raw(interface) });
        }
    })
}

/// How many arguments the call has.
///
/// # Safety
/// `call` is NULL or the call passed to the running callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_host_call_arg_count(call: *const MembraneHostCall<'_>) -> usize {
    guard_plain(0, || {
        // SAFETY: NULL or live, by the contract.
        unsafe { call.as_ref() }.map_or(0, |c| c.args.len())
    })
}

/// Argument `index` as WAVE text, borrowed from the call, or NULL.
///
/// # Safety
/// `call` is NULL or the call passed to the running callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_host_call_arg(
    call: *mut MembraneHostCall<'_>,
    index: usize,
) -> *const c_char {
    guard_plain(std::ptr::null(), || {
        // SAFETY: NULL or live and used by this thread only, by the contract.
        let Some(c) = (unsafe { call.as_mut() }) else {
            return std::ptr::null();
        };
        if c.waves.is_none() {
            let waves = c
                .args
                .iter()
                .map(|v| membrane::to_wave(v).ok().map(|t| c_string(&t)))
                .collect();
            c.waves = Some(waves);
        }
        c.waves
            .as_ref()
            .and_then(|w| w.get(index))
            .and_then(Option::as_ref)
            .map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// The arguments in the binary value form, borrowed from the call.
///
/// # Safety
/// `call` is NULL or the call passed to the running callback; `data` and `len` are NULL
/// or writable; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_host_call_args_binary(
    call: *mut MembraneHostCall<'_>,
    data: *mut *const u8,
    len: *mut usize,
    error: *mut *mut MembraneError,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        guard(error, false, || {
            let c = live_mut(call, "call")?;
            crate::ffi::out(data, "data")?;
            crate::ffi::out(len, "len")?;
            if c.binary.is_none() {
                let mut out = Vec::new();
                encode_all(c.args, &c.param_types(), &mut out, &mut NoHandles)?;
                c.binary = Some(out);
            }
            let bytes = c.binary.as_deref().unwrap_or_default();
            *data = bytes.as_ptr();
            *len = bytes.len();
            Ok(true)
        })
    }
}

/// Sets the result from WAVE text; false when it is not a value of the result type.
///
/// # Safety
/// `call` is NULL or the call passed to the running callback; `wave` is NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_host_call_set_result(
    call: *mut MembraneHostCall<'_>,
    wave: *const c_char,
) -> bool {
    guard_plain(false, || {
        // SAFETY: NULL or live and used by this thread only, by the contract.
        let Some(c) = (unsafe { call.as_mut() }) else {
            return false;
        };
        // SAFETY: NULL or NUL-terminated, by the contract.
        let parsed =
            unsafe { str_arg(wave, "wave") }.and_then(|text| match c.result_types().as_slice() {
                [ty] => Val::from_wave(ty, text).map(|v| vec![v]).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidArgs,
                        format!(
                            "`{}` is not a {}: {e}",
                            membrane::escape(text),
                            membrane::type_name(ty)
                        ),
                    )
                }),
                _ => Err(invalid("the function has no result to set")),
            });
        c.set_results(parsed)
    })
}

/// Sets the results from the binary value form; false when the bytes are not values of
/// the result types.
///
/// # Safety
/// `call` is NULL or the call passed to the running callback; `data` is NULL or points to
/// `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_host_call_set_result_binary(
    call: *mut MembraneHostCall<'_>,
    data: *const u8,
    len: usize,
) -> bool {
    guard_plain(false, || {
        // SAFETY: NULL or live and used by this thread only, by the contract.
        let Some(c) = (unsafe { call.as_mut() }) else {
            return false;
        };
        // SAFETY: NULL or `len` bytes, by the contract.
        let decoded = unsafe { bytes_arg(data, len, "data") }.and_then(|bytes| {
            decode_all(bytes, &c.result_types(), &mut NoHandles, DECODE_BUDGET)
                .map_err(|e| Error::new(ErrorKind::InvalidArgs, membrane::chain(&e)))
        });
        c.set_results(decoded)
    })
}

/// Says why the call failed, for a callback that then returns false. `kind` names an
/// error kind (NULL: `"host-panic"`); false when it names none (`"host-panic"` is used).
///
/// # Safety
/// `call` is NULL or the call passed to the running callback; the strings are NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_host_call_set_error(
    call: *mut MembraneHostCall<'_>,
    kind: *const c_char,
    message: *const c_char,
) -> bool {
    guard_plain(false, || {
        // SAFETY: NULL or live and used by this thread only, by the contract.
        let Some(c) = (unsafe { call.as_mut() }) else {
            return false;
        };
        // SAFETY: NULL or NUL-terminated, by the contract.
        let message = unsafe { str_arg(message, "message") }
            .map(str::to_string)
            .unwrap_or_else(|e| format!("the host function failed ({})", e.message()));
        let (kind, known) = if kind.is_null() {
            (ErrorKind::HostPanic, true)
        } else {
            // SAFETY: NUL-terminated, by the contract.
            match unsafe { str_arg(kind, "kind") }
                .ok()
                .and_then(ErrorKind::from_name)
            {
                Some(k) => (k, true),
                None => (ErrorKind::HostPanic, false),
            }
        };
        c.error = Some(Error::new(kind, message));
        known
    })
}
