//! Where the calls of a WASI 0.3 generation go: its instances, each driven by its own task
//! (`driver.rs`) and running up to `limits.concurrency` calls at once.
//!
//! A call takes room in an instance that has some (the oldest first, so that load packs
//! into few instances), else a slot of the module's pool for a new instance, else waits in
//! the module's queue until its deadline. `instances` bounds the instances (shared with the
//! module's other generations, as for WASI 0.2), `queue` the callers waiting.
//!
//! The executor is the generation's [`Transport`]: its calls are admitted, supervised and
//! counted by the generation like any call, but take no pool slot per call.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;
use wasmtime::component::Val;

use super::driver::{self, Driver, Job};
use crate::error::{Error, ErrorKind, Result};
use crate::instance::{Budget, LiveInstance, Recipe};
use crate::pool::Pool;
use crate::spec::Lifecycle;
use crate::transport::{BoxFuture, PinnedSession, Transport};
use crate::value::Function;

/// The instances of one WASI 0.3 generation.
pub struct Executor {
    recipe: Arc<Recipe>,
    pool: Arc<Pool>,
    concurrency: usize,
    /// Whether an instance takes more than one call over its life.
    reuse: bool,
    drivers: Mutex<Vec<Arc<Driver>>>,
    /// An instance is being made: callers that find no room wait for it rather than make
    /// more (a burst packs into as few instances as a steady load).
    launching: AtomicBool,
    /// The runtime the drivers run on (the one the app was loaded on).
    handle: tokio::runtime::Handle,
    /// Callers waiting for room ([`Executor::admit`]): only then does an answered call
    /// wake the module's waiters.
    waiting: Arc<AtomicUsize>,
}

/// A call's room in an instance; given back when dropped, as abandoned unless answered.
pub struct Room {
    pub driver: Arc<Driver>,
    /// The call starts a busy period of the instance (arm its limits).
    pub first: bool,
    answered: bool,
    pool: Arc<Pool>,
    waiting: Arc<AtomicUsize>,
}

impl Room {
    /// The call got its answer: the instance may take more calls.
    pub fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.driver.release(!self.answered);
        // After the release, so that a waiter counted after this load sees the room
        // (`admit` counts itself before it looks).
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.pool.notify_capacity();
        }
    }
}

/// A caller counted among those waiting for room while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(n: &'a AtomicUsize) -> Waiting<'a> {
        n.fetch_add(1, Ordering::SeqCst);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The one instance being made, for as long as the guard lives; waiters are woken when it
/// ends, whether the instance was made or not.
struct Launching<'a>(&'a Executor);

impl<'a> Launching<'a> {
    fn start(x: &'a Executor) -> Option<Launching<'a>> {
        let busy = x.launching.swap(true, Ordering::AcqRel);
        // Not `then_some`: a guard made and dropped here would end the other's launch.
        (!busy).then(|| Launching(x))
    }
}

impl Drop for Launching<'_> {
    fn drop(&mut self) {
        self.0.launching.store(false, Ordering::Release);
        self.0.pool.notify_capacity();
    }
}

