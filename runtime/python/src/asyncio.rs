//! Calls for asyncio: the guest runs on the runtime's tokio workers, never on the event
//! loop's thread, and cancelling the asyncio task drops the Rust future, which stops the
//! guest wherever it is and frees its instance slot (`membrane::App::call`).
//!
//! Outcomes reach the loop through its [`Inbox`]: the worker pushes the Rust outcome onto
//! the inbox's queue without taking the GIL, and wakes the loop only when the queue was
//! empty, by writing a byte to a socket the loop watches (`loop.add_reader`); the loop's
//! reader callback (with the GIL) drains the queue, makes the Python values and completes
//! the futures. One wake-up serves every call that completed meanwhile. A loop without
//! `add_reader` (Windows' proactor loop) is woken with `call_soon_threadsafe` instead, which
//! takes the GIL on the worker.

use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};

use membrane::{Error, Function, Val};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::call;

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

/// A completed call, waiting for the loop.
struct Done {
    future: Py<PyAny>,
    module: String,
    func: Arc<Function>,
    out: Result<Vec<Val>, Error>,
}

/// The queue of an event loop's completed calls and how its loop is woken.
struct Shared {
    queue: Mutex<Vec<Done>>,
    /// The socket pair whose read end the loop watches; `None` once the loop is woken with
    /// `call_soon_threadsafe` instead.
    #[cfg(unix)]
    pipe: Mutex<Option<(UnixStream, UnixStream)>>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Vec<Done>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `done`, waking the loop if the queue was empty (the loop then drains all).
    fn push(self: &Arc<Self>, done: Done) {
        let first = {
            let mut queue = self.queue();
            queue.push(done);
            queue.len() == 1
        };
        if first {
            self.wake();
        }
    }

    fn wake(self: &Arc<Self>) {
        #[cfg(unix)]
        if let Some((_, w)) = &*self.pipe.lock().unwrap_or_else(|e| e.into_inner()) {
            // Non-blocking: a full socket already holds a wake-up.
            drop((&*w).write(&[1]));
            return;
        }
        Python::attach(|py| {
            let future = match self.queue().first() {
                Some(d) => d.future.clone_ref(py),
                None => return,
            };
            let inbox = Inbox {
                shared: self.clone(),
            };
            let woken = Py::new(py, inbox).and_then(|inbox| {
                let drain = inbox.bind(py).getattr(intern!(py, "drain"))?;
                let event_loop = future.call_method0(py, intern!(py, "get_loop"))?;
                event_loop.call_method1(py, intern!(py, "call_soon_threadsafe"), (drain,))
            });
            // A closed event loop refuses; nobody waits for the outcome then.
            drop(woken);
        });
    }
}

/// The completed calls of one event loop (`membrane._app` keeps one per loop).
#[pyclass(module = "membrane._native", frozen)]
pub struct Inbox {
    shared: Arc<Shared>,
}

#[pymethods]
impl Inbox {
    #[new]
    fn new() -> PyResult<Self> {
        #[cfg(unix)]
        let pipe = {
            let (r, w) = UnixStream::pair()?;
            r.set_nonblocking(true)?;
            w.set_nonblocking(true)?;
            Mutex::new(Some((r, w)))
        };
        Ok(Inbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                #[cfg(unix)]
                pipe,
            }),
        })
    }

    /// The descriptor the loop watches (`loop.add_reader(fd, inbox.drain)`), or `None`
    /// where there is none.
    fn fileno(&self) -> Option<i64> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let pipe = self.shared.pipe.lock().unwrap_or_else(|e| e.into_inner());
            pipe.as_ref().map(|(r, _)| i64::from(r.as_raw_fd()))
        }
        #[cfg(not(unix))]
        None
    }

    /// Wakes the loop with `call_soon_threadsafe` from now on (for a loop without
    /// `add_reader`).
    fn use_call_soon(&self) {
        #[cfg(unix)]
        self.shared
            .pipe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Completes the futures of the calls done so far (on the loop's thread); a cancelled
    /// future stays as it is. The first failure to complete one is raised after the rest.
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        #[cfg(unix)]
        if let Some((r, _)) = &*self.shared.pipe.lock().unwrap_or_else(|e| e.into_inner()) {
            let mut buf = [0u8; 64];
            while let Ok(n) = (&*r).read(&mut buf) {
                if n < buf.len() {
                    break;
                }
            }
        }
        let batch = std::mem::take(&mut *self.shared.queue());
        let mut first_err = None;
        for done in batch {
            if let Err(e) = complete(py, done) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Sets the outcome of `done` on its future unless the future is done (cancelled).
fn complete(py: Python<'_>, done: Done) -> PyResult<()> {
    let future = done.future.bind(py);
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    let (ok, value) = call::outcome(py, &done.module, &done.func, done.out);
    let method = if ok {
        intern!(py, "set_result")
    } else {
        intern!(py, "set_exception")
    };
    future.call_method1(method, PyTuple::new(py, [value])?)?;
    Ok(())
}

/// Starts the call of `func` of `module` with `vals` on `tokio`; its outcome goes to
/// `future` through `inbox`.
pub fn start(
    tokio: &Handle,
    app: membrane::App,
    module: String,
    func: Arc<Function>,
    vals: Vec<Val>,
    inbox: &Inbox,
    future: Py<PyAny>,
) -> Call {
    let shared = inbox.shared.clone();
    let task = tokio.spawn(async move {
        let out = app.call(&module, func.name(), &vals).await;
        shared.push(Done {
            future,
            module,
            func,
            out,
        });
    });
    Call {
        task: task.abort_handle(),
    }
}
