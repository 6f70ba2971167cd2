//! WIT values ([`Val`]) into Python values, directed by their WIT type (the mapping is
//! documented in python/membrane/values.py).

use membrane::{Type, Val, type_name};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyString, PyTuple};

use crate::classes;
use crate::handles::Handles;

/// `val`, of type `ty`, as a Python value.
pub fn lift<'py>(py: Python<'py>, val: &Val, ty: &Type) -> PyResult<Bound<'py, PyAny>> {
    lift_in(py, val, ty, None)
}

/// [`lift`] for a parameter of a host function: its handles become the Python objects
/// behind them.
pub fn lift_with<'py>(
    py: Python<'py>,
    val: &Val,
    ty: &Type,
    handles: &mut Handles<'_, '_>,
) -> PyResult<Bound<'py, PyAny>> {
    lift_in(py, val, ty, Some(handles))
}

fn lift_in<'py>(
    py: Python<'py>,
    val: &Val,
    ty: &Type,
    mut h: Option<&mut Handles<'_, '_>>,
) -> PyResult<Bound<'py, PyAny>> {
    if let (Val::Resource(r), Type::Own(_) | Type::Borrow(_), Some(h)) = (val, ty, h.as_deref_mut())
    {
        return h.object(py, r);
    }
    let mut lift = |val: &Val, ty: &Type| lift_in(py, val, ty, h.as_deref_mut());
    Ok(match (val, ty) {
        (Val::Bool(b), _) => b.into_pyobject(py)?.to_owned().into_any(),
        (Val::S8(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::U8(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::S16(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::U16(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::S32(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::U32(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::S64(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::U64(n), _) => n.into_pyobject(py)?.into_any(),
        (Val::Float32(x), _) => f64::from(*x).into_pyobject(py)?.into_any(),
        (Val::Float64(x), _) => x.into_pyobject(py)?.into_any(),
        (Val::Char(c), _) => PyString::new(py, c.encode_utf8(&mut [0; 4])).into_any(),
        (Val::String(s), _) => PyString::new(py, s).into_any(),
        (Val::List(items), Type::List(l)) => {
            let elem = l.ty();
            if matches!(elem, Type::U8) {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|v| match v {
                        Val::U8(b) => *b,
                        _ => 0,
                    })
                    .collect();
                PyBytes::new(py, &bytes).into_any()
            } else {
                let out = PyList::empty(py);
                for item in items {
                    out.append(lift(item, &elem)?)?;
                }
                out.into_any()
            }
        }
        (Val::Record(fields), Type::Record(r)) => {
            let out = PyDict::new(py);
            for ((name, v), f) in fields.iter().zip(r.fields()) {
                out.set_item(name, lift(v, &f.ty)?)?;
            }
            out.into_any()
        }
        (Val::Tuple(items), Type::Tuple(t)) => {
            let out: Vec<Bound<'py, PyAny>> = items
                .iter()
                .zip(t.types())
                .map(|(v, t)| lift(v, &t))
                .collect::<PyResult<_>>()?;
            PyTuple::new(py, out)?.into_any()
        }
        (Val::Variant(case, payload), Type::Variant(v)) => {
            let payload_ty = v.cases().find(|c| c.name == case).and_then(|c| c.ty);
            let value = match (payload, payload_ty) {
                (Some(p), Some(t)) => lift(p, &t)?,
                _ => py.None().into_bound(py),
            };
            classes::variant(py)?.call1((case, value))?
        }
        (Val::Enum(case), _) => PyString::new(py, case).into_any(),
        (Val::Option(None), _) => py.None().into_bound(py),
        (Val::Option(Some(v)), Type::Option(o)) => {
            let inner = o.ty();
            let value = lift(v, &inner)?;
            // `option<option<T>>`: `Some(None)` tells some(none) from none.
            if matches!(inner, Type::Option(_)) {
                classes::some(py)?.call1((value,))?
            } else {
                value
            }
        }
        (Val::Result(r), Type::Result(t)) => {
            let (cls, payload, payload_ty) = match r {
                Ok(p) => (classes::ok(py)?, p, t.ok()),
                Err(p) => (classes::err(py)?, p, t.err()),
            };
            let value = match (payload.as_deref(), payload_ty) {
                (Some(p), Some(t)) => lift(p, &t)?,
                _ => py.None().into_bound(py),
            };
            cls.call1((value,))?
        }
        (Val::Flags(names), _) => PySet::new(py, names)?.into_any(),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "values of type {} cannot be passed to Python",
                type_name(ty)
            )));
        }
    })
}

/// The payload of a result case, or `None` when the case has none.
pub fn payload_or_none<'py>(
    py: Python<'py>,
    payload: Option<&Val>,
    ty: Option<Type>,
) -> PyResult<Bound<'py, PyAny>> {
    match (payload, ty) {
        (Some(p), Some(t)) => lift(py, p, &t),
        _ => Ok(py.None().into_bound(py)),
    }
}