impl Executor {
    /// The executor of a generation whose instances are made from `recipe`; must be made
    /// inside a tokio runtime (the drivers run on it).
    pub fn new(recipe: Arc<Recipe>, pool: Arc<Pool>, lifecycle: Lifecycle) -> Result<Executor> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{}`: a WASI 0.3 module needs a tokio runtime to run on; load the app inside one",
                    recipe.name
                ),
            )
        })?;
        Ok(Executor {
            concurrency: recipe.limits.concurrency.max(1),
            reuse: lifecycle == Lifecycle::Reuse,
            recipe,
            pool,
            drivers: Mutex::new(Vec::new()),
            launching: AtomicBool::new(false),
            handle,
            waiting: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn drivers(&self) -> MutexGuard<'_, Vec<Arc<Driver>>> {
        self.drivers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The recipe of the generation's instances.
    pub fn recipe(&self) -> &Arc<Recipe> {
        &self.recipe
    }

    /// Room for one call, waiting in the module's queue at most until `deadline`.
    pub async fn admit(&self, deadline: Instant) -> Result<Room> {
        // The common case: room in a running instance, without waiting.
        if let Some(room) = self.pick() {
            return Ok(room);
        }
        let _waiting = Waiting::count(&self.waiting);
        let mut queued = None;
        loop {
            let notified = self.pool.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(room) = self.pick() {
                return Ok(room);
            }
            if let Some(_launching) = Launching::start(self) {
                // An instance made between the pick above and here has room: look again
                // (instances are listed before the launch that made them ends).
                if let Some(room) = self.pick() {
                    return Ok(room);
                }
                if let Some(lease) = self.pool.try_acquire_owned() {
                    return self.launch(lease).await;
                }
            }
            if queued.is_none() {
                queued = Some(self.pool.enter_queue(&self.recipe.name)?);
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return Err(Pool::timed_out(&self.recipe.name));
            }
        }
    }

    fn room(&self, driver: Arc<Driver>, first: bool) -> Room {
        if !self.reuse {
            driver.stop();
        }
        Room {
            driver,
            first,
            answered: false,
            pool: self.pool.clone(),
            waiting: self.waiting.clone(),
        }
    }

    /// Room in a running instance, the oldest first.
    fn pick(&self) -> Option<Room> {
        let mut drivers = self.drivers();
        drivers.retain(|d| !d.ended());
        let (driver, first) = drivers
            .iter()
            .find_map(|d| d.reserve(self.concurrency).map(|first| (d.clone(), first)))?;
        drop(drivers);
        Some(self.room(driver, first))
    }

    /// A new instance in the slot `lease`, and room in it.
    async fn launch(&self, lease: crate::pool::Lease<Arc<Pool>>) -> Result<Room> {
        let mut instance = LiveInstance::new_async(&self.recipe, None).await?;
        let now = Instant::now();
        let timeout = self.recipe.limits.timeout;
        instance.arm(
            &self.recipe,
            Budget {
                deadline: now + timeout,
                time: timeout,
            },
        )?;
        let driver = driver::start(
            instance,
            self.recipe.clone(),
            lease,
            self.pool.clone(),
            &self.handle,
        );
        let first = driver.reserve(self.concurrency).ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{}`: a new instance ended at once",
                    self.recipe.name
                ),
            )
        })?;
        self.drivers().push(driver.clone());
        // Callers that waited while it was made may fit in it.
        self.pool.notify_capacity();
        Ok(self.room(driver, first))
    }

    /// Runs `job` in an instance with room and waits for its answer until `deadline`:
    /// `Timeout` then, while the call goes on in the instance (which takes no more calls).
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        job: impl FnOnce(bool, oneshot::Sender<Result<T>>) -> Job,
    ) -> Result<T> {
        let mut room = self.admit(deadline).await?;
        let (tx, rx) = oneshot::channel();
        room.driver.submit(job(room.first, tx))?;
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(answer)) => {
                room.answered();
                answer
            }
            Ok(Err(_)) => {
                room.answered();
                let failure = room.driver.failure(&self.recipe.name).await;
                // Past its own deadline the call timed out, whichever call's time (or
                // trap) ended the instance; its caller's timer only lost the race.
                if Instant::now() >= deadline {
                    return Err(self.timed_out());
                }
                Err(failure)
            }
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> Error {
        let name = &self.recipe.name;
        Error::new(
            ErrorKind::Timeout,
            format!(
                "module `{name}`: the call ran past its deadline (timeout {}); the call goes on in \
                 its instance, which takes no more calls; raise [modules.{name}.limits] timeout if it needs longer",
                humantime::format_duration(self.recipe.limits.timeout)
            ),
        )
        .with_module(&**name)
    }

    /// Stops every instance taking calls: each ends when its calls are answered (the
    /// generation was replaced).
    pub fn stop_all(&self) {
        // Listed until they end, for the calls they still run (`calls_in_flight`).
        for d in self.drivers().iter() {
            d.stop();
        }
    }

    /// Calls its instances run now.
    pub fn calls_in_flight(&self) -> usize {
        self.drivers().iter().map(|d| d.load().0).sum()
    }

    /// Instances that run no call and take calls.
    pub fn idle_instances(&self) -> usize {
        self.drivers()
            .iter()
            .filter(|d| d.load() == (0, true))
            .count()
    }
}

impl Transport for Executor {
    fn call(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        deadline: Instant,
    ) -> Result<()> {
        let name = &self.recipe.name;
        if crate::block::on_current_thread_runtime() {
            // The instance's driver runs on this thread's runtime, which cannot run while
            // the thread waits for it.
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{name}` is a WASI 0.3 module, which cannot be called synchronously from \
                     a single-threaded tokio runtime; call it with App::call, or use a multi-threaded runtime"
                ),
            )
            .with_module(&**name));
        }
        // The call answers by its deadline; the margin only guards against a lost wake-up.
        let margin = deadline + std::time::Duration::from_secs(1);
        // The call's timers belong to the runtime the drivers run on.
        let _runtime = self.handle.enter();
        crate::block::block_on(self.call_async(func, args, results, deadline), Some(margin))
            .unwrap_or_else(|| Err(self.timed_out()))
    }

    fn call_async<'a>(
        &'a self,
        func: &'a Function,
        args: &'a [Val],
        results: &'a mut [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let call = super::call::Call::new(&self.recipe, func, args, deadline);
            let mut answer = self.run(deadline, |first, tx| call.job(first, tx)).await?;
            // Moved out: the caller claims the tickets of returned streams (`pipe.rs`).
            for (slot, v) in results.iter_mut().zip(answer.vals.drain(..)) {
                *slot = v;
            }
            Ok(())
        })
    }

    fn session(self: Arc<Self>) -> Result<Box<dyn PinnedSession>> {
        let name = &self.recipe.name;
        Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "module `{name}` is a WASI 0.3 module: links that carry resources to it are not supported yet"
            ),
        )
        .with_module(&**name))
    }

    /// The instances hold the slots, each serving many calls.
    fn slot_per_call(&self) -> bool {
        false
    }

    fn superseded(&self) {
        self.stop_all();
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
