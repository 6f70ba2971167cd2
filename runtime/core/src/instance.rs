//! One live instance: its own Store (memory, tables, WASI context, limits) and nothing
//! shared, built from a [`Recipe`].
//!
//! Every module is pre-instantiated in two flavours that differ only in how calls run:
//! - [`Flavour::Sync`]: calls run on the caller's thread (`App::call_blocking`, links from
//!   a synchronous caller); WASI is wasmtime-wasi's synchronous implementation, its blocking
//!   functions wait on the call's deadline too ([`crate::limits::blocking`]);
//! - [`Flavour::Async`]: calls run on a fiber on the caller's task (`App::call`, `App::run`,
//!   links from an async caller); WASI is the async implementation, the guest yields to the
//!   executor at every epoch tick, and dropping the call's future stops the guest wherever
//!   it is.
//!
//! A Store that ever ran async host functions cannot make synchronous calls again, hence two
//! flavours rather than one; both share the module's `instances` limit.
//!
//! A failed call poisons a Store in wasmtime, so an instance whose call failed is dropped,
//! never reused.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{
    ComponentNamedList, Func, Instance, InstancePre, Lift, Lower, ResourceAny, ResourceTable,
    TypedFunc, Val,
};
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::hooks::Guarded;
use crate::capability::http::{HttpGrant, OutboundHttp};
use crate::capability::quota::QuotaMap;
use crate::classify::classify;
use crate::error::{Error, ErrorKind, Result};
use crate::limits::blocking::Deadlined;
use crate::limits::files::OpenFiles;
use crate::limits::memory::MemoryLimiter;
use crate::metrics::{Capability, ModuleMetrics};
use crate::p3::Wasi;
use crate::spec::Limits;
use crate::unit::{CallCx, Controls, InstanceCx, Policy, RunContext, Slots};
use crate::value::Function;

/// How an instance's calls run (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Sync,
    Async,
    /// A WASI 0.3 instance: many calls at once, driven by its own task (`p3/driver.rs`),
    /// each with its own deadline.
    Concurrent,
}

/// The epoch ticks between two yields of a guest running on the async path.
pub const YIELD_TICKS: u64 = 1;

/// What an instance is built from: one compiled version of a module. Instances know their
/// recipe, never the module that owns it, so a module can hold two recipes at once.
pub struct Recipe {
    pub name: Arc<str>,
    /// The generation of the module this recipe is (`generation.rs`).
    pub generation: u64,
    /// Set when the generation's drain time is over: calls still running on the async path
    /// are ended at the next epoch tick.
    pub retired: Arc<std::sync::atomic::AtomicBool>,
    pub sync_pre: InstancePre<HostState>,
    pub async_pre: InstancePre<HostState>,
    /// Which WASI the component is built for: a 0.3 one's instances are all
    /// [`Flavour::Concurrent`], made from `async_pre` (on the 0.3 engine).
    pub wasi: Wasi,
    /// The module's capabilities and limits.
    pub policy: Policy,
    pub limits: Limits,
    /// How many links of the module pin a provider instance (links that carry resources).
    pub link_slots: usize,
    /// The module's metrics (denials are counted per module).
    pub metrics: Arc<ModuleMetrics>,
    /// Set when the module's instances run outside this process (a worker process, other
    /// hosts): no instance of it is ever made here.
    pub elsewhere: bool,
}

/// How long a call may run: until `deadline`, which is `time` from its start.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
    pub time: std::time::Duration,
}

impl Budget {
    /// The module's own timeout from `now`, or less when `outer` (a caller's deadline) is
    /// nearer; `Timeout` when that has passed already.
    pub fn new(recipe: &Recipe, now: Instant, outer: Option<Instant>) -> Result<Budget> {
        let own = now + recipe.limits.timeout;
        match outer {
            Some(outer) if outer < own => {
                let time = outer.saturating_duration_since(now);
                if time.is_zero() {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "module `{}`: the caller's deadline passed before the call started",
                            recipe.name
                        ),
                    )
                    .with_module(&*recipe.name));
                }
                Ok(Budget {
                    deadline: outer,
                    time,
                })
            }
            _ => Ok(Budget {
                deadline: own,
                time: recipe.limits.timeout,
            }),
        }
    }
}

