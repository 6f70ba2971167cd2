//! Membrane's errors as Python exceptions: one class per `ErrorKind` (membrane/errors.py),
//! with the error's fields as attributes, and the failure of a Python host function carried
//! through the guest's call back to the caller as the exception's `__cause__`.

use std::fmt;

use membrane::Error;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::classes;

/// The exception for `e`: an instance of the class of its kind, whose message is
/// `membrane::chain(e)` and whose attributes are `kind`, `module`, `export`, `key`,
/// `location` and `problems` (one exception per problem when there are several).
pub fn exception<'py>(py: Python<'py>, e: &Error) -> PyResult<Bound<'py, PyAny>> {
    let cls = match classes::by_kind(py)?.get_item(e.kind().as_str())? {
        Some(cls) => cls,
        None => classes::error(py)?.clone().into_any(),
    };
    // `Error::problems` is the error itself when it is a single problem; only a list of
    // several becomes exceptions.
    let problems = PyList::empty(py);
    for p in e.problems().iter().filter(|p| !std::ptr::eq(*p, e)) {
        problems.append(exception(py, p)?)?;
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("kind", e.kind().as_str())?;
    kwargs.set_item("module", e.module())?;
    kwargs.set_item("export", e.export())?;
    kwargs.set_item("key", e.key())?;
    kwargs.set_item("location", e.location().map(ToString::to_string))?;
    kwargs.set_item("problems", problems)?;
    let exc = cls.call((membrane::chain(e),), Some(&kwargs))?;
    if let Some(cause) = python_cause(e) {
        exc.setattr("__cause__", cause.value(py))?;
    }
    Ok(exc)
}

/// [`exception`] as a `PyErr`, to raise.
pub fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    match exception(py, e) {
        Ok(exc) => PyErr::from_value(exc),
        Err(failed) => failed,
    }
}

/// A Python exception raised by a host function, as the cause of the guest's failed call.
/// Its text is made while the GIL is held, so showing it never needs the interpreter.
pub struct PythonFailure {
    text: String,
    err: PyErr,
}

impl PythonFailure {
    /// Keeps `err`, described as `Type: message`.
    pub fn new(py: Python<'_>, err: PyErr) -> Self {
        let value = err.value(py);
        let name = value
            .get_type()
            .qualname()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "Exception".into());
        let text = match value.str() {
            Ok(s) if !s.to_string().is_empty() => format!("{name}: {s}"),
            _ => name,
        };
        PythonFailure { text, err }
    }

    /// `Type: message`.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PythonFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PythonFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PythonFailure").field(&self.text).finish()
    }
}

impl std::error::Error for PythonFailure {}

/// The Python exception somewhere in `e`'s causes, if a host function raised one.
fn python_cause(e: &Error) -> Option<&PyErr> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(failure) = err.downcast_ref::<PythonFailure>() {
            return Some(&failure.err);
        }
        cur = err.source();
    }
    None
}
