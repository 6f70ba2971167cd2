//! Python values into WIT values ([`Val`]), directed by the WIT type they must have.
//!
//! A value that does not fit its type is refused with a message that says where inside the
//! value it is (`[2].point.x: 300 is out of range for u8 (0 to 255)`); the caller puts the
//! argument's name in front. The mapping is documented in python/membrane/values.py.

use membrane::{Type, Val, type_name};
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

use crate::classes;
use crate::handles::Handles;

/// Why a value does not fit: the path inside the value (`[2].x`, empty at the top)
/// followed by `: ` and the reason.
pub type Unfit = String;

/// The recursion of [`lower_in`], carrying its handles.
type Lower<'f, 'py> = dyn FnMut(&Bound<'py, PyAny>, &Type) -> Result<Val, Unfit> + 'f;

/// `obj` as a value of type `ty`.
pub fn lower(obj: &Bound<'_, PyAny>, ty: &Type) -> Result<Val, Unfit> {
    lower_in(obj, ty, None)
}

/// [`lower`] for a result of a host function: objects where its type has a handle become
/// new handles.
pub fn lower_with(
    obj: &Bound<'_, PyAny>,
    ty: &Type,
    handles: &mut Handles<'_, '_>,
) -> Result<Val, Unfit> {
    lower_in(obj, ty, Some(handles))
}

fn lower_in<'py>(
    obj: &Bound<'py, PyAny>,
    ty: &Type,
    mut h: Option<&mut Handles<'_, '_>>,
) -> Result<Val, Unfit> {
    if let (Type::Own(rt), Some(h)) = (ty, h.as_deref_mut()) {
        return h.handle(obj, rt);
    }
    let mut lower = |o: &Bound<'py, PyAny>, t: &Type| lower_in(o, t, h.as_deref_mut());
    match ty {
        Type::Bool => match obj.cast::<PyBool>() {
            Ok(b) => Ok(Val::Bool(b.is_true())),
            Err(_) => Err(expected("a bool", ty, obj)),
        },
        Type::S8 => int(obj, ty).map(|n| Val::S8(n as i8)),
        Type::U8 => int(obj, ty).map(|n| Val::U8(n as u8)),
        Type::S16 => int(obj, ty).map(|n| Val::S16(n as i16)),
        Type::U16 => int(obj, ty).map(|n| Val::U16(n as u16)),
        Type::S32 => int(obj, ty).map(|n| Val::S32(n as i32)),
        Type::U32 => int(obj, ty).map(|n| Val::U32(n as u32)),
        Type::S64 => int(obj, ty).map(|n| Val::S64(n as i64)),
        Type::U64 => int(obj, ty).map(|n| Val::U64(n as u64)),
        Type::Float32 => float(obj, ty).map(|x| Val::Float32(x as f32)),
        Type::Float64 => float(obj, ty).map(Val::Float64),
        Type::Char => {
            let s = string(obj, ty)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Val::Char(c)),
                _ => Err(format!(
                    ": expected char (a str of one character), got a str of {} characters",
                    s.chars().count()
                )),
            }
        }
        Type::String => string(obj, ty).map(Val::String),
        Type::List(l) => {
            let elem = l.ty();
            if matches!(elem, Type::U8)
                && let Some(bytes) = bytes_of(obj)?
            {
                return Ok(Val::List(bytes.into_iter().map(Val::U8).collect()));
            }
            let items = items(obj, ty)?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(lower(item, &elem).map_err(|e| format!("[{i}]{e}"))?);
            }
            Ok(Val::List(out))
        }
        Type::Record(r) => record(obj, ty, r, &mut lower),
        Type::Tuple(t) => {
            if !(obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<PyList>()) {
                return Err(expected("a tuple", ty, obj));
            }
            let items = items(obj, ty)?;
            let types: Vec<Type> = t.types().collect();
            if items.len() != types.len() {
                return Err(format!(
                    ": expected {} (a tuple of {}), got a tuple of {}",
                    type_name(ty),
                    types.len(),
                    items.len()
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, t)) in items.iter().zip(&types).enumerate() {
                out.push(lower(item, t).map_err(|e| format!("[{i}]{e}"))?);
            }
            Ok(Val::Tuple(out))
        }
        Type::Variant(v) => {
            let (case, payload) = case_of(obj, ty)?;
            let Some(c) = v.cases().find(|c| c.name == case || c.name == kebab(&case)) else {
                return Err(format!(": no case `{case}` in {}", type_name(ty)));
            };
            let name = c.name.to_string();
            let payload = match (c.ty, payload) {
                (None, None) => None,
                (None, Some(p)) if p.is_none() => None,
                (None, Some(_)) => {
                    return Err(format!(".{name}: the case has no payload, got one"));
                }
                (Some(t), Some(p)) => {
                    Some(Box::new(lower(&p, &t).map_err(|e| format!(".{name}{e}"))?))
                }
                (Some(t), None) => {
                    return Err(format!(
                        ".{name}: the case takes a {} payload, got none",
                        type_name(&t)
                    ));
                }
            };
            Ok(Val::Variant(name, payload))
        }
        Type::Enum(e) => {
            let s = name_of(obj, ty)?;
            match e.names().find(|n| *n == s || *n == kebab(&s)) {
                Some(n) => Ok(Val::Enum(n.to_string())),
                None => Err(format!(": no case `{s}` in {}", type_name(ty))),
            }
        }
        Type::Option(o) => {
            if obj.is_none() {
                return Ok(Val::Option(None));
            }
            let inner = o.ty();
            let some = if obj
                .is_instance(classes::some(obj.py()).map_err(py_text)?)
                .map_err(py_text)?
            {
                obj.getattr("value").map_err(py_text)?
            } else {
                obj.clone()
            };
            let v = lower(&some, &inner).map_err(|e| format!(".some{e}"))?;
            Ok(Val::Option(Some(Box::new(v))))
        }
        Type::Result(r) => {
            let py = obj.py();
            let (is_ok, payload_ty, label) = if obj
                .is_instance(classes::ok(py).map_err(py_text)?)
                .map_err(py_text)?
            {
                (true, r.ok(), "ok")
            } else if obj
                .is_instance(classes::err(py).map_err(py_text)?)
                .map_err(py_text)?
            {
                (false, r.err(), "err")
            } else {
                return Err(format!(
                    ": expected {} (membrane.Ok(...) or membrane.Err(...)), got {}",
                    type_name(ty),
                    kind_of(obj)
                ));
            };
            let payload = obj.getattr("value").map_err(py_text)?;
            let v = match payload_ty {
                Some(t) => Some(Box::new(
                    lower(&payload, &t).map_err(|e| format!(".{label}{e}"))?,
                )),
                None if payload.is_none() => None,
                None => return Err(format!(".{label}: the case has no payload, got one")),
            };
            Ok(Val::Result(if is_ok { Ok(v) } else { Err(v) }))
        }
        Type::Flags(f) => {
            if obj.is_instance_of::<PyString>() {
                return Err(expected("a set of flag names", ty, obj));
            }
            let mut out = Vec::new();
            for item in items(obj, ty)? {
                let s = name_of(&item, ty)?;
                match f.names().find(|n| *n == s || *n == kebab(&s)) {
                    Some(n) if !out.iter().any(|o: &String| o == n) => out.push(n.to_string()),
                    Some(_) => {}
                    None => return Err(format!(": no flag `{s}` in {}", type_name(ty))),
                }
            }
            Ok(Val::Flags(out))
        }
        other => Err(format!(
            ": values of type {} cannot be passed from Python",
            type_name(other)
        )),
    }
}

