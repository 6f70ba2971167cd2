//! Host interfaces implemented by Python functions (`HostInterface::func_dynamic`): each
//! function declares its WIT signature, checked against the importer's when an app loads,
//! and runs on the guest's thread with the GIL taken for the time of the call.
//!
//! The function gets the parameters as Python values and returns the result (`None` when
//! there is none). For a `result<T, E>` result it returns the `ok` payload (or
//! `membrane.Ok`/`membrane.Err`) and raises `membrane.ResultError(e)` for `err(e)`. Any other
//! exception fails the guest's call (`HostPanic`, with the exception as the `__cause__` of
//! what the caller gets); the host and the interpreter go on.

use membrane::{Error, ErrorKind, HostInterface, Type, Val, type_name};
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};
use wasmtime::component::types::ComponentFunc;

use crate::errors::PythonFailure;
use crate::{classes, lift, lower};

/// The interface `name` of `funcs`: `(name, signature, callable)` each.
pub fn interface(name: &str, funcs: Vec<(String, String, Py<PyAny>)>) -> HostInterface {
    funcs
        .into_iter()
        .fold(HostInterface::new(name), |iface, (fname, signature, f)| {
            iface.func_dynamic(&fname, &signature, move |ty, args, results| {
                Python::attach(|py| call(py, f.bind(py), ty, args, results))
            })
        })
}

fn call(
    py: Python<'_>,
    f: &Bound<'_, PyAny>,
    ty: &ComponentFunc,
    args: &[Val],
    results: &mut [Val],
) -> membrane::Result<()> {
    let params: Vec<Bound<'_, PyAny>> = ty
        .params()
        .zip(args)
        .map(|((_, t), v)| lift::lift(py, v, &t))
        .collect::<PyResult<_>>()
        .map_err(|e| failure(py, e))?;
    let params = PyTuple::new(py, params).map_err(|e| failure(py, e))?;
    let returned = f.call1(params);
    let result_ty: Vec<Type> = ty.results().collect();
    let (Some(slot), [rty]) = (results.first_mut(), result_ty.as_slice()) else {
        return returned.map(drop).map_err(|e| failure(py, e));
    };
    *slot = match (returned, rty) {
        (Ok(v), Type::Result(r)) => {
            let is = |cls: PyResult<&Bound<'_, PyType>>| {
                cls.and_then(|cls| v.is_instance(cls))
                    .map_err(|e| failure(py, e))
            };
            if is(classes::ok(py))? || is(classes::err(py))? {
                lower::lower(&v, rty).map_err(|why| unfit(rty, why))?
            } else {
                Val::Result(Ok(payload(&v, r.ok()).map_err(|why| unfit(rty, why))?))
            }
        }
        (Err(e), Type::Result(r)) if is_result_error(py, &e) => {
            let value = e.value(py).getattr("value").map_err(|e| failure(py, e))?;
            Val::Result(Err(payload(&value, r.err()).map_err(|why| unfit(rty, why))?))
        }
        (Ok(v), _) => lower::lower(&v, rty).map_err(|why| unfit(rty, why))?,
        (Err(e), _) => return Err(failure(py, e)),
    };
    Ok(())
}

fn is_result_error(py: Python<'_>, e: &PyErr) -> bool {
    classes::result_error(py).is_ok_and(|cls| e.is_instance(py, cls))
}

/// The payload of a result case: `None` when the case has no type.
fn payload(v: &Bound<'_, PyAny>, ty: Option<Type>) -> Result<Option<Box<Val>>, String> {
    match ty {
        Some(t) => Ok(Some(Box::new(lower::lower(v, &t)?))),
        None if v.is_none() => Ok(None),
        None => Err(": the case has no payload, got one".into()),
    }
}

fn failure(py: Python<'_>, e: PyErr) -> Error {
    let failure = PythonFailure::new(py, e);
    Error::new(ErrorKind::HostPanic, failure.text().to_string()).with_source(failure)
}

fn unfit(ty: &Type, why: String) -> Error {
    Error::new(
        ErrorKind::HostPanic,
        format!(
            "the Python function returned a value that is not a {}: result{why}",
            type_name(ty)
        ),
    )
}
