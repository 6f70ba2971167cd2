//! What an app says about the worker processes of its `process` modules (tests, tools).

use crate::app::App;
use crate::error::Result;
#[cfg(feature = "test-hooks")]
use crate::error::{Error, ErrorKind};
use crate::host::Worker;

/// The process id of the worker now serving `module` (`placement = "process"`), if one
/// runs. For tests and tools that watch or signal workers.
pub fn worker_pid(app: &App, module: &str) -> Result<Option<u32>> {
    let m = app.module(module)?;
    let g = m.current_full();
    Ok(g.transport()
        .and_then(|t| Worker::of(&**t))
        .and_then(Worker::pid))
}

/// Runs the sandbox self-check inside `module`'s worker: `request` is JSON naming what to
/// try (see `sandbox/probe.rs`); the answer says what the kernel refused. Tests only.
#[cfg(feature = "test-hooks")]
pub fn worker_self_check(app: &App, module: &str, request: &str) -> Result<String> {
    let m = app.module(module)?;
    let g = m.current_full();
    let w = g
        .transport()
        .and_then(|t| Worker::of(&**t))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("module `{module}` does not run in a worker process"),
            )
            .with_module(module)
        })?;
    w.probe(request)
}