/// The data of one Store.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The states of the instance's capabilities and limits.
    pub slots: Slots,
    /// When the call now running must end; linked calls inherit it. In a
    /// [`Flavour::Concurrent`] instance, the latest deadline of the calls in flight (each
    /// call's own is in `tasks`).
    pub deadline: Instant,
    /// The deadline of each call in flight in a [`Flavour::Concurrent`] instance, by the
    /// guest task that serves it (empty in other instances).
    #[cfg(feature = "p3")]
    pub tasks: std::collections::HashMap<wasmtime::component::GuestTaskId, Instant>,
    /// How the instance's calls run.
    pub flavour: Flavour,
    /// How many link slots the instance has (see [`Recipe::link_slots`]).
    pub link_slots: usize,
    /// Link state (sessions and resource proxies), kept by the link layer.
    pub links: Option<Box<dyn Any + Send>>,
    /// Stands in when no memory limit is configured.
    unlimited: Unlimited,
    /// `wasi:http`: the context, and the outbound policy (`grants.http`).
    http_ctx: WasiHttpCtx,
    http: OutboundHttp,
}

impl HostState {
    /// The instance's resource table, the states of its units and its module's metrics,
    /// at once (for capabilities whose handles live in the table, whose grant lives in a
    /// state, and whose denials are counted).
    pub fn table_and_slots(&mut self) -> (&mut ResourceTable, &Slots, &Arc<ModuleMetrics>) {
        (&mut self.table, &self.slots, self.http.metrics_arc())
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
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

    fn socket_denied(&mut self) {
        self.http.metrics().denied(
            Capability::Network,
            &"a TCP socket (the module has no grants.network)",
        );
    }
}

#[cfg(feature = "p3")]
impl crate::p3::deadlines::Deadlines for HostState {
    fn deadlines(
        &mut self,
    ) -> (
        &mut std::collections::HashMap<wasmtime::component::GuestTaskId, Instant>,
        &mut Instant,
    ) {
        (&mut self.tasks, &mut self.deadline)
    }
}

impl Deadlined for HostState {
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
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
    fn yields(&self) -> Option<u64> {
        (self.data().flavour != Flavour::Sync).then_some(YIELD_TICKS)
    }

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
pub struct LiveInstance {
    pub store: Store<HostState>,
    /// The generation of the recipe the instance was made from.
    pub generation: u64,
    instance: Instance,
    /// Function handles looked up in this instance, by [`Function::id`].
    funcs: Vec<Option<Func>>,
    /// A typed handle of the export a server calls on every request, type-checked once
    /// (`incoming.rs` keeps its HTTP handler here; the type is that file's concern).
    pub(crate) typed_handler: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl LiveInstance {
    /// A new Store with the recipe's grants and limits, not yet instantiated.
    fn store(
        recipe: &Recipe,
        run: Option<&RunContext>,
        flavour: Flavour,
    ) -> Result<Store<HostState>> {
        if recipe.wasi == Wasi::P3 && flavour == Flavour::Sync {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{0}` is a WASI 0.3 module: its calls run on the async path \
                     (App::call, links, HTTP routes), not on the caller's thread (typed handles \
                     and resource sessions of WASI 0.3 modules are not supported yet)",
                    recipe.name
                ),
            )
            .with_module(&*recipe.name));
        }
        if recipe.elsewhere {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{0}` runs in a worker process (placement = \"process\"), which serves \
                     calls with dynamic values (App::call, links without resources) but not this kind \
                     of call (typed handles, resource sessions, HTTP routes, `run`); set \
                     [modules.{0}] placement = \"isolated\" for it",
                    recipe.name
                ),
            )
            .with_module(&*recipe.name)
            .with_key(format!("modules.{}.placement", recipe.name)));
        }
        let slots = recipe.policy.new_slots();
        let cx = InstanceCx {
            module: &recipe.name,
            run,
            slots: &slots,
            metrics: &recipe.metrics,
        };
        let wasi = recipe.policy.wasi_ctx(&cx)?;
        let mut table = ResourceTable::new();
        if flavour == Flavour::Concurrent {
            table.set_max_capacity(crate::p3::handle_cap(&recipe.limits));
        }
        let state = HostState {
            wasi,
            table,
            slots,
            deadline: Instant::now() + recipe.limits.timeout,
            #[cfg(feature = "p3")]
            tasks: Default::default(),
            flavour,
            link_slots: recipe.link_slots,
            links: None,
            unlimited: Unlimited,
            http_ctx: WasiHttpCtx::new(),
            http: OutboundHttp::new(recipe.policy.get::<HttpGrant>(), recipe.metrics.clone()),
        };
        let mut store = Store::new(recipe.async_pre.engine(), state);
        store.limiter(|s| s.limiter());
        #[cfg(feature = "p3")]
        if flavour == Flavour::Concurrent {
            crate::p3::deadlines::watch(&mut store, recipe.retired.clone(), YIELD_TICKS);
        }
        if flavour == Flavour::Async {
            // Yield to the executor at every tick, and stop at the deadline, or when the
            // generation was retired after its drain time.
            let retired = recipe.retired.clone();
            store.epoch_deadline_callback(move |store| {
                if retired.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(wasmtime::Error::new(crate::classify::Retired));
                }
                Ok(if Instant::now() >= store.data().deadline {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Yield(YIELD_TICKS)
                })
            });
        }
        recipe
            .policy
            .instance(&mut store)
            .map_err(|e| e.in_module(&recipe.name))?;
        Ok(store)
    }

