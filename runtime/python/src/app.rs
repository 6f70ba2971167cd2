//! `membrane._native.App`: a loaded app, and calls of its exports from Python.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::asyncio::{self, Call, Inbox};
use crate::executor::Tokio;
use crate::{call, errors};

/// A loaded app (`membrane::App`): call its modules' exports.
#[pyclass(module = "membrane._native", frozen)]
pub struct App {
    app: membrane::App,
    tokio: Arc<Tokio>,
    names: Names,
}

impl App {
    /// Wraps a loaded app; its async calls run on `tokio`.
    pub fn new(app: membrane::App, tokio: Arc<Tokio>) -> Self {
        App {
            app,
            tokio,
            names: Names::default(),
        }
    }
}

/// The (module, export) names of recent calls as Rust strings, found by the identity of
/// the Python `str` objects they came from (a caller passes the same literals each time):
/// with the stable ABI of Python 3.9, reading a `str` copies it through a `bytes` object.
/// The entries keep their `str`s alive, so an identity is never reused while cached.
#[derive(Default)]
struct Names(Mutex<Vec<NamePair>>);

type NamePair = (Py<PyString>, Py<PyString>, Arc<str>, Arc<str>);

impl Names {
    /// At most this many pairs are kept; later ones are read each time.
    const MAX: usize = 32;

    fn get(
        &self,
        module: &Bound<'_, PyString>,
        export: &Bound<'_, PyString>,
    ) -> PyResult<(Arc<str>, Arc<str>)> {
        let mut names = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (m, e, ms, es) in names.iter() {
            if m.as_ptr() == module.as_ptr() && e.as_ptr() == export.as_ptr() {
                return Ok((ms.clone(), es.clone()));
            }
        }
        let (ms, es): (Arc<str>, Arc<str>) = (module.to_cow()?.into(), export.to_cow()?.into());
        if names.len() < Self::MAX {
            names.push((
                module.clone().unbind(),
                export.clone().unbind(),
                ms.clone(),
                es.clone(),
            ));
        }
        Ok((ms, es))
    }
}

#[pymethods]
impl App {
    /// Calls `export` of `module` on this thread, with the GIL released while the guest
    /// runs (`membrane::App::call_blocking`).
    #[pyo3(signature = (module, export, *args))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        module: &Bound<'py, PyString>,
        export: &Bound<'py, PyString>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (module, export) = self.names.get(module, export)?;
        let (module, export) = (&*module, &*export);
        let func = self
            .app
            .function(module, export)
            .map_err(|e| errors::to_py(py, &e))?;
        let vals = call::args(module, &func, args).map_err(|e| errors::to_py(py, &e))?;
        let app = &self.app;
        let name = func.name();
        let out = py
            .detach(|| app.call_blocking(module, name, &vals))
            .map_err(|e| errors::to_py(py, &e))?;
        call::results(py, module, &func, &out)
    }

    /// Starts a call of `export` of `module` on the runtime's tokio workers; its outcome
    /// completes `future` (an asyncio future of the loop whose inbox is `inbox`). The
    /// returned handle cancels it.
    fn start_call(
        &self,
        py: Python<'_>,
        module: String,
        export: &str,
        args: &Bound<'_, PyTuple>,
        inbox: &Bound<'_, Inbox>,
        future: Py<PyAny>,
    ) -> PyResult<Call> {
        let func = self
            .app
            .function(&module, export)
            .map_err(|e| errors::to_py(py, &e))?;
        let vals = call::args(&module, &func, args).map_err(|e| errors::to_py(py, &e))?;
        Ok(asyncio::start(
            self.tokio.handle(),
            self.app.clone(),
            module,
            func,
            vals,
            inbox.get(),
            future,
        ))
    }

    /// Runs the entry module's `wasi:cli/run` with `args` and returns its exit status
    /// (the GIL released meanwhile).
    #[pyo3(signature = (args = Vec::new()))]
    fn run(&self, py: Python<'_>, args: Vec<String>) -> PyResult<i32> {
        let (app, tokio) = (&self.app, &self.tokio);
        py.detach(|| tokio.handle().block_on(app.run(args, false)))
            .map_err(|e| errors::to_py(py, &e))
    }

    /// The names of the app's modules, sorted.
    fn modules(&self) -> Vec<String> {
        self.app.modules().map(str::to_string).collect()
    }

    /// The WIT signature of `export` of `module`: `func(a: u32) -> string`.
    fn signature(&self, py: Python<'_>, module: &str, export: &str) -> PyResult<String> {
        let func = self
            .app
            .function(module, export)
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(call::signature(&func))
    }

    /// The full name of `export` of `module` (`ns:pkg/iface@1.0.0#func`).
    fn export_name(&self, py: Python<'_>, module: &str, export: &str) -> PyResult<String> {
        let func = self
            .app
            .function(module, export)
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(func.name().to_string())
    }
}