/// An int that fits `ty`, widened.
fn int(obj: &Bound<'_, PyAny>, ty: &Type) -> Result<i128, Unfit> {
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
        return Err(expected("an int", ty, obj));
    }
    let n: i128 = match obj.extract::<i64>() {
        Ok(n) => n.into(),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => match obj.extract::<u64>() {
            Ok(n) => n.into(),
            Err(_) => return Err(out_of_range(&repr(obj), ty)),
        },
        Err(_) if obj.is_instance_of::<PyInt>() => return Err(out_of_range(&repr(obj), ty)),
        Err(_) => return Err(expected("an int", ty, obj)),
    };
    let (lo, hi) = bounds(ty);
    if n < lo || n > hi {
        return Err(out_of_range(&n.to_string(), ty));
    }
    Ok(n)
}

fn out_of_range(n: &str, ty: &Type) -> Unfit {
    let (lo, hi) = bounds(ty);
    format!(": {n} is out of range for {} ({lo} to {hi})", type_name(ty))
}

fn bounds(ty: &Type) -> (i128, i128) {
    match ty {
        Type::S8 => (i8::MIN.into(), i8::MAX.into()),
        Type::U8 => (0, u8::MAX.into()),
        Type::S16 => (i16::MIN.into(), i16::MAX.into()),
        Type::U16 => (0, u16::MAX.into()),
        Type::S32 => (i32::MIN.into(), i32::MAX.into()),
        Type::U32 => (0, u32::MAX.into()),
        Type::S64 => (i64::MIN.into(), i64::MAX.into()),
        _ => (0, u64::MAX.into()),
    }
}

fn float(obj: &Bound<'_, PyAny>, ty: &Type) -> Result<f64, Unfit> {
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyString>() {
        return Err(expected("a float", ty, obj));
    }
    obj.extract::<f64>()
        .map_err(|_| expected("a float", ty, obj))
}

fn string(obj: &Bound<'_, PyAny>, ty: &Type) -> Result<String, Unfit> {
    if !obj.is_instance_of::<PyString>() {
        return Err(expected("a str", ty, obj));
    }
    obj.extract::<String>().map_err(py_text)
}

