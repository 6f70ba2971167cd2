//! One live instance: its own Store (memory, tables, WASI context, limits) and nothing
//! shared, built from a [`Recipe`].
//!
//! A failed call poisons a Store in wasmtime, so an instance whose call failed is dropped,
//! never reused.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{Func, Instance, InstancePre, ResourceAny, ResourceTable, Val};
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capability::hooks::Guarded;
use crate::capability::quota::QuotaMap;
use crate::classify::classify;
use crate::error::{Error, ErrorKind, Result};
use crate::limits::files::OpenFiles;
use crate::limits::memory::MemoryLimiter;
use crate::spec::Limits;
use crate::unit::{CallCx, Controls, InstanceCx, Policy, RunContext, Slots};
use crate::value::Function;

/// What an instance is built from: one compiled version of a module. Instances know their
/// recipe, never the module that owns it, so a module can hold two recipes at once.
pub(crate) struct Recipe {
    pub(crate) name: Arc<str>,
    pub(crate) pre: InstancePre<HostState>,
    /// The module's capabilities and limits.
    pub(crate) policy: Policy,
    pub(crate) limits: Limits,
    /// How many links of the module pin a provider instance (links that carry resources).
    pub(crate) link_slots: usize,
}

/// The data of one Store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The states of the instance's capabilities and limits.
    pub(crate) slots: Slots,
    /// When the call now running must end; linked calls inherit it.
    pub(crate) deadline: Instant,
    /// How many link slots the instance has (see [`Recipe::link_slots`]).
    pub(crate) link_slots: usize,
    /// Link state (sessions and resource proxies), kept by the link layer.
    pub(crate) links: Option<Box<dyn Any + Send>>,
    /// Stands in when no memory limit is configured.
    unlimited: Unlimited,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Guarded for HostState {
    fn guards(
        &mut self,
    ) -> (
        Option<&mut OpenFiles>,
        Option<&mut QuotaMap>,
        &mut ResourceTable,
    ) {
        let (files, quotas) = self.slots.pair_mut::<OpenFiles, QuotaMap>();
        (files, quotas, &mut self.table)
    }
}

impl HostState {
    fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        match self.slots.get_mut::<MemoryLimiter>() {
            Some(l) => l,
            None => &mut self.unlimited,
        }
    }
}

#[derive(Default)]
struct Unlimited;

impl ResourceLimiter for Unlimited {
    fn memory_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl Controls for Store<HostState> {
    fn set_epoch_deadline(&mut self, ticks: u64) {
        Store::set_epoch_deadline(self, ticks);
    }

    fn set_fuel(&mut self, fuel: u64) -> wasmtime::Result<()> {
        Store::set_fuel(self, fuel)
    }

    fn set_hostcall_fuel(&mut self, bytes: usize) {
        Store::set_hostcall_fuel(self, bytes);
    }
}

/// A live instance of a module.
pub(crate) struct LiveInstance {
    pub(crate) store: Store<HostState>,
    instance: Instance,
    /// Function handles looked up in this instance, by [`Function::id`].
    funcs: Vec<Option<Func>>,
}

impl LiveInstance {
    /// Creates a new instance with a fresh Store and the recipe's grants and limits.
    pub(crate) fn new(recipe: &Recipe, run: Option<&RunContext>) -> Result<LiveInstance> {
        let slots = recipe.policy.new_slots();
        let cx = InstanceCx {
            module: &recipe.name,
            run,
            slots: &slots,
        };
        let wasi = recipe.policy.wasi_ctx(&cx)?;
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            slots,
            deadline: Instant::now() + recipe.limits.timeout,
            link_slots: recipe.link_slots,
            links: None,
            unlimited: Unlimited,
        };
        let mut store = Store::new(recipe.pre.engine(), state);
        store.limiter(|s| s.limiter());
        recipe
            .policy
            .instance(&mut store)
            .map_err(|e| e.in_module(&recipe.name))?;
        let instance = recipe.pre.instantiate(&mut store).map_err(|e| {
            let slots = &store.data().slots;
            classify(
                e,
                &recipe.name,
                slots,
                &recipe.policy,
                "instantiation",
                None,
            )
        })?;
        Ok(LiveInstance {
            store,
            instance,
            funcs: Vec::new(),
        })
    }

    /// Arms the limits: the module's own timeout from `now`, or less when `outer` (a
    /// caller's deadline) is nearer.
    fn arm(&mut self, recipe: &Recipe, now: Instant, outer: Option<Instant>) -> Result<()> {
        let mut budget = recipe.limits.timeout;
        if let Some(outer) = outer {
            let left = outer.saturating_duration_since(now);
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "module `{}`: the caller's deadline passed before the call started",
                        recipe.name
                    ),
                )
                .with_module(&*recipe.name));
            }
            budget = budget.min(left);
        }
        let state = self.store.data_mut();
        state.deadline = now + budget;
        recipe.policy.reset_states(&mut state.slots);
        recipe
            .policy
            .arm(&mut self.store, &CallCx { budget })
            .map_err(|e| e.in_module(&recipe.name))
    }

    fn func(&mut self, recipe: &Recipe, target: &Function) -> Result<Func> {
        if let Some(Some(f)) = self.funcs.get(target.id) {
            return Ok(*f);
        }
        let f = self
            .instance
            .get_func(&mut self.store, target.index)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "module `{}` has no function {}",
                    recipe.name, target.name
                ))
                .with_module(&*recipe.name)
                .with_export(&target.name)
            })?;
        if self.funcs.len() <= target.id {
            self.funcs.resize(target.id + 1, None);
        }
        self.funcs[target.id] = Some(f);
        Ok(f)
    }

    /// Calls one export, within `outer` when the call comes through a link.
    /// On error the instance must be dropped.
    pub(crate) fn call(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        let mut results = vec![Val::Bool(false); target.results.len()];
        self.call_into(recipe, target, args, &mut results, Instant::now(), outer)?;
        Ok(results)
    }

    /// Like [`LiveInstance::call`], writing the results into `results`, which has exactly
    /// as many entries as the function has results.
    pub(crate) fn call_into(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        args: &[Val],
        results: &mut [Val],
        now: Instant,
        outer: Option<Instant>,
    ) -> Result<()> {
        self.arm(recipe, now, outer)?;
        let func = self.func(recipe, target)?;
        let result = func.call(&mut self.store, args, results).map_err(|e| {
            let slots = &self.store.data().slots;
            classify(
                e,
                &recipe.name,
                slots,
                &recipe.policy,
                &target.name,
                Some(&target.name),
            )
        });
        recipe
            .policy
            .after_call(&mut self.store.data_mut().slots, &recipe.name);
        result
    }

    /// Drops a resource this instance owns (running the guest's destructor).
    pub(crate) fn drop_resource(&mut self, recipe: &Recipe, handle: ResourceAny) -> Result<()> {
        self.arm(recipe, Instant::now(), None)?;
        handle.resource_drop(&mut self.store).map_err(|e| {
            let slots = &self.store.data().slots;
            classify(
                e,
                &recipe.name,
                slots,
                &recipe.policy,
                "a resource destructor",
                None,
            )
        })
    }
}
