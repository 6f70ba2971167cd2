//! `membrane._native.App`: a loaded app, and calls of its exports from Python.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::asyncio::{self, Call, Inbox};
use crate::executor::Tokio;
use crate::{call, errors};

/// A loaded app (`membrane::App`): call its modules' exports.
#[pyclass(module = "membrane._native", frozen)]
pub struct App {
    app: membrane::App,
    tokio: Arc<Tokio>,
}

impl App {
    /// Wraps a loaded app; its async calls run on `tokio`.
    pub fn new(app: membrane::App, tokio: Arc<Tokio>) -> Self {
        App { app, tokio }
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
        module: &str,
        export: &str,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
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
