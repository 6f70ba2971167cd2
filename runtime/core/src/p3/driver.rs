//! One WASI 0.3 instance and the task that drives it.
//!
//! A 0.3 instance runs many calls at once, and its calls (and the streams and tasks they
//! leave running) only make progress while wasmtime's event loop for its Store runs. So
//! each instance is owned by one tokio task, its driver, which runs that loop
//! (`run_concurrent`) for as long as the instance lives and starts the calls it is handed
//! ([`Job`]s) inside it. Callers wait for their answer on a channel, each until its own
//! deadline.
//!
//! A driver stops taking calls when one of its calls was abandoned (its caller timed out
//! or went away: the guest task cannot be cancelled, so the instance is no longer known
//! to be healthy) or when its generation was replaced; it ends, dropping the Store, once
//! no call it took is still awaited. When the Store fails (a trap, or a call's code run past
//! its deadline), every call on it fails: the only call in flight gets the failure's own
//! error, calls that shared the instance get `Unavailable`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{Notify, mpsc};
use wasmtime::StoreContextMut;
use wasmtime::component::{Accessor, Instance};

use crate::classify::classify;
use crate::error::{Error, ErrorKind, Result};
use crate::instance::{HostState, LiveInstance, Recipe};
use crate::pool::{Lease, Pool};
use crate::unit::{CallCx, Controls};

/// One call handed to a driver: run inside the instance's event loop, with access to its
/// Store; it answers its caller itself.
pub type Job = Box<
    dyn for<'a> FnOnce(
            &'a Accessor<HostState>,
            Instance,
        ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>
        + Send,
>;

/// The shared side of a driver: how many calls it has, whether it takes more, how it ended.
pub struct Driver {
    jobs: mpsc::UnboundedSender<Job>,
    state: Mutex<State>,
    /// Something changed that the driver's loop must look at (a call released, a stop).
    wake: Notify,
    /// The driver ended (`State::ended` is set).
    ended: Notify,
}

#[derive(Default)]
struct State {
    /// Calls taken and not yet answered or abandoned.
    in_flight: usize,
    stopped: bool,
    /// Set when the driver ended: `Ok` when it ended by itself, else the Store's failure,
    /// and whether that call was alone on the instance.
    ended: Option<std::result::Result<(), (Arc<Error>, bool)>>,
}

/// The Store's failure, shared by the errors of every call it ended.
#[derive(Debug)]
struct Shared(Arc<Error>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

/// A copy of `e` for one more caller (kind, message and names; the cause shared).
fn copy(e: &Arc<Error>, module: &str) -> Error {
    let mut c = Error::new(e.kind(), e.message()).with_module(module);
    if let Some(x) = e.export() {
        c = c.with_export(x);
    }
    c.with_source(Shared(e.clone()))
}

impl Driver {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one more call if the driver takes calls and has fewer than `concurrency`;
    /// `Some(true)` when the instance was idle (the call starts a busy period).
    pub fn reserve(&self, concurrency: usize) -> Option<bool> {
        let mut s = self.lock();
        if s.stopped || s.ended.is_some() || s.in_flight >= concurrency {
            return None;
        }
        s.in_flight += 1;
        Some(s.in_flight == 1)
    }

    /// Hands a reserved call to the driver.
    pub fn submit(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                "the instance ended before the call could start",
            )
        })
    }

    /// A reserved call was answered, or `abandoned` by its caller (the instance then takes
    /// no more calls).
    pub fn release(&self, abandoned: bool) {
        let finished = {
            let mut s = self.lock();
            s.in_flight -= 1;
            s.stopped |= abandoned;
            s.stopped && s.in_flight == 0
        };
        // The loop only ends when finished: no wake-up per answered call.
        if finished {
            self.wake.notify_one();
        }
    }

    /// Takes no more calls; ends once the calls it has are answered.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.wake.notify_one();
    }

    /// Calls in flight, and whether it takes more.
    pub fn load(&self) -> (usize, bool) {
        let s = self.lock();
        (s.in_flight, !s.stopped && s.ended.is_none())
    }

    /// Whether the driver ended because its Store failed.
    pub fn failed(&self) -> bool {
        matches!(self.lock().ended, Some(Err(_)))
    }

    /// Whether the driver ended.
    pub fn ended(&self) -> bool {
        self.lock().ended.is_some()
    }

    fn finished(&self) -> bool {
        let s = self.lock();
        s.stopped && s.in_flight == 0
    }

    /// Why a call whose answer never came failed: waits for the driver's end, which drops
    /// the calls' answer channels just before it says how it ended.
    pub async fn failure(&self, module: &str) -> Error {
        loop {
            let ended = self.ended.notified();
            if let Some(end) = &self.lock().ended {
                return match end {
                    Err((e, true)) => copy(e, module),
                    Err((e, false)) => Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "module `{module}`: the instance serving this call was ended by a failure of a call \
                             sharing it ({}); calls of a WASI 0.3 instance share its fate, lower \
                             [modules.{module}.limits] concurrency to isolate them",
                            e.kind().as_str()
                        ),
                    )
                    .with_module(module)
                    .with_source(Shared(e.clone())),
                    Ok(()) => Error::new(
                        ErrorKind::Unavailable,
                        format!("module `{module}`: the instance ended before the call was answered"),
                    )
                    .with_module(module),
                };
            }
            ended.await;
        }
    }
}

