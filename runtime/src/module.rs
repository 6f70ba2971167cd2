//! A module as it runs: its current recipe (compiled component, pre-linked instantiation,
//! capabilities and limits), its exports, its pool of instances and its supervisor. Calls
//! and `wasi:cli/run` are dispatched here.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{InstancePre, Val};

use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, Result};
use crate::exports::Exports;
use crate::instance::{HostState, LiveInstance, Recipe};
use crate::pool::{Lease, Pool};
use crate::supervisor::Supervisor;
use crate::unit::RunContext;
use crate::value::Function;

pub(crate) struct Module {
    pub(crate) name: Arc<str>,
    recipe: Arc<Recipe>,
    exports: Exports,
    pub(crate) pool: Arc<Pool>,
    pub(crate) supervisor: Supervisor,
}

/// A provider instance pinned to one importer instance for a link with resources, with
/// the pool slot it occupies.
pub(crate) struct Session {
    pub(crate) instance: LiveInstance,
    _lease: Lease<Arc<Pool>>,
}

impl Module {
    /// A compiled module, pre-instantiated against a linker that satisfies its imports.
    pub(crate) fn new(
        compiled: Compiled,
        pre: InstancePre<HostState>,
        link_slots: usize,
    ) -> Module {
        let name: Arc<str> = compiled.name.into();
        let spec = compiled.spec;
        let exports = Exports::new(name.clone(), compiled.component, pre.engine().clone());
        Module {
            pool: Arc::new(Pool::new(
                spec.limits.instances,
                spec.limits.queue,
                spec.lifecycle,
            )),
            supervisor: Supervisor::new(spec.restart),
            recipe: Arc::new(Recipe {
                name: name.clone(),
                pre,
                policy: compiled.policy,
                limits: spec.limits,
                link_slots,
            }),
            exports,
            name,
        }
    }

    /// What the module's instances are made from.
    pub(crate) fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// Finds an exported function by its textual name, once; later lookups hit a cache.
    pub(crate) fn function(&self, text: &str) -> Result<Arc<Function>> {
        self.exports.function(text)
    }

    /// Calls an export on a pooled instance, within `outer` when the call comes through a
    /// link. The module's timeout covers waiting for an instance and running. Blocking.
    pub(crate) fn invoke(
        &self,
        func: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        let mut results = vec![Val::Bool(false); func.results.len()];
        self.invoke_into(func, args, &mut results, outer)?;
        Ok(results)
    }

    /// [`Module::invoke`] writing into `results` (the hot path of linked calls).
    pub(crate) fn invoke_into(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        outer: Option<Instant>,
    ) -> Result<()> {
        self.supervised(|| self.invoke_admitted(func, args, results, outer))
    }

    /// Runs `call` if the module's circuit is closed (or this is its trial), and tells the
    /// supervisor how it went.
    pub(crate) fn supervised<T>(&self, call: impl FnOnce() -> Result<T>) -> Result<T> {
        let admission = self.supervisor.admit(&self.name)?;
        let outcome = call();
        self.supervisor.record(
            &self.name,
            admission,
            // A provider's failure is the provider's to count, not this module's.
            outcome
                .as_ref()
                .map(|_| ())
                .map_err(|e| if e.upstream() { None } else { Some(e.kind()) }),
        );
        outcome
    }

    fn invoke_admitted(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        outer: Option<Instant>,
    ) -> Result<()> {
        let now = Instant::now();
        let own = now + self.recipe.limits.timeout;
        let deadline = outer.map_or(own, |o| o.min(own));
        let mut lease = self.pool.acquire(&self.name, deadline)?;
        let mut instance = match lease.instance.take() {
            Some(i) => i,
            None => LiveInstance::new(&self.recipe, None)?,
        };
        instance.call_into(&self.recipe, func, args, results, now, Some(deadline))?;
        lease.recycle(instance);
        Ok(())
    }

    /// Takes an instance out of the pool for a resource session, until `deadline` at most
    /// to wait for a slot. The slot stays taken until the session is dropped.
    pub(crate) fn session(&self, deadline: Instant) -> Result<Session> {
        let mut lease = self.pool.acquire_owned(&self.name, deadline)?;
        // A session's instance ends with its importer: never hand back one that served
        // other callers, and never return it to the idle list.
        drop(lease.instance.take());
        let instance = LiveInstance::new(&self.recipe, None)?;
        Ok(Session {
            instance,
            _lease: lease,
        })
    }

    /// Creates idle instances ahead of calls. Blocking.
    pub(crate) fn prewarm(&self, n: usize) -> Result<usize> {
        self.pool.fill(n, || LiveInstance::new(&self.recipe, None))
    }

    /// Runs `wasi:cli/run` on a fresh instance that gets the run's arguments and stdin.
    /// Returns the guest's exit status. Blocking.
    pub(crate) fn run(&self, run: &RunContext) -> Result<i32> {
        self.supervised(|| self.run_admitted(run))
    }

    fn run_admitted(&self, run: &RunContext) -> Result<i32> {
        let func = self.function("wasi:cli/run#run").map_err(|_| {
            Error::not_found(format!(
                "module `{}` does not export wasi:cli/run, so it cannot be run; it is a library module: use `membrane call`",
                self.name
            ))
            .with_module(&*self.name)
        })?;
        let _lease = self
            .pool
            .acquire(&self.name, Instant::now() + self.recipe.limits.timeout)?;
        // The entry's exit is the command's status, not a failure of the module.
        let mut instance = match LiveInstance::new(&self.recipe, Some(run)) {
            Err(e) if e.kind() == ErrorKind::Exit => return Ok(e.exit_code().unwrap_or(1)),
            other => other?,
        };
        match instance.call(&self.recipe, &func, &[], None) {
            Ok(results) => Ok(match results.first() {
                Some(Val::Result(Err(_))) => 1,
                _ => 0,
            }),
            Err(e) if e.kind() == ErrorKind::Exit => Ok(e.exit_code().unwrap_or(1)),
            Err(e) => Err(e),
        }
    }
}