    fn failed(recipe: &Recipe, store: &Store<HostState>, e: wasmtime::Error) -> Error {
        let slots = &store.data().slots;
        classify(
            e,
            &recipe.name,
            slots,
            &recipe.policy,
            "instantiation",
            None,
        )
    }

    /// Creates a new instance for synchronous calls.
    pub fn new(recipe: &Recipe, run: Option<&RunContext>) -> Result<LiveInstance> {
        let mut store = Self::store(recipe, run, Flavour::Sync)?;
        let instance = recipe
            .sync_pre
            .instantiate(&mut store)
            .map_err(|e| Self::failed(recipe, &store, e))?;
        Ok(LiveInstance {
            store,
            generation: recipe.generation,
            instance,
            funcs: Vec::new(),
            typed_handler: None,
        })
    }

    /// Creates a new instance for calls on a fiber (a [`Flavour::Concurrent`] one for a
    /// WASI 0.3 module).
    pub async fn new_async(recipe: &Recipe, run: Option<&RunContext>) -> Result<LiveInstance> {
        let flavour = match recipe.wasi {
            Wasi::P2 => Flavour::Async,
            Wasi::P3 => Flavour::Concurrent,
        };
        let mut store = Self::store(recipe, run, flavour)?;
        let instance = recipe.async_pre.instantiate_async(&mut store).await;
        let instance = instance.map_err(|e| Self::failed(recipe, &store, e))?;
        Ok(LiveInstance {
            store,
            generation: recipe.generation,
            instance,
            funcs: Vec::new(),
            typed_handler: None,
        })
    }

    /// The wasmtime instance (for calls made inside its Store's event loop).
    pub fn handle(&self) -> Instance {
        self.instance
    }

    /// How this instance's calls run.
    pub fn flavour(&self) -> Flavour {
        self.store.data().flavour
    }

    /// Arms the limits for a call with `budget`.
    pub fn arm(&mut self, recipe: &Recipe, budget: Budget) -> Result<()> {
        let state = self.store.data_mut();
        state.deadline = budget.deadline;
        recipe.policy.reset_states(&mut state.slots);
        recipe
            .policy
            .arm(
                &mut self.store,
                &CallCx {
                    budget: budget.time,
                },
            )
            .map_err(|e| e.in_module(&recipe.name))
    }

