//! A module's instances: at most `instances` live at once, at most `queue` callers waiting
//! for one, and idle instances kept for reuse (unless the lifecycle is per-call).
//!
//! No queue is unbounded: a call that finds every instance busy and the queue full fails at
//! once with `Overloaded`, and a waiting call gives up at its deadline with `Timeout`.
//! The gate is a plain mutex and condition variable because linked calls arrive on the
//! caller's (blocking) thread, not in an async task.
//!
//! Every instance of a module goes through its pool, including the instances a resource
//! link pins to one importer instance (a session): a session holds its lease for as long
//! as the importer instance lives, so it counts against the provider's `instances` and shows
//! in `App::status` as busy.

use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::instance::LiveInstance;
use crate::spec::Lifecycle;

struct Gate {
    busy: usize,
    waiting: usize,
    idle: Vec<LiveInstance>,
}

pub(crate) struct Pool {
    max: usize,
    queue: usize,
    lifecycle: Lifecycle,
    gate: Mutex<Gate>,
    freed: Condvar,
}

/// The right to run one instance; returns it (and the slot) when dropped. Borrows the pool
/// for a call, or owns a reference to it for a session.
pub(crate) struct Lease<P: Deref<Target = Pool>> {
    pool: P,
    /// An idle instance to reuse, if there was one.
    pub(crate) instance: Option<LiveInstance>,
    /// A healthy instance to keep when the lease ends.
    returned: Option<LiveInstance>,
}

impl Pool {
    pub(crate) fn new(max: usize, queue: usize, lifecycle: Lifecycle) -> Pool {
        Pool {
            max: max.max(1),
            queue,
            lifecycle,
            gate: Mutex::new(Gate {
                busy: 0,
                waiting: 0,
                idle: Vec::new(),
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a free instance slot until `deadline`.
    pub(crate) fn acquire(&self, module: &str, deadline: Instant) -> Result<Lease<&Pool>> {
        let instance = self.admit(module, deadline)?;
        Ok(Lease {
            pool: self,
            instance,
            returned: None,
        })
    }

    /// [`Pool::acquire`] for a lease that outlives the borrow: a session's.
    pub(crate) fn acquire_owned(
        self: &Arc<Self>,
        module: &str,
        deadline: Instant,
    ) -> Result<Lease<Arc<Pool>>> {
        let instance = self.admit(module, deadline)?;
        Ok(Lease {
            pool: self.clone(),
            instance,
            returned: None,
        })
    }

    /// Takes a slot (waiting for one until `deadline`), and an idle instance if there is one.
    fn admit(&self, module: &str, deadline: Instant) -> Result<Option<LiveInstance>> {
        let mut gate = self.lock();
        if gate.busy >= self.max {
            if gate.waiting >= self.queue {
                return Err(Error::new(
                    ErrorKind::Overloaded,
                    format!(
                        "module `{module}` is overloaded: all {} instance(s) are busy and {} caller(s) already wait; \
                         raise [modules.{module}.limits] instances or queue",
                        self.max, gate.waiting
                    ),
                )
                .with_module(module));
            }
            gate.waiting += 1;
            while gate.busy >= self.max {
                let now = Instant::now();
                if now >= deadline {
                    gate.waiting -= 1;
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "module `{module}`: no instance became free before the call's deadline"
                        ),
                    )
                    .with_module(module));
                }
                gate = self
                    .freed
                    .wait_timeout(gate, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            gate.waiting -= 1;
        }
        gate.busy += 1;
        Ok(gate.idle.pop())
    }

    /// Adds instances to the idle list, up to the module's instance limit; returns how many
    /// are idle afterwards.
    pub(crate) fn fill(
        &self,
        n: usize,
        mut make: impl FnMut() -> Result<LiveInstance>,
    ) -> Result<usize> {
        if self.lifecycle == Lifecycle::PerCall {
            return Ok(0);
        }
        loop {
            let g = self.lock();
            if g.idle.len() >= n.min(self.max) || g.idle.len() + g.busy >= self.max {
                return Ok(g.idle.len());
            }
            drop(g);
            let instance = make()?;
            self.lock().idle.push(instance);
        }
    }

    /// How many instances are running a call, and how many callers wait.
    pub(crate) fn load(&self) -> (usize, usize, usize) {
        let g = self.lock();
        (g.busy, g.waiting, g.idle.len())
    }
}

impl<P: Deref<Target = Pool>> Lease<P> {
    /// Gives a healthy instance back for reuse.
    pub(crate) fn recycle(&mut self, instance: LiveInstance) {
        if self.pool.lifecycle == Lifecycle::Reuse {
            self.returned = Some(instance);
        }
    }
}

impl<P: Deref<Target = Pool>> Drop for Lease<P> {
    fn drop(&mut self) {
        let returned = self.returned.take();
        let mut gate = self.pool.lock();
        gate.busy -= 1;
        if let Some(i) = returned {
            gate.idle.push(i);
        }
        // Waking is a system call; skip it when nobody waits.
        let waiting = gate.waiting > 0;
        drop(gate);
        if waiting {
            self.pool.freed.notify_one();
        }
    }
}
