//! `membrane._native.Runtime`: the engine and the host functions written in Python; its
//! tokio runtime (`executor.rs`) loads apps and runs async calls.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyAny;

use crate::app::App;
use crate::executor::Tokio;
use crate::{errors, host, spec};

/// The engine (`membrane::Runtime`): loads apps and holds host interfaces.
#[pyclass(module = "membrane._native", frozen)]
pub struct Runtime {
    inner: membrane::Runtime,
    tokio: Arc<Tokio>,
}

#[pymethods]
impl Runtime {
    /// A runtime with `membrane::Config`'s defaults but for the settings given.
    #[new]
    #[pyo3(signature = (cache_dir = None, *, fuel = false, instance_slots = None, max_wasm_stack = None, metrics = true))]
    fn new(
        py: Python<'_>,
        cache_dir: Option<PathBuf>,
        fuel: bool,
        instance_slots: Option<u32>,
        max_wasm_stack: Option<usize>,
        metrics: bool,
    ) -> PyResult<Self> {
        let mut config = membrane::Config::default();
        config.cache_dir = cache_dir;
        config.fuel = fuel;
        config.metrics = metrics;
        if let Some(n) = instance_slots {
            config.instance_slots = n;
        }
        if let Some(n) = max_wasm_stack {
            config.max_wasm_stack = n;
        }
        let inner = py
            .detach(|| membrane::Runtime::new(config))
            .map_err(|e| errors::to_py(py, &e))?;
        let tokio = Tokio::new().map_err(|e| {
            errors::to_py(
                py,
                &membrane::Error::io("cannot start the tokio runtime", e),
            )
        })?;
        Ok(Runtime {
            inner,
            tokio: Arc::new(tokio),
        })
    }

    /// Reads a manifest and loads its app (the GIL released meanwhile).
    fn load(&self, py: Python<'_>, manifest: PathBuf) -> PyResult<App> {
        let (rt, tokio) = (&self.inner, &self.tokio);
        let app = py
            .detach(|| tokio.handle().block_on(rt.load(&manifest)))
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(App::new(app, self.tokio.clone()))
    }

    /// Loads an app declared by a dict (see `membrane.AppSpec`).
    fn load_spec(&self, py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<App> {
        let spec = spec::app(spec).map_err(|e| errors::to_py(py, &e))?;
        let (rt, tokio) = (&self.inner, &self.tokio);
        let app = py
            .detach(|| tokio.handle().block_on(rt.load_spec(spec)))
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(App::new(app, self.tokio.clone()))
    }

    /// Registers the host interface `name` made of `funcs`, `(name, signature, callable)`
    /// each, and of the resources `resources`, `(name, class)` each, for apps loaded
    /// afterwards (modules reach it with a link to `host`).
    #[pyo3(signature = (name, funcs, resources = Vec::new()))]
    fn provide(
        &self,
        py: Python<'_>,
        name: &str,
        funcs: Vec<(String, String, Py<PyAny>)>,
        resources: Vec<(String, Py<PyAny>)>,
    ) -> PyResult<()> {
        self.inner
            .provide(host::interface(name, funcs, resources))
            .map_err(|e| errors::to_py(py, &e))
    }
}
