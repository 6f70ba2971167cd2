//! A module's instances: at most `instances` live at once, at most `queue` callers waiting
//! for one, and idle instances kept for reuse (unless the lifecycle is per-call).
//!
//! No queue is unbounded: a call that finds every instance busy and the queue full fails at
//! once with `Overloaded`, and a waiting call gives up at its deadline with `Timeout`.
//! Synchronous callers (a link from a synchronous caller, `App::call_blocking`) wait on a
//! condition variable; async callers wait on a `Notify` and never block an executor
//! thread. Both kinds share one count, so `instances` bounds the module however it is
//! called.
//!
//! Every instance of a module goes through its pool, including the instances a resource
//! link pins to one importer instance (a session): a session holds its lease for as long
//! as the importer instance lives, so it counts against the provider's `instances` and shows
//! in `App::status` as busy.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::error::{Error, ErrorKind, Result};
use crate::instance::{Flavour, LiveInstance};
use crate::spec::Lifecycle;

struct Gate {
    busy: usize,
    /// Callers waiting, of both kinds.
    waiting: usize,
    /// Synchronous callers waiting on the condition variable.
    waiting_sync: usize,
    idle_sync: Vec<LiveInstance>,
    idle_async: Vec<LiveInstance>,
}

impl Gate {
    fn idle(&mut self, flavour: Flavour) -> &mut Vec<LiveInstance> {
        match flavour {
            Flavour::Sync => &mut self.idle_sync,
            Flavour::Async | Flavour::Concurrent => &mut self.idle_async,
        }
    }

    /// Takes a slot: an idle instance of `flavour` to reuse, if there is one, and otherwise
    /// an idle one of the other flavour to drop (outside the lock), so that live instances
    /// (busy and idle) never outnumber the module's `instances`.
    fn take(&mut self, flavour: Flavour) -> Taken {
        self.busy += 1;
        if let Some(i) = self.idle(flavour).pop() {
            return Taken(Some(i), None);
        }
        let other = match flavour {
            Flavour::Sync => Flavour::Async,
            Flavour::Async | Flavour::Concurrent => Flavour::Sync,
        };
        Taken(None, self.idle(other).pop())
    }
}

/// A caller counted in the queue ([`Pool::enter_queue`]).
pub struct Queued<'a>(&'a Pool);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

/// What a caller gets with its slot: an instance to reuse, and one to drop.
struct Taken(Option<LiveInstance>, Option<LiveInstance>);

pub struct Pool {
    // Changed only by an upgrade that changes the limits (see `Pool::reconfigure`).
    max: AtomicUsize,
    queue: AtomicUsize,
    reuse: AtomicBool,
    gate: Mutex<Gate>,
    freed: Condvar,
    freed_async: Notify,
}

/// The right to run one instance; returns it (and the slot) when dropped. Borrows the pool
/// for a call, or owns a reference to it for a session.
pub struct Lease<P: Deref<Target = Pool>> {
    pool: P,
    /// An idle instance of the asked flavour to reuse, if there was one; after
    /// [`Lease::recycle`], the healthy instance to keep when the lease ends. (One field for
    /// both keeps every call's future smaller.)
    pub instance: Option<LiveInstance>,
    /// Whether `instance` goes back to the idle list when the lease ends.
    recycled: bool,
}

impl Pool {
    pub fn new(max: usize, queue: usize, lifecycle: Lifecycle) -> Pool {
        Pool {
            max: AtomicUsize::new(max.max(1)),
            queue: AtomicUsize::new(queue),
            reuse: AtomicBool::new(lifecycle == Lifecycle::Reuse),
            gate: Mutex::new(Gate {
                busy: 0,
                waiting: 0,
                waiting_sync: 0,
                idle_sync: Vec::new(),
                idle_async: Vec::new(),
            }),
            freed: Condvar::new(),
            freed_async: Notify::new(),
        }
    }

    /// Takes a new generation's limits: `instances`, `queue` and lifecycle (after the switch,
    /// which dropped the idle instances). Callers already waiting keep waiting; a lower
    /// `instances` takes effect as busy instances end.
    pub fn reconfigure(&self, max: usize, queue: usize, lifecycle: Lifecycle) {
        self.max.store(max.max(1), Ordering::Relaxed);
        self.queue.store(queue, Ordering::Relaxed);
        self.reuse
            .store(lifecycle == Lifecycle::Reuse, Ordering::Relaxed);
        // A higher limit may let waiting callers in.
        self.freed.notify_all();
        self.freed_async.notify_waiters();
    }

