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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut, UpdateDeadline};

use crate::instance::{HostState, YIELD_TICKS};

/// Checks at every epoch tick the deadline of the call whose code runs; ends the Store when
/// its generation was retired (`retired`).
pub fn watch(store: &mut Store<HostState>, retired: Arc<AtomicBool>) {
    store.epoch_deadline_callback(move |mut store| {
        if retired.load(Ordering::Relaxed) {
            return Err(wasmtime::Error::new(crate::classify::Retired));
        }
        Ok(if Instant::now() >= running_deadline(&mut store) {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(YIELD_TICKS)
        })
    });
}

/// The deadline of the call whose guest task runs now (or calls the host now): its root
/// task's, or the instance's latest when the task is not one the host started.
pub fn running_deadline(store: &mut StoreContextMut<'_, HostState>) -> Instant {
    let root = store.async_call_stack().ok().and_then(|stack| stack.last());
    let state = store.data();
    root.and_then(|t| state.tasks.get(&t).copied())
        .unwrap_or(state.deadline)
}

/// Registers the task of a call with its deadline.
pub fn register(state: &mut HostState, task: GuestTaskId, deadline: Instant) {
    state.tasks.insert(task, deadline);
    latest(state);
}

/// Forgets the task of a call that ended.
pub fn unregister(state: &mut HostState, task: GuestTaskId) {
    state.tasks.remove(&task);
    latest(state);
}

/// The instance-wide deadline (what WASI 0.2 functions of the guest wait until, and what a
/// task the host did not start is held to): the latest of the calls in flight.
fn latest(state: &mut HostState) {
    if let Some(d) = state.tasks.values().max() {
        state.deadline = *d;
    }
}
