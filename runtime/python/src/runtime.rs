//! `membrane._native.Runtime`: the engine, the host functions written in Python, and the
//! tokio runtime that loads apps and runs async calls.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyAny;
use tokio::runtime::Handle;

use crate::app::App;
use crate::{errors, host, spec};

/// The tokio runtime of a `Runtime` (two workers), shared with its apps. It is shut down
/// without waiting: the thread that drops it holds the GIL, which a worker delivering an
/// outcome may be waiting for.
pub struct Tokio(Option<tokio::runtime::Runtime>);

impl Tokio {
    fn new() -> std::io::Result<Tokio> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("membrane-python")
            .enable_all()
            .build()?;
        Ok(Tokio(Some(rt)))
    }

    /// Where loads and async calls run.
    pub fn handle(&self) -> &Handle {
        match &self.0 {
            Some(rt) => rt.handle(),
            None => unreachable!("the tokio runtime lives until dropped"),
        }
    }
}

impl Drop for Tokio {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

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
