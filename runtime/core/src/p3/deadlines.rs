//! A deadline per call in an instance that runs many calls at once.
//!
//! wasmtime's epoch deadline belongs to the Store, not to a call, so a WASI 0.3 instance
//! ticks at every epoch and decides at each tick for the call whose code is running: each
//! call's guest task is registered with its deadline ([`HostState::tasks`]), and the task
//! running is found from wasmtime's async call stack (its root task is the one the host
//! started). Code of a call past its deadline is interrupted, which ends the whole Store
//! (wasmtime 48 cannot stop one task of a Store): its neighbours then fail with
//! `Unavailable`. A call that waits (a timer, I/O) costs no CPU and is never interrupted;
//! its caller is answered `Timeout` at its deadline by the caller's own timer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut, UpdateDeadline};

/// A Store's data that keeps its calls' deadlines (`HostState`, instance.rs).
pub trait Deadlines: 'static {
    /// The deadline of each call in flight by the guest task serving it, and the
    /// instance-wide deadline (the latest of them).
    fn deadlines(&mut self) -> (&mut HashMap<GuestTaskId, Instant>, &mut Instant);
}

/// Checks at every epoch tick (yielding `yield_ticks` between checks) the deadline of the
/// call whose code runs; ends the Store when its generation was retired (`retired`).
pub fn watch<T: Deadlines>(store: &mut Store<T>, retired: Arc<AtomicBool>, yield_ticks: u64) {
    store.epoch_deadline_callback(move |mut store| {
        if retired.load(Ordering::Relaxed) {
            return Err(wasmtime::Error::new(crate::classify::Retired));
        }
        Ok(if Instant::now() >= running_deadline(&mut store) {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(yield_ticks)
        })
    });
}

/// The deadline of the call whose guest task runs now (or calls the host now): its root
/// task's, or the instance's latest when the task is not one the host started.
pub fn running_deadline<T: Deadlines>(store: &mut StoreContextMut<'_, T>) -> Instant {
    let root = store.async_call_stack().ok().and_then(|stack| stack.last());
    let (tasks, latest) = store.data_mut().deadlines();
    root.and_then(|t| tasks.get(&t).copied()).unwrap_or(*latest)
}

/// Registers the task of a call with its deadline.
pub fn register(state: &mut impl Deadlines, task: GuestTaskId, deadline: Instant) {
    let (tasks, latest) = state.deadlines();
    tasks.insert(task, deadline);
    *latest = tasks.values().copied().max().unwrap_or(*latest);
}

/// Forgets the task of a call that ended.
pub fn unregister(state: &mut impl Deadlines, task: GuestTaskId) {
    let (tasks, latest) = state.deadlines();
    tasks.remove(&task);
    *latest = tasks.values().copied().max().unwrap_or(*latest);
}