/// Starts the driver of `instance`, which holds its pool slot (`lease`) until it ends.
pub fn start(
    instance: LiveInstance,
    recipe: Arc<Recipe>,
    lease: Lease<Arc<Pool>>,
    pool: Arc<Pool>,
    handle: &tokio::runtime::Handle,
) -> Arc<Driver> {
    let (jobs, rx) = mpsc::unbounded_channel();
    let driver = Arc::new(Driver {
        jobs,
        state: Mutex::new(State::default()),
        wake: Notify::new(),
        ended: Notify::new(),
    });
    handle.spawn(drive(driver.clone(), instance, recipe, rx, lease, pool));
    driver
}

/// Runs the instance's event loop until the driver is stopped and every call it took is
/// answered, then drops the instance and frees its slot.
async fn drive(
    driver: Arc<Driver>,
    mut instance: LiveInstance,
    recipe: Arc<Recipe>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    lease: Lease<Arc<Pool>>,
    pool: Arc<Pool>,
) {
    let d = &driver;
    let handle = instance.handle();
    let outcome = instance
        .store
        .run_concurrent(async |acc: &Accessor<HostState>| {
            let mut running = FuturesUnordered::new();
            loop {
                let wake = d.wake.notified();
                if d.finished() {
                    break;
                }
                tokio::select! {
                    Some(()) = running.next(), if !running.is_empty() => {}
                    Some(job) = rx.recv() => running.push(job(acc, handle)),
                    () = wake => {}
                }
            }
        })
        .await;
    let end = match outcome {
        Ok(()) => Ok(()),
        Err(e) => {
            let alone = d.lock().in_flight <= 1;
            let slots = &instance.store.data().slots;
            let what = "a call";
            Err((
                Arc::new(classify(e, &recipe.name, slots, &recipe.policy, what, None)),
                alone,
            ))
        }
    };
    if let Err((e, _)) = &end {
        tracing::debug!(target: "membrane::call", module = %recipe.name, error = %e, "a WASI 0.3 instance failed");
    }
    // How it ended is known before the Store goes (a response body cut short by the drop
    // must find the failure), and the Store goes before the slot.
    d.lock().ended = Some(end);
    d.ended.notify_waiters();
    drop(instance);
    drop(lease);
    pool.notify_capacity();
}

/// Arms the instance's limits for a busy period (from idle to idle): with one call at a
/// time, for each call, as on a WASI 0.2 instance.
pub fn arm(
    store: StoreContextMut<'_, HostState>,
    recipe: &Recipe,
    budget: std::time::Duration,
) -> Result<()> {
    let mut store = Busy(store);
    recipe.policy.reset_states(&mut store.0.data_mut().slots);
    recipe
        .policy
        .arm(&mut store, &CallCx { budget })
        .map_err(|e| e.in_module(&recipe.name))
}

/// The Store of a running instance, seen by the limits that arm it.
struct Busy<'a>(StoreContextMut<'a, HostState>);

impl Controls for Busy<'_> {
    fn yields(&self) -> Option<u64> {
        Some(crate::instance::YIELD_TICKS)
    }

    fn set_epoch_deadline(&mut self, ticks: u64) {
        self.0.set_epoch_deadline(ticks);
    }

    fn set_fuel(&mut self, fuel: u64) -> wasmtime::Result<()> {
        self.0.set_fuel(fuel)
    }

    /// The cap is the same for every call: set once when the instance was made
    /// ([`LiveInstance::arm`]).
    fn set_hostcall_fuel(&mut self, _: usize) {}
}
