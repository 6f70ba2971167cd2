//! `membrane_error_t`: a `membrane::Error` with its fields as C strings, read through
//! accessors. Strings returned by the accessors belong to the error and live until
//! `membrane_error_free`.

use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use membrane::{Error, Result};

use crate::ffi::{c_string, guard_plain, panicked};

/// An error handed to C (`membrane_error_t`).
pub struct MembraneError {
    kind: CString,
    message: CString,
    module: Option<CString>,
    export: Option<CString>,
    key: Option<CString>,
    file: Option<CString>,
    line: usize,
    /// The problems of an error that reports several; empty when it is the only one.
    problems: Vec<MembraneError>,
}

impl MembraneError {
    /// The C form of `e`; the message is [`membrane::chain`] (causes included, escaped).
    pub fn from_error(e: &Error) -> Self {
        MembraneError {
            kind: c_string(e.kind().as_str()),
            message: c_string(&membrane::chain(e)),
            module: e.module().map(c_string),
            export: e.export().map(c_string),
            key: e.key().map(c_string),
            file: e.location().map(|l| c_string(&l.file.to_string_lossy())),
            line: e.location().map_or(0, |l| l.line),
            // `problems` is the error itself when it is the only one (never nested).
            problems: match e.problems() {
                [only] if std::ptr::eq(only, e) => Vec::new(),
                list => list.iter().map(MembraneError::from_error).collect(),
            },
        }
    }

    /// Problem `index`: the error itself when it reports one.
    fn problem(&self, index: usize) -> Option<&MembraneError> {
        if self.problems.is_empty() {
            (index == 0).then_some(self)
        } else {
            self.problems.get(index)
        }
    }
}

fn text(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Reads a field of `error`, NULL when `error` is.
///
/// # Safety
/// `error` is NULL or a live error.
unsafe fn field<T: Copy>(
    error: *const MembraneError,
    none: T,
    f: impl FnOnce(&MembraneError) -> T,
) -> T {
    guard_plain(none, || {
        // SAFETY: NULL or live, by the caller's contract.
        match unsafe { error.as_ref() } {
            Some(e) => f(e),
            None => none,
        }
    })
}

/// The error's kind, such as `"timeout"` (see the header for the list).
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_kind(error: *const MembraneError) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(error, std::ptr::null(), |e| e.kind.as_ptr()) }
}

/// The message, with its causes.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_message(error: *const MembraneError) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(error, std::ptr::null(), |e| e.message.as_ptr()) }
}

/// The module concerned, or NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_module(error: *const MembraneError) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(error, std::ptr::null(), |e| text(&e.module)) }
}

/// The export or interface function concerned, or NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_export(error: *const MembraneError) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(error, std::ptr::null(), |e| text(&e.export)) }
}

/// The manifest key to change, or NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_key(error: *const MembraneError) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(error, std::ptr::null(), |e| text(&e.key)) }
}

/// The manifest file of the problem, or NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_file(error: *const MembraneError) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(error, std::ptr::null(), |e| text(&e.file)) }
}

/// The manifest line of the problem (from 1), or 0.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_line(error: *const MembraneError) -> usize {
    // SAFETY: forwarded contract.
    unsafe { field(error, 0, |e| e.line) }
}

/// How many problems the error reports: several for a load that found several, else 1.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_problem_count(error: *const MembraneError) -> usize {
    // SAFETY: forwarded contract.
    unsafe { field(error, 0, |e| e.problems.len().max(1)) }
}

/// Problem `index`, an error borrowed from `error` (not freed on its own; the error itself
/// when it reports one problem), or NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_problem(
    error: *const MembraneError,
    index: usize,
) -> *const MembraneError {
    // SAFETY: forwarded contract.
    unsafe {
        field(error, std::ptr::null(), |e| {
            e.problem(index)
                .map_or(std::ptr::null(), |p| p as *const MembraneError)
        })
    }
}

/// The message of problem `index`, or NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_problem_message(
    error: *const MembraneError,
    index: usize,
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe {
        field(error, std::ptr::null(), |e| {
            e.problem(index)
                .map_or(std::ptr::null(), |p| p.message.as_ptr())
        })
    }
}

/// Frees an error. NULL does nothing.
///
/// # Safety
/// `error` is NULL or an error the library returned through an out-parameter, not freed
/// yet (never one from `membrane_error_problem`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn membrane_error_free(error: *mut MembraneError) {
    guard_plain((), || {
        if !error.is_null() {
            // SAFETY: made by `Box::into_raw` in `set_error`, by the contract.
            drop(unsafe { Box::from_raw(error) });
        }
    })
}

/// Runs `f`, and on an error or a panic writes the error to `*error` (when `error` is not
/// NULL) and returns `fail`.
///
/// # Safety
/// `error` is NULL or points to writable memory for one pointer.
pub unsafe fn guard<T>(
    error: *mut *mut MembraneError,
    fail: T,
    f: impl FnOnce() -> Result<T>,
) -> T {
    let outcome = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(panicked(payload.as_ref())),
    };
    match outcome {
        Ok(v) => v,
        Err(e) => {
            // SAFETY: the caller's contract: NULL or writable.
            unsafe { set_error(error, e) };
            fail
        }
    }
}

/// Writes `e` to `*error` unless `error` is NULL (then the error is dropped).
///
/// # Safety
/// `error` is NULL or points to writable memory for one pointer.
pub unsafe fn set_error(error: *mut *mut MembraneError, e: Error) {
    if error.is_null() {
        return;
    }
    let boxed = Box::into_raw(Box::new(MembraneError::from_error(&e)));
    // SAFETY: `error` is not NULL, and writable by the caller's contract.
    unsafe { *error = boxed };
}
