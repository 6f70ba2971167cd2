//! One call's values: the Python arguments checked and lowered against the export's
//! parameter types, and the results lifted back (shared by the synchronous and the asyncio
//! paths).

use membrane::{Error, ErrorKind, Function, Type, Val, type_name};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::{classes, errors, lift, lower};

/// The arguments of a call of `func` (an export of `module`), lowered; an argument that
/// does not fit is an `InvalidArgs` error naming it and where inside it.
pub fn args(module: &str, func: &Function, args: &Bound<'_, PyTuple>) -> Result<Vec<Val>, Error> {
    let invalid = |message: String| {
        Error::new(ErrorKind::InvalidArgs, message)
            .with_module(module)
            .with_export(func.name())
    };
    if args.len() != func.params().len() {
        return Err(invalid(format!(
            "{} takes {} argument(s) ({}), {} given",
            func.name(),
            func.params().len(),
            params(func),
            args.len()
        )));
    }
    func.params()
        .iter()
        .zip(args.iter())
        .map(|((name, ty), arg)| {
            lower::lower(&arg, ty)
                .map_err(|why| invalid(format!("{}: argument `{name}`{why}", func.name())))
        })
        .collect()
}

/// The results of a call as one Python value: `None` for none, the value for one; a
/// top-level `result` gives its `ok` payload, or raises `membrane.ResultError` with its
/// `err` payload.
pub fn results<'py>(
    py: Python<'py>,
    module: &str,
    func: &Function,
    vals: &[Val],
) -> PyResult<Bound<'py, PyAny>> {
    match (func.results(), vals) {
        ([Type::Result(t)], [Val::Result(r)]) => match r {
            Ok(p) => lift::payload_or_none(py, p.as_deref(), t.ok()),
            Err(p) => {
                let value = lift::payload_or_none(py, p.as_deref(), t.err())?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("module", module)?;
                kwargs.set_item("export", func.name())?;
                let exc = classes::result_error(py)?.call((value,), Some(&kwargs))?;
                Err(PyErr::from_value(exc))
            }
        },
        ([ty], [v]) => lift::lift(py, v, ty),
        _ if vals.is_empty() => Ok(py.None().into_bound(py)),
        _ => {
            let items: Vec<Bound<'py, PyAny>> = vals
                .iter()
                .zip(func.results())
                .map(|(v, t)| lift::lift(py, v, t))
                .collect::<PyResult<_>>()?;
            Ok(PyTuple::new(py, items)?.into_any())
        }
    }
}

/// The outcome of a call as `(True, value)` or `(False, exception)`, for a future.
pub fn outcome<'py>(
    py: Python<'py>,
    module: &str,
    func: &Function,
    out: Result<Vec<Val>, Error>,
) -> (bool, Bound<'py, PyAny>) {
    let done = match out {
        Ok(vals) => results(py, module, func, &vals),
        Err(e) => Err(errors::to_py(py, &e)),
    };
    match done {
        Ok(v) => (true, v),
        Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
    }
}

/// `a: u32, b: string`.
fn params(func: &Function) -> String {
    let params: Vec<String> = func
        .params()
        .iter()
        .map(|(n, t)| format!("{n}: {}", type_name(t)))
        .collect();
    params.join(", ")
}

/// `func(a: u32, b: string) -> string`.
pub fn signature(func: &Function) -> String {
    let mut text = format!("func({})", params(func));
    match func.results() {
        [] => {}
        [t] => text.push_str(&format!(" -> {}", type_name(t))),
        many => {
            let r: Vec<String> = many.iter().map(type_name).collect();
            text.push_str(&format!(" -> ({})", r.join(", ")));
        }
    }
    text
}
