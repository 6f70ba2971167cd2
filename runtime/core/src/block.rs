//! Waiting for a future on the current thread, for the synchronous paths that must wait
//! for work done elsewhere (a key-value backend's answer, a WASI 0.3 instance's call).
//!
//! The future is polled on this thread and the thread parked between polls; nothing here
//! needs an executor, so the future must be driven elsewhere (a writer thread, another
//! runtime, a tokio task). It is polled outside tokio's cooperative budget: inside a task
//! whose budget ran out, tokio's channels answer "not yet" and defer the wake-up until the
//! task yields, which a thread parked here never does. On a worker thread of a
//! multi-threaded tokio runtime, the wait happens in `block_in_place`, so the worker's
//! other tasks move to another thread meanwhile.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

/// Runs `f` to its end on this thread, giving up at `deadline` (`None` then).
pub fn block_on<F: Future>(f: F, deadline: Option<Instant>) -> Option<F::Output> {
    let mut f = std::pin::pin!(tokio::task::unconstrained(f));
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
        return Some(r);
    }
    let mut park = || {
        loop {
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    std::thread::park_timeout(left);
                }
            }
            if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                return Some(r);
            }
        }
    };
    if on_multi_thread_runtime() {
        tokio::task::block_in_place(park)
    } else {
        park()
    }
}

/// Whether this thread is a worker of a multi-threaded tokio runtime.
fn on_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Whether this thread runs a single-threaded tokio runtime, whose tasks cannot run while
/// the thread waits here.
pub fn on_current_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}
