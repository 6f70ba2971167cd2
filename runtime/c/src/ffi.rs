//! What every entry point shares: the panic guard, reading C strings, and the strings and
//! byte buffers handed back to C with their free functions.
//!
//! Every `extern "C"` function runs its body inside `error::guard` (or [`guard_plain`] when
//! it has no error out-parameter), so no Rust panic crosses into C: it becomes an error of
//! kind `host-panic`.

use std::ffi::{CStr, CString, OsStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use membrane::{Error, ErrorKind, Result};

/// Runs `f`, returning `fail` if it panics: for functions without an error out-parameter
/// (accessors and `_free` functions).
pub fn guard_plain<T>(fail: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fail)
}

/// The error a caught panic becomes.
pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let why = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    Error::new(
        ErrorKind::HostPanic,
        format!(
            "the C API failed inside the host ({}); this is a bug, please report it",
            membrane::escape(&why)
        ),
    )
}

/// An `invalid-args` error: a NULL pointer or a string that is not UTF-8.
pub fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgs, message)
}

/// Reads a NUL-terminated UTF-8 string; `what` names the parameter in errors.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(invalid(format!("`{what}` is NULL")));
    }
    // SAFETY: not NULL; NUL-terminated and alive by the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|e| invalid(format!("`{what}` is not UTF-8: {e}")))
}

/// Reads a NUL-terminated path: any bytes but NUL (paths need not be UTF-8).
///
/// # Safety
/// As for [`str_arg`].
pub unsafe fn path_arg(p: *const c_char, what: &str) -> Result<PathBuf> {
    if p.is_null() {
        return Err(invalid(format!("`{what}` is NULL")));
    }
    // SAFETY: not NULL; NUL-terminated and alive by the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    Ok(PathBuf::from(OsStr::from_bytes(c.to_bytes())))
}

/// Reads `n` strings from an array of `n` pointers (`p` may be NULL when `n` is 0).
///
/// # Safety
/// `p` is NULL or points to `n` pointers, each as for [`str_arg`].
pub unsafe fn str_array<'a>(p: *const *const c_char, n: usize, what: &str) -> Result<Vec<&'a str>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(invalid(format!("`{what}` is NULL but its count is {n}")));
    }
    // SAFETY: `p` points to `n` pointers by the caller's contract.
    let ptrs = unsafe { std::slice::from_raw_parts(p, n) };
    ptrs.iter()
        .enumerate()
        // SAFETY: each element is as for `str_arg`, by the caller's contract.
        .map(|(i, s)| unsafe { str_arg(*s, &format!("{what}[{i}]")) })
        .collect()
}

/// Reads `len` bytes (`p` may be NULL when `len` is 0).
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that outlive `'a`.
pub unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(format!("`{what}` is NULL but its length is {len}")));
    }
    // SAFETY: `len` readable bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Reads a live object behind a pointer, or fails with `invalid-args`.
///
/// # Safety
/// `p` is NULL or points to a live `T`.
pub unsafe fn live<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: NULL or live, by the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| invalid(format!("`{what}` is NULL")))
}

/// [`live`] for a mutable object.
///
/// # Safety
/// `p` is NULL or points to a live `T` that nothing else uses meanwhile.
pub unsafe fn live_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: NULL or live and unshared, by the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| invalid(format!("`{what}` is NULL")))
}

/// Checks an out-parameter is not NULL.
pub fn out<T>(p: *mut T, what: &str) -> Result<()> {
    if p.is_null() {
        Err(invalid(format!("`{what}` is NULL")))
    } else {
        Ok(())
    }
}

/// `text` as a C string: a NUL inside (never in Membrane's escaped messages) is written
/// as `\0`.
pub fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

/// `text` as a string owned by the caller, freed with `membrane_string_free`.
pub fn owned_string(text: &str) -> *mut c_char {
    c_string(text).into_raw()
}

/// How many bytes precede a buffer handed to C: its length, so that `membrane_bytes_free`
/// needs only the pointer. 16 keeps the data as aligned as `malloc`'s.
const HEADER: usize = 16;

/// `bytes` as a buffer owned by the caller, freed with `membrane_bytes_free`; NULL when
/// empty.
pub fn owned_bytes(bytes: &[u8]) -> *mut u8 {
    if bytes.is_empty() {
        return std::ptr::null_mut();
    }
    let mut v = Vec::with_capacity(HEADER + bytes.len());
    v.extend_from_slice(&bytes.len().to_ne_bytes());
    v.resize(HEADER, 0);
    v.extend_from_slice(bytes);
    let raw = Box::into_raw(v.into_boxed_slice()) as *mut u8;
    // SAFETY: the allocation holds HEADER + len bytes; HEADER is inside it.
    unsafe { raw.add(HEADER) }
}

/// Frees a string returned by the library. NULL does nothing.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_string_free(s: *mut c_char) {
    guard_plain((), || {
        if !s.is_null() {
            // SAFETY: made by `CString::into_raw` (`owned_string`), by the contract.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

/// Frees a byte buffer returned by the library. NULL does nothing.
///
/// # Safety
/// `bytes` is NULL or a buffer returned by this library and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_bytes_free(bytes: *mut u8) {
    guard_plain((), || {
        if bytes.is_null() {
            return;
        }
        // SAFETY: made by `owned_bytes`: the allocation starts HEADER bytes before, with
        // the length in its first bytes, and holds HEADER + length bytes.
        unsafe {
            let start = bytes.sub(HEADER);
            let mut len = [0u8; size_of::<usize>()];
            std::ptr::copy_nonoverlapping(start, len.as_mut_ptr(), len.len());
            let total = HEADER + usize::from_ne_bytes(len);
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                start, total,
            )));
        }
    })
}

/// The library's version (the `membrane` crate's), a static string: do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn membrane_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
