//! Host interfaces implemented by Python functions (`HostInterface::func_dynamic_with`):
//! each function declares its WIT signature, checked against the importer's when an app
//! loads, and runs on the guest's thread with the GIL taken for the time of the call.
//! Resources are implemented by Python classes (`HostInterface::resource_dynamic`); their
//! handles cross as the objects themselves (`handles.rs`).
//!
//! The function gets the parameters as Python values and returns the result (`None` when
//! there is none). For a `result<T, E>` result it returns the `ok` payload (or
//! `membrane.Ok`/`membrane.Err`) and raises `membrane.ResultError(e)` for `err(e)`. Any other
//! exception fails the guest's call (`HostPanic`, with the exception as the `__cause__` of
//! what the caller gets); the host and the interpreter go on.

use std::sync::Arc;

use membrane::{DynamicObjects, Error, ErrorKind, HostInterface, Type, Val};
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};
use wasmtime::component::types::ComponentFunc;

use crate::errors::PythonFailure;
use crate::handles::{Classes, Handles};
use crate::{classes, lift, lower};

/// The interface `name` of `funcs`, `(name, signature, callable)` each, and of the
/// resources `resources`, `(name, class)` each (dynamic resources whose values are the
/// class's instances).
pub fn interface(
    name: &str,
    funcs: Vec<(String, String, Py<PyAny>)>,
    resources: Vec<(String, Py<PyAny>)>,
) -> HostInterface {
    let iface = resources
        .iter()
        .fold(HostInterface::new(name), |iface, (r, _)| {
            iface.resource_dynamic(r)
        });
    let resource_classes: Arc<Classes> = resources.into();
    funcs
        .into_iter()
        .fold(iface, |iface, (fname, signature, f)| {
            let rc = resource_classes.clone();
            iface.func_dynamic_with(&fname, &signature, move |objects, ty, args, results| {
                Python::attach(|py| call(py, f.bind(py), objects, &rc, ty, args, results))
            })
        })
}

fn call(
    py: Python<'_>,
    f: &Bound<'_, PyAny>,
    objects: &mut DynamicObjects<'_>,
    resource_classes: &Classes,
    ty: &ComponentFunc,
    args: &[Val],
    results: &mut [Val],
) -> membrane::Result<()> {
    let mut handles = Handles::new(objects, resource_classes);
    let h = &mut handles;
    let params: Vec<Bound<'_, PyAny>> = match ty
        .params()
        .zip(args)
        .map(|((_, t), v)| lift::lift_with(py, v, &t, h))
        .collect::<PyResult<_>>()
    {
        Ok(params) => params,
        Err(e) => return Err(h.failure.take().unwrap_or_else(|| failure(py, e))),
    };
    let params = PyTuple::new(py, params).map_err(|e| failure(py, e))?;
    let returned = f.call1(params);
    let result_ty: Vec<Type> = ty.results().collect();
    let (Some(slot), [rty]) = (results.first_mut(), result_ty.as_slice()) else {
        return returned.map(drop).map_err(|e| failure(py, e));
    };
    let value = match (returned, rty) {
        (Ok(v), Type::Result(r)) => {
            let is = |cls: PyResult<&Bound<'_, PyType>>| {
                cls.and_then(|cls| v.is_instance(cls))
                    .map_err(|e| failure(py, e))
            };
            if is(classes::ok(py))? || is(classes::err(py))? {
                lower::lower_with(&v, rty, h)
            } else {
                payload(&v, r.ok(), h).map(|p| Val::Result(Ok(p)))
            }
        }
        (Err(e), Type::Result(r)) if is_result_error(py, &e) => {
            let value = e.value(py).getattr("value").map_err(|e| failure(py, e))?;
            payload(&value, r.err(), h).map(|p| Val::Result(Err(p)))
        }
        (Ok(v), _) => lower::lower_with(&v, rty, h),
        (Err(e), _) => return Err(failure(py, e)),
    };
    *slot = value.map_err(|why| match h.failure.take() {
        Some(e) => e,
        None => unfit(&h.type_name(rty), why),
    })?;
    Ok(())
}

fn is_result_error(py: Python<'_>, e: &PyErr) -> bool {
    classes::result_error(py).is_ok_and(|cls| e.is_instance(py, cls))
}

/// The payload of a result case: `None` when the case has no type.
fn payload(
    v: &Bound<'_, PyAny>,
    ty: Option<Type>,
    h: &mut Handles<'_, '_>,
) -> Result<Option<Box<Val>>, String> {
    match ty {
        Some(t) => Ok(Some(Box::new(lower::lower_with(v, &t, h)?))),
        None if v.is_none() => Ok(None),
        None => Err(": the case has no payload, got one".into()),
    }
}

fn failure(py: Python<'_>, e: PyErr) -> Error {
    let failure = PythonFailure::new(py, e);
    Error::new(ErrorKind::HostPanic, failure.text().to_string()).with_source(failure)
}

fn unfit(ty: &str, why: String) -> Error {
    Error::new(
        ErrorKind::HostPanic,
        format!("the Python function returned a value that is not a {ty}: result{why}"),
    )
}
