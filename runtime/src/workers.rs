//! What an app says about the worker processes of its `process` modules (tests, tools).

use crate::app::App;
use crate::error::{Error, ErrorKind, Result};
use crate::worker::host::Worker;

impl App {
    /// The process id of the worker now serving `module` (`placement = "process"`), if
    /// one runs. For tests and tools that watch or signal workers.
    #[doc(hidden)]
    pub fn worker_pid(&self, module: &str) -> Result<Option<u32>> {
        let m = self.module(module)?;
        let g = m.current_full();
        Ok(g.transport()
            .and_then(|t| Worker::of(&**t))
            .and_then(Worker::pid))
    }

    /// Runs the sandbox self-check inside `module`'s worker: `request` is JSON naming
    /// what to try (see `sandbox/probe.rs`); the answer says what the kernel refused.
    /// Tests only.
    #[doc(hidden)]
    pub fn worker_self_check(&self, module: &str, request: &str) -> Result<String> {
        let m = self.module(module)?;
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
}