    /// The instance's handle of an export, looked up once.
    pub fn func(&mut self, recipe: &Recipe, target: &Function) -> Result<Func> {
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

    pub fn finished(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        r: wasmtime::Result<()>,
    ) -> Result<()> {
        let result = r.map_err(|e| {
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

    /// Calls one export, within `outer` when the call comes through a link.
    /// On error the instance must be dropped.
    pub fn call(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        let budget = Budget::new(recipe, Instant::now(), outer)?;
        let mut results = vec![Val::Bool(false); target.results.len()];
        self.call_into(recipe, target, args, &mut results, budget)?;
        Ok(results)
    }

    /// Like [`LiveInstance::call`], writing the results into `results`, which has exactly
    /// as many entries as the function has results. Synchronous instances only.
    pub fn call_into(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        args: &[Val],
        results: &mut [Val],
        budget: Budget,
    ) -> Result<()> {
        self.arm(recipe, budget)?;
        let func = self.func(recipe, target)?;
        let r = func.call(&mut self.store, args, results);
        self.finished(recipe, target, r)
    }

    /// [`LiveInstance::call_into`] on a fiber, for async instances. The guest yields at
    /// every epoch tick; dropping the future stops it (the instance must then be dropped).
    pub async fn call_into_async(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        args: &[Val],
        results: &mut [Val],
        budget: Budget,
    ) -> Result<()> {
        self.arm(recipe, budget)?;
        let func = self.func(recipe, target)?;
        // Wasm code stops at the deadline by the epoch callback, host calls that wait by
        // their own deadline (`limits::blocking`): no timer per call.
        let r = func.call_async(&mut self.store, args, results).await;
        self.finished(recipe, target, r)
    }

    /// [`LiveInstance::call_into_async`] returning the results.
    pub async fn call_async(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        let budget = Budget::new(recipe, Instant::now(), outer)?;
        let mut results = vec![Val::Bool(false); target.results.len()];
        self.call_into_async(recipe, target, args, &mut results, budget)
            .await?;
        Ok(results)
    }

    /// Checks once that the export `target` has the Rust types `P` and `R` (see
    /// [`LiveInstance::call_typed`]).
    pub fn check_typed<P, R>(
        &mut self,
        recipe: &Recipe,
        target: &Function,
    ) -> Result<std::result::Result<(), wasmtime::Error>>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let func = self.func(recipe, target)?;
        Ok(func.typed::<P, R>(&self.store).map(|_| ()))
    }

    fn typed<P, R>(&mut self, recipe: &Recipe, target: &Function) -> Result<TypedFunc<P, R>>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let func = self.func(recipe, target)?;
        // SAFETY: `P` and `R` were checked against this export when the typed handle was
        // made (`check_typed`, on an instance of the same component: every instance of a
        // component has the same function types), so the typecheck that `Func::typed` would
        // repeat on every call is known to pass.
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }

    fn typed_finished<R>(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        r: wasmtime::Result<R>,
    ) -> Result<R> {
        let result = r.map_err(|e| {
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

    /// Calls an export with Rust values, no `Val` on the way. Synchronous instances only.
    pub fn call_typed<P, R>(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        params: P,
        budget: Budget,
    ) -> Result<R>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        self.arm(recipe, budget)?;
        let typed = self.typed::<P, R>(recipe, target)?;
        let r = typed.call(&mut self.store, params);
        self.typed_finished(recipe, target, r)
    }

    /// [`LiveInstance::call_typed`] on a fiber, for async instances.
    pub async fn call_typed_async<P, R>(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        params: P,
        budget: Budget,
    ) -> Result<R>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.arm(recipe, budget)?;
        let typed = self.typed::<P, R>(recipe, target)?;
        let r = typed.call_async(&mut self.store, params).await;
        self.typed_finished(recipe, target, r)
    }

    /// Drops a resource this instance owns (running the guest's destructor).
    pub fn drop_resource(&mut self, recipe: &Recipe, handle: ResourceAny) -> Result<()> {
        self.arm(recipe, Budget::new(recipe, Instant::now(), None)?)?;
        handle
            .resource_drop(&mut self.store)
            .map_err(|e| self.destructor_failed(recipe, e))
    }

    /// [`LiveInstance::drop_resource`] on a fiber, for async instances.
    pub async fn drop_resource_async(
        &mut self,
        recipe: &Recipe,
        handle: ResourceAny,
    ) -> Result<()> {
        self.arm(recipe, Budget::new(recipe, Instant::now(), None)?)?;
        let r = handle.resource_drop_async(&mut self.store).await;
        r.map_err(|e| self.destructor_failed(recipe, e))
    }

    fn destructor_failed(&self, recipe: &Recipe, e: wasmtime::Error) -> Error {
        let slots = &self.store.data().slots;
        classify(
            e,
            &recipe.name,
            slots,
            &recipe.policy,
            "a resource destructor",
            None,
        )
    }
}
