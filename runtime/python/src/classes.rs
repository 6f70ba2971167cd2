//! The Python classes the native module makes and recognizes, defined in the package's
//! Python files (python/membrane) and imported once.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

macro_rules! class {
    ($(#[doc = $doc:literal])* $name:ident, $module:literal, $attr:literal) => {
        $(#[doc = $doc])*
        pub fn $name(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
            static CELL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            CELL.import(py, $module, $attr)
        }
    };
}

class!(
    /// `membrane.Some`: `some(x)` where `None` alone would be ambiguous.
    some, "membrane.values", "Some"
);
class!(
    /// `membrane.Ok`: the `ok` case of a result below the top of a value.
    ok, "membrane.values", "Ok"
);
class!(
    /// `membrane.Err`: the `err` case of a result below the top of a value.
    err, "membrane.values", "Err"
);
class!(
    /// `membrane.Variant`: `(case, value)`.
    variant, "membrane.values", "Variant"
);
class!(
    /// `membrane.ResultError`: the `err` value of a call's top-level result.
    result_error, "membrane.errors", "ResultError"
);
class!(
    /// `membrane.Error`: the base class of Membrane's exceptions.
    error, "membrane.errors", "Error"
);

/// `membrane.errors.BY_KIND`: the exception class of each error kind, by name.
pub fn by_kind(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    static CELL: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    CELL.import(py, "membrane.errors", "BY_KIND")
}
