//! A module of a running app: its name, its pool of instances and its counters, which last
//! as long as the app, and its current generation, which a live upgrade replaces.
//!
//! Everything that calls into a module (links, typed handles, routes, `App::call`) goes
//! through [`Target`]: the export is resolved once per generation and cached, so a call costs
//! two atomic loads more than a call into a fixed generation, and a new generation is picked
//! up by the next call. A call runs entirely on the generation it resolved, so a switch never
//! splits one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arc_swap::{ArcSwap, Guard};

use crate::error::Result;
use crate::generation::Generation;
use crate::metrics::ModuleMetrics;
use crate::pool::Pool;
use crate::value::Function;

/// One module of an app, across its generations.
pub struct Module {
    pub name: Arc<str>,
    /// Shared by every generation: two generations never hold more instances together than
    /// the module's `instances` limit.
    pub pool: Arc<Pool>,
    pub metrics: Arc<ModuleMetrics>,
    current: ArcSwap<Generation>,
    /// Switches so far: a [`Target`] whose cached resolution has the same count is current
    /// (one plain atomic load on the call path).
    switches: AtomicU64,
    /// Upgrades of this module, one at a time.
    pub upgrades: tokio::sync::Mutex<()>,
    /// What the upgrade code keeps: the previous generation, those draining, the last result.
    pub history: Mutex<History>,
}

/// The module's generations other than the current one, and how the last upgrade went.
#[derive(Default)]
pub struct History {
    /// The generation before the current one, kept ready during the current one's probation.
    pub previous: Option<Arc<Generation>>,
    /// When the current generation's probation ends.
    pub probation_until: Option<Instant>,
    /// Replaced generations still finishing their calls and sessions.
    pub draining: Vec<Arc<Generation>>,
    /// The last upgrade or rollback.
    pub last: Option<crate::upgrade::report::LastUpgrade>,
    /// The highest generation number given out.
    pub highest: u64,
}

impl Module {
    /// A module whose first generation is `first`.
    pub fn new(first: Generation) -> Module {
        let first = Arc::new(first);
        Module {
            name: first.name.clone(),
            pool: first.pool.clone(),
            metrics: first.metrics.clone(),
            history: Mutex::new(History {
                highest: first.number,
                ..History::default()
            }),
            current: ArcSwap::new(first),
            switches: AtomicU64::new(0),
            upgrades: tokio::sync::Mutex::new(()),
        }
    }

    /// The generation new calls go to.
    #[inline]
    pub fn current(&self) -> Guard<Arc<Generation>> {
        self.current.load()
    }

    /// [`Module::current`] as an owned reference, to hold across `.await`s.
    pub fn current_full(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Makes `next` the generation new calls go to; returns the one it replaces, which no
    /// longer keeps idle instances (its idle ones are dropped now).
    pub fn switch(&self, next: Arc<Generation>) -> Arc<Generation> {
        next.life.superseded.store(false, Ordering::Release);
        let old = self.current.swap(next);
        self.switches.fetch_add(1, Ordering::AcqRel);
        old.life.superseded.store(true, Ordering::Release);
        if let Some(t) = old.transport() {
            t.superseded();
        }
        self.pool.clear_idle();
        old
    }

    pub fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An export of a module resolved in one generation.
pub struct Resolved {
    /// The module's switch count when this was resolved.
    switch: u64,
    pub generation: Arc<Generation>,
    pub func: Arc<Function>,
    /// Set once the Rust types of a typed forwarder were checked on a live instance of this
    /// generation.
    pub checked: OnceLock<()>,
}

/// A named export of a module, resolved in whichever generation is current.
pub struct Target {
    pub module: Arc<Module>,
    export: String,
    cache: ArcSwap<Resolved>,
}

impl Target {
    /// Resolves `export` in the module's current generation (an error if it has no such
    /// function).
    pub fn new(module: Arc<Module>, export: &str) -> Result<Target> {
        let switch = module.switches.load(Ordering::Acquire);
        let generation = module.current_full();
        let func = generation.function(export)?;
        Ok(Target {
            cache: ArcSwap::from_pointee(Resolved {
                switch,
                generation,
                func,
                checked: OnceLock::new(),
            }),
            module,
            export: export.to_string(),
        })
    }

    /// The export as the current generation has it.
    #[inline]
    pub fn get(&self) -> Result<Guard<Arc<Resolved>>> {
        let cached = self.cache.load();
        // Read before the generation: a switch in between makes the next call look again.
        let switch = self.module.switches.load(Ordering::Acquire);
        if cached.switch == switch {
            return Ok(cached);
        }
        drop(cached);
        let current = self.module.current();
        let fresh = Arc::new(Resolved {
            switch,
            func: current.function(&self.export)?,
            generation: Guard::into_inner(current),
            checked: OnceLock::new(),
        });
        self.cache.store(fresh);
        Ok(self.cache.load())
    }

    /// [`Target::get`] as an owned reference, to hold across `.await`s.
    pub fn get_full(&self) -> Result<Arc<Resolved>> {
        Ok(Guard::into_inner(self.get()?))
    }

    /// The export as `generation` has it (a resource session's, which may be an older one
    /// than the current).
    pub fn in_generation(&self, generation: &Arc<Generation>) -> Result<Arc<Resolved>> {
        let cached = self.cache.load_full();
        if Arc::ptr_eq(&cached.generation, generation) {
            return Ok(cached);
        }
        Ok(Arc::new(Resolved {
            // Never taken for the current one: it is not cached.
            switch: u64::MAX,
            func: generation.function(&self.export)?,
            generation: generation.clone(),
            checked: OnceLock::new(),
        }))
    }

    /// The export's name as the target was made with.
    pub fn export(&self) -> &str {
        &self.export
    }
}
