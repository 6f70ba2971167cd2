//! Calls for asyncio: the guest runs on the runtime's tokio workers, never on the event
//! loop's thread; the outcome is handed to the loop with `call_soon_threadsafe` (the GIL is
//! taken only for that), and cancelling the asyncio task drops the Rust future, which stops
//! the guest wherever it is and frees its instance slot (`membrane::App::call`).

use std::sync::Arc;

use membrane::{Function, Val};
use pyo3::prelude::*;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::{call, classes};

/// A call started by `App.start_call`.
#[pyclass(module = "membrane._native", frozen)]
pub struct Call {
    task: AbortHandle,
}

#[pymethods]
impl Call {
    /// Stops the call: the guest is interrupted at once and its future never completes.
    fn cancel(&self) {
        self.task.abort();
    }

    /// Whether the call has ended (completed or cancelled).
    fn done(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts the call of `func` of `module` with `vals` on `tokio`; its outcome goes to
/// `future` through `event_loop`.
pub fn start(
    tokio: &Handle,
    app: membrane::App,
    module: String,
    func: Arc<Function>,
    vals: Vec<Val>,
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
) -> Call {
    let task = tokio.spawn(async move {
        let out = app.call(&module, func.name(), &vals).await;
        Python::attach(|py| {
            let (ok, value) = call::outcome(py, &module, &func, out);
            let delivered = classes::deliver(py).and_then(|deliver| {
                event_loop.call_method1(py, "call_soon_threadsafe", (deliver, future, ok, value))
            });
            // A closed event loop refuses; nobody waits for the outcome then.
            drop(delivered);
        });
    });
    Call {
        task: task.abort_handle(),
    }
}