    /// Drops every idle instance (after a switch of generation, they are of the old one).
    pub fn clear_idle(&self) {
        let mut g = self.lock();
        let dropped = (
            std::mem::take(&mut g.idle_sync),
            std::mem::take(&mut g.idle_async),
        );
        drop(g);
        drop(dropped);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    fn queue(&self) -> usize {
        self.queue.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn overloaded(&self, module: &str, waiting: usize) -> Error {
        Error::new(
            ErrorKind::Overloaded,
            format!(
                "module `{module}` is overloaded: all {} instance(s) are busy and {waiting} caller(s) already wait; \
                 raise [modules.{module}.limits] instances or queue",
                self.max()
            ),
        )
        .with_module(module)
    }

    fn too_late(module: &str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!("module `{module}`: no instance became free before the call's deadline"),
        )
        .with_module(module)
    }

    /// Waits (blocking the thread) for a free instance slot until `deadline`.
    pub fn acquire(
        &self,
        module: &str,
        deadline: Instant,
        flavour: Flavour,
    ) -> Result<Lease<&Pool>> {
        let Taken(instance, evicted) = self.admit(module, deadline, flavour)?;
        drop(evicted);
        Ok(self.lease(self, instance))
    }

    /// [`Pool::acquire`] for a lease that outlives the borrow: a session's.
    pub fn acquire_owned(
        self: &Arc<Self>,
        module: &str,
        deadline: Instant,
        flavour: Flavour,
    ) -> Result<Lease<Arc<Pool>>> {
        let Taken(instance, evicted) = self.admit(module, deadline, flavour)?;
        drop(evicted);
        Ok(self.lease(self.clone(), instance))
    }

    /// Waits (without blocking the thread) for a free instance slot until `deadline`.
    pub async fn acquire_async(&self, module: &str, deadline: Instant) -> Result<Lease<&Pool>> {
        let Taken(instance, evicted) = self.admit_async(module, deadline).await?;
        drop(evicted);
        Ok(self.lease(self, instance))
    }

    /// [`Pool::acquire_async`] for a session's lease.
    pub async fn acquire_owned_async(
        self: &Arc<Self>,
        module: &str,
        deadline: Instant,
    ) -> Result<Lease<Arc<Pool>>> {
        let Taken(instance, evicted) = self.admit_async(module, deadline).await?;
        drop(evicted);
        Ok(self.lease(self.clone(), instance))
    }

    /// [`Pool::acquire_owned_async`] that hands over the idle instance of either flavour
    /// (to move a module's state, which lives in whichever instance there is).
    pub async fn acquire_any_owned_async(
        self: &Arc<Self>,
        module: &str,
        deadline: Instant,
    ) -> Result<Lease<Arc<Pool>>> {
        let Taken(instance, evicted) = self.admit_async(module, deadline).await?;
        Ok(self.lease(self.clone(), instance.or(evicted)))
    }

    fn lease<P: Deref<Target = Pool>>(&self, pool: P, instance: Option<LiveInstance>) -> Lease<P> {
        Lease {
            pool,
            instance,
            recycled: false,
        }
    }

    /// Takes a slot (waiting on the condition variable until `deadline`), and an idle
    /// instance of `flavour` if there is one.
    fn admit(&self, module: &str, deadline: Instant, flavour: Flavour) -> Result<Taken> {
        let mut gate = self.lock();
        if gate.busy >= self.max() {
            if gate.waiting >= self.queue() {
                return Err(self.overloaded(module, gate.waiting));
            }
            gate.waiting += 1;
            gate.waiting_sync += 1;
            while gate.busy >= self.max() {
                let now = Instant::now();
                if now >= deadline {
                    gate.waiting -= 1;
                    gate.waiting_sync -= 1;
                    return Err(Self::too_late(module));
                }
                gate = self
                    .freed
                    .wait_timeout(gate, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            gate.waiting -= 1;
            gate.waiting_sync -= 1;
        }
        Ok(gate.take(flavour))
    }

    /// Takes a slot, waiting on the pool's `Notify` until `deadline`, and an idle async
    /// instance if there is one.
    async fn admit_async(&self, module: &str, deadline: Instant) -> Result<Taken> {
        {
            let mut gate = self.lock();
            if gate.busy < self.max() {
                return Ok(gate.take(Flavour::Async));
            }
            if gate.waiting >= self.queue() {
                return Err(self.overloaded(module, gate.waiting));
            }
            gate.waiting += 1;
        }
        // Boxed: waiting (a timer and a notification) is the rare case, and its future is
        // large; inline, it would grow every call's future.
        Box::pin(self.wait_async(module, deadline)).await
    }

    /// The slow part of [`Pool::admit_async`]: waits, counted in the queue, for a slot.
    async fn wait_async(&self, module: &str, deadline: Instant) -> Result<Taken> {
        // Counts this caller out of the queue however the wait ends, cancellation included.
        struct Waiting<'a>(&'a Pool);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.lock().waiting -= 1;
            }
        }
        let _waiting = Waiting(self);
        loop {
            // A release before this point left a permit in the Notify: no wake-up is lost.
            let freed = self.freed_async.notified();
            if tokio::time::timeout_at(deadline.into(), freed)
                .await
                .is_err()
            {
                return Err(Self::too_late(module));
            }
            let mut gate = self.lock();
            if gate.busy < self.max() {
                return Ok(gate.take(Flavour::Async));
            }
        }
    }