/// The bytes of a `bytes`, `bytearray` or `memoryview`; `None` for anything else.
fn bytes_of(obj: &Bound<'_, PyAny>) -> Result<Option<Vec<u8>>, Unfit> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Some(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj
            .py()
            .get_type::<PyBytes>()
            .call1((obj,))
            .map_err(py_text)?;
        let b = b.cast::<PyBytes>().map_err(|e| format!(": {e}"))?;
        return Ok(Some(b.as_bytes().to_vec()));
    }
    Ok(None)
}

/// The items of a list, tuple or other iterable (not a str, bytes or dict).
fn items<'py>(obj: &Bound<'py, PyAny>, ty: &Type) -> Result<Vec<Bound<'py, PyAny>>, Unfit> {
    if obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyDict>()
    {
        return Err(expected("a list", ty, obj));
    }
    let iter = obj.try_iter().map_err(|_| expected("a list", ty, obj))?;
    iter.map(|item| item.map_err(py_text)).collect()
}

fn record<'py>(
    obj: &Bound<'py, PyAny>,
    ty: &Type,
    r: &wasmtime::component::types::Record,
    lower: &mut Lower<'_, 'py>,
) -> Result<Val, Unfit> {
    let mut out = Vec::new();
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut used = 0;
        for f in r.fields() {
            let found = match dict.get_item(f.name).map_err(py_text)? {
                Some(v) => Some(v),
                None => dict.get_item(snake(f.name)).map_err(py_text)?,
            };
            let Some(v) = found else {
                return Err(format!(": missing field `{}` of {}", f.name, type_name(ty)));
            };
            used += 1;
            out.push((
                f.name.to_string(),
                lower(&v, &f.ty).map_err(|e| format!(".{}{e}", f.name))?,
            ));
        }
        if dict.len() > used {
            let known: Vec<String> = r.fields().map(|f| f.name.to_string()).collect();
            for key in dict.keys() {
                let k = key.str().map(|s| s.to_string()).unwrap_or_default();
                if !known.iter().any(|n| *n == k || snake(n) == k) {
                    return Err(format!(": no field `{k}` in {}", type_name(ty)));
                }
            }
        }
        return Ok(Val::Record(out));
    }
    // Any object with the fields as attributes (a dataclass, a named tuple).
    for f in r.fields() {
        let v = match obj.getattr(snake(f.name).as_str()) {
            Ok(v) => v,
            Err(_) => {
                return Err(format!(
                    ": expected {} (a dict, or an object with attribute `{}`), got {}",
                    type_name(ty),
                    snake(f.name),
                    kind_of(obj)
                ));
            }
        };
        out.push((
            f.name.to_string(),
            lower(&v, &f.ty).map_err(|e| format!(".{}{e}", f.name))?,
        ));
    }
    Ok(Val::Record(out))
}

/// The case name and payload of a variant: `Variant(case, value)`, `(case, value)`,
/// `(case,)` or `case`.
fn case_of<'py>(
    obj: &Bound<'py, PyAny>,
    ty: &Type,
) -> Result<(String, Option<Bound<'py, PyAny>>), Unfit> {
    if obj.is_instance_of::<PyString>() {
        return Ok((name_of(obj, ty)?, None));
    }
    if let Ok(t) = obj.cast::<PyTuple>()
        && (t.len() == 1 || t.len() == 2)
    {
        let case = name_of(&t.get_item(0).map_err(py_text)?, ty)?;
        let payload = if t.len() == 2 {
            Some(t.get_item(1).map_err(py_text)?)
        } else {
            None
        };
        return Ok((case, payload));
    }
    Err(expected(
        "membrane.Variant(case, value), a (case, value) tuple or a case name",
        ty,
        obj,
    ))
}

fn name_of(obj: &Bound<'_, PyAny>, ty: &Type) -> Result<String, Unfit> {
    if !obj.is_instance_of::<PyString>() {
        return Err(expected("a str", ty, obj));
    }
    obj.extract::<String>().map_err(py_text)
}

fn expected(what: &str, ty: &Type, obj: &Bound<'_, PyAny>) -> Unfit {
    format!(
        ": expected {} ({what}), got {}",
        type_name(ty),
        kind_of(obj)
    )
}

/// The Python type of `obj`, for messages (never its value, which may be large).
fn kind_of(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object".into())
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    let text = obj.repr().map(|r| r.to_string()).unwrap_or_default();
    if text.len() > 40 {
        format!("{}...", &text[..37])
    } else {
        text
    }
}

/// A Python error met while reading the value (an iterator that raised, a failed
/// attribute), as an [`Unfit`] at this place.
fn py_text(e: PyErr) -> Unfit {
    Python::attach(|py| {
        let value = e.value(py);
        format!(
            ": {}",
            value.str().map(|s| s.to_string()).unwrap_or_default()
        )
    })
}

/// `max_size` -> `max-size`.
pub fn kebab(name: &str) -> String {
    name.replace('_', "-")
}

/// `max-size` -> `max_size`.
pub fn snake(name: &str) -> String {
    name.replace('-', "_")
}
