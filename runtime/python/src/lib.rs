//! The Python package of Membrane: this crate is the native module `membrane._native`,
//! which the Python package in python/membrane wraps (`import membrane`).
//!
//! - `runtime`: the engine, host interfaces in Python, loads; `app`: calls.
//! - `lower` and `lift`: Python values to WIT values and back, directed by WIT types;
//!   `call`: one call's arguments and results.
//! - `asyncio`: calls awaited from asyncio, run on the runtime's tokio workers.
//! - `host`: functions of host interfaces written in Python; `handles`: their resources'
//!   handles, which cross as the Python objects behind them.
//! - `errors`: Membrane's errors as exceptions, one class per kind; `spec`: apps declared
//!   in Python.

mod app;
mod asyncio;
mod call;
mod classes;
mod errors;
mod executor;
mod handles;
mod host;
mod lift;
mod lower;
mod runtime;
mod spec;

use pyo3::prelude::*;

/// The compile cache of the user's account (`$MEMBRANE_CACHE_DIR`, else `$XDG_CACHE_HOME/membrane`, else
/// `~/.cache/membrane`), as the `membrane` command uses it; `None` without a home.
#[pyfunction]
fn default_cache_dir() -> Option<std::path::PathBuf> {
    membrane::default_cache_dir()
}

/// Membrane's native module; use it through the `membrane` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(default_cache_dir, m)?)?;
    m.add_class::<runtime::Runtime>()?;
    m.add_class::<app::App>()?;
    m.add_class::<asyncio::Call>()?;
    m.add_class::<asyncio::Inbox>()?;
    let kinds: Vec<&str> = membrane::ErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    m.add("KINDS", kinds)?;
    Ok(())
}