    /// A slot for an instance that serves many calls (a WASI 0.3 instance's driver holds
    /// it while the instance lives), if one is free now; never waits, never queues. An idle
    /// instance the slot would have reused is dropped: it is of the other kind.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<Lease<Arc<Pool>>> {
        let mut gate = self.lock();
        if gate.busy >= self.max() {
            return None;
        }
        let Taken(a, b) = gate.take(Flavour::Concurrent);
        drop(gate);
        drop((a, b));
        Some(self.lease(self.clone(), None))
    }

    /// Counts a caller in the queue until the ticket is dropped; `Overloaded` when the
    /// queue is full. (For callers that wait for capacity in their own way, woken by
    /// [`Pool::notified`].)
    pub fn enter_queue(&self, module: &str) -> Result<Queued<'_>> {
        let mut gate = self.lock();
        if gate.waiting >= self.queue() {
            return Err(self.overloaded(module, gate.waiting));
        }
        gate.waiting += 1;
        Ok(Queued(self))
    }

    /// Fires when a slot, or capacity in an instance that serves many calls, may have
    /// been freed ([`Pool::notify_capacity`]).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed_async.notified()
    }

    /// Wakes every async caller waiting for capacity.
    pub fn notify_capacity(&self) {
        self.freed_async.notify_waiters();
    }

    /// The error of a caller that waited until its deadline.
    pub fn timed_out(module: &str) -> Error {
        Self::too_late(module)
    }

    /// Adds instances made by `make` to the idle list of `flavour`, up to the module's
    /// instance limit; returns how many are idle afterwards.
    pub fn fill(
        &self,
        n: usize,
        flavour: Flavour,
        mut make: impl FnMut() -> Result<LiveInstance>,
    ) -> Result<usize> {
        if !self.reuse.load(Ordering::Relaxed) {
            return Ok(0);
        }
        loop {
            let mut g = self.lock();
            let idle = g.idle_sync.len() + g.idle_async.len();
            if g.idle(flavour).len() >= n.min(self.max()) || idle + g.busy >= self.max() {
                return Ok(g.idle(flavour).len());
            }
            drop(g);
            let instance = make()?;
            self.lock().idle(flavour).push(instance);
        }
    }

    /// [`Pool::fill`] with instances made asynchronously.
    pub async fn fill_async<F, Fut>(&self, n: usize, mut make: F) -> Result<usize>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<LiveInstance>>,
    {
        if !self.reuse.load(Ordering::Relaxed) {
            return Ok(0);
        }
        loop {
            {
                let g = self.lock();
                let idle = g.idle_sync.len() + g.idle_async.len();
                if g.idle_async.len() >= n.min(self.max()) || idle + g.busy >= self.max() {
                    return Ok(g.idle_async.len());
                }
            }
            let instance = make().await?;
            self.lock().idle_async.push(instance);
        }
    }

    /// How many instances are running a call, how many callers wait, and how many
    /// instances are idle.
    pub fn load(&self) -> (usize, usize, usize) {
        let g = self.lock();
        (g.busy, g.waiting, g.idle_sync.len() + g.idle_async.len())
    }
}

impl<P: Deref<Target = Pool>> Lease<P> {
    /// Gives a healthy instance back for reuse.
    pub fn recycle(&mut self, instance: LiveInstance) {
        if self.pool.reuse.load(Ordering::Relaxed) {
            self.instance = Some(instance);
            self.recycled = true;
        }
    }
}

impl<P: Deref<Target = Pool>> Drop for Lease<P> {
    fn drop(&mut self) {
        // An instance that was not recycled (an idle one of another generation, one a
        // session took its own way) is dropped with the lease, after the lock.
        let returned = if self.recycled {
            self.instance.take()
        } else {
            None
        };
        let mut gate = self.pool.lock();
        gate.busy -= 1;
        if let Some(i) = returned {
            let flavour = i.flavour();
            gate.idle(flavour).push(i);
        }
        // Waking is a system call; skip it when nobody waits.
        let (sync_waiting, async_waiting) =
            (gate.waiting_sync > 0, gate.waiting > gate.waiting_sync);
        drop(gate);
        if sync_waiting {
            self.pool.freed.notify_one();
        }
        if async_waiting {
            self.pool.freed_async.notify_one();
        }
    }
}
