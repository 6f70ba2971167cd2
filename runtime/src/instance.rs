//! One live instance: its own Store (memory, tables, WASI context, limits) and nothing shared.
//!
//! A failed call poisons a Store in wasmtime, so an instance whose call failed is dropped,
//! never reused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Func, Instance, ResourceAny, ResourceTable, Val};
use wasmtime::{Store, Trap};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::capability::hooks::Guarded;
use crate::capability::quota::QuotaMap;
use crate::capability::stdio::OutputBudget;
use crate::capability::{InstanceCx, RunContext};
use crate::error::{Error, ErrorKind, Result};
use crate::limits::files::OpenFiles;
use crate::limits::{MemoryLimiter, deadline_ticks};
use crate::module::Module;
use crate::value::Function;

/// The data of one Store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    /// When the call now running must end; linked calls inherit it.
    pub(crate) deadline: Instant,
    /// Provider instances pinned to this instance, one per link that carries resources.
    pub(crate) sessions: Vec<Option<LiveInstance>>,
    /// Resource handles this instance holds on providers' resources, by proxy rep.
    pub(crate) proxies: HashMap<u32, Proxy>,
    next_proxy: u32,
    output: Arc<OutputBudget>,
    files: OpenFiles,
    quotas: QuotaMap,
}

impl Guarded for HostState {
    fn guards(&mut self) -> (&mut OpenFiles, &mut QuotaMap, &mut ResourceTable) {
        (&mut self.files, &mut self.quotas, &mut self.table)
    }
}

/// A provider's resource, seen by the importer through a host handle.
pub(crate) struct Proxy {
    /// The session (link slot) whose instance owns the resource.
    pub slot: usize,
    /// The handle in the provider's store.
    pub handle: ResourceAny,
}

impl HostState {
    /// Registers a provider handle and returns the rep of its new proxy.
    pub(crate) fn add_proxy(&mut self, slot: usize, handle: ResourceAny) -> u32 {
        self.next_proxy = self.next_proxy.wrapping_add(1);
        while self.proxies.contains_key(&self.next_proxy) {
            self.next_proxy = self.next_proxy.wrapping_add(1);
        }
        self.proxies.insert(self.next_proxy, Proxy { slot, handle });
        self.next_proxy
    }

    /// Forgets every proxy into a session that was discarded.
    pub(crate) fn drop_session(&mut self, slot: usize) {
        if let Some(s) = self.sessions.get_mut(slot) {
            *s = None;
        }
        self.proxies.retain(|_, p| p.slot != slot);
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

/// A live instance of a module.
pub(crate) struct LiveInstance {
    pub(crate) store: Store<HostState>,
    instance: Instance,
    /// Functions looked up in this instance, by [`Function::id`].
    funcs: Vec<Option<Func>>,
}

impl LiveInstance {
    /// Creates a new instance with a fresh Store and the module's grants and limits.
    pub(crate) fn new(module: &Module, run: Option<&RunContext>) -> Result<LiveInstance> {
        let output = Arc::new(OutputBudget::default());
        output.reset(module.limits.output);
        let cx = InstanceCx {
            module: &module.name,
            run,
            output: &output,
        };
        let wasi = module.policy.wasi_ctx(&cx)?;
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(module.limits.memory),
            deadline: Instant::now() + module.limits.timeout,
            sessions: (0..module.sessions).map(|_| None).collect(),
            proxies: HashMap::new(),
            next_proxy: 0,
            output,
            files: OpenFiles::new(module.limits.files),
            quotas: QuotaMap::new(module.policy.quotas().clone()),
        };
        let mut store = Store::new(module.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(deadline_ticks(module.limits.timeout, module.epoch_tick));
        if module.metered {
            // Start-up code runs on the same budget as a call.
            store
                .set_fuel(module.limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| {
                    Error::new(
                        ErrorKind::OutOfFuel,
                        format!("module `{}`: cannot set fuel", module.name),
                    )
                    .with_source(e)
                })?;
        }
        let instance = module
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, &mut store, "instantiation", module))?;
        Ok(LiveInstance {
            store,
            instance,
            funcs: Vec::new(),
        })
    }

    /// Arms the deadline: the module's own timeout from `now`, or less when `outer` (a
    /// caller's deadline) is nearer.
    fn arm(&mut self, module: &Module, now: Instant, outer: Option<Instant>) -> Result<()> {
        let mut budget = module.limits.timeout;
        if let Some(outer) = outer {
            let left = outer.saturating_duration_since(now);
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "module `{}`: the caller's deadline passed before the call started",
                        module.name
                    ),
                ));
            }
            budget = budget.min(left);
        }
        let state = self.store.data_mut();
        state.limiter.denied = false;
        state.limiter.table_denied = false;
        state.files.denied = false;
        state
            .quotas
            .denied
            .store(false, std::sync::atomic::Ordering::Relaxed);
        state.deadline = now + budget;
        state.output.reset(module.limits.output);
        self.store
            .set_epoch_deadline(deadline_ticks(budget, module.epoch_tick));
        self.store
            .set_hostcall_fuel(usize::try_from(module.limits.hostcall).unwrap_or(usize::MAX));
        if module.metered {
            let fuel = module.limits.fuel.unwrap_or(u64::MAX);
            self.store.set_fuel(fuel).map_err(|e| {
                Error::new(
                    ErrorKind::OutOfFuel,
                    format!("module `{}`: cannot set fuel", module.name),
                )
                .with_source(e)
            })?;
        }
        Ok(())
    }

    fn func(&mut self, module: &Module, target: &Function) -> Result<Func> {
        if let Some(Some(f)) = self.funcs.get(target.id) {
            return Ok(*f);
        }
        let f = self
            .instance
            .get_func(&mut self.store, target.index)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "module `{}` has no function {}",
                    module.name, target.name
                ))
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
        module: &Module,
        target: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        let mut results = vec![Val::Bool(false); target.results.len()];
        self.call_into(module, target, args, &mut results, Instant::now(), outer)?;
        Ok(results)
    }

    /// Like [`LiveInstance::call`], writing the results into `results`, which has exactly
    /// as many entries as the function has results.
    pub(crate) fn call_into(
        &mut self,
        module: &Module,
        target: &Function,
        args: &[Val],
        results: &mut [Val],
        now: Instant,
        outer: Option<Instant>,
    ) -> Result<()> {
        self.arm(module, now, outer)?;
        let func = self.func(module, target)?;
        let result = func
            .call(&mut self.store, args, results)
            .map_err(|e| classify(e, &mut self.store, &target.name, module));
        let output = &self.store.data().output;
        let (dropped, dropped_lines) = (output.dropped(), output.lines_dropped());
        if dropped > 0 || dropped_lines > 0 {
            tracing::warn!(
                target: "membrane::limits",
                module = %module.name,
                dropped,
                dropped_lines,
                limit = module.limits.output,
                "output past the module's per-call limits was dropped"
            );
        }
        result
    }

    /// Drops a resource this instance owns (running the guest's destructor).
    pub(crate) fn drop_resource(&mut self, module: &Module, handle: ResourceAny) -> Result<()> {
        self.arm(module, Instant::now(), None)?;
        handle
            .resource_drop(&mut self.store)
            .map_err(|e| classify(e, &mut self.store, "a resource destructor", module))
    }
}

/// Maps a wasmtime failure to a typed error that names the module and what it was doing.
fn classify(
    err: wasmtime::Error,
    store: &mut Store<HostState>,
    what: &str,
    module: &Module,
) -> Error {
    let name: &Arc<str> = &module.name;
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Error::exit(exit.0, name);
    }
    // A linked provider failed: keep its kind, and say which call of ours it broke.
    let err = match err.downcast::<Error>() {
        Ok(inner) => {
            let mut e = Error::new(
                inner.kind(),
                format!("module `{name}`: {what} failed in a linked call"),
            )
            .with_source(inner);
            e.upstream = true;
            return e;
        }
        Err(err) => err,
    };
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Error::new(
            ErrorKind::Overloaded,
            format!(
                "module `{name}`: {what}: every instance slot of the runtime is in use; raise Config::instance_slots or lower modules' `instances`"
            ),
        )
        .with_source(err);
    }
    let memory_denied = store.data().limiter.denied;
    let table_denied = store.data().limiter.table_denied;
    let files_denied = store.data().files.denied;
    let quota_denied = store
        .data()
        .quotas
        .denied
        .load(std::sync::atomic::Ordering::Relaxed);
    // wasmtime's error type for this is private; its message is the stable part.
    let hostcall_exhausted = err.chain().any(|c| {
        c.to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    });
    let (kind, message) = match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            ErrorKind::Timeout,
            format!(
                "module `{name}`: {what} ran past its deadline (timeout {}); raise [modules.{name}.limits] timeout if it needs longer",
                humantime::format_duration(round_ms(module.limits.timeout))
            ),
        ),
        Some(Trap::OutOfFuel) => (
            ErrorKind::OutOfFuel,
            format!("module `{name}`: {what} ran out of fuel"),
        ),
        Some(Trap::StackOverflow) => (
            ErrorKind::StackOverflow,
            format!("module `{name}`: {what} overflowed its wasm stack"),
        ),
        _ if hostcall_exhausted => (
            ErrorKind::HostcallLimit,
            format!(
                "module `{name}`: {what} tried to pass more than {} to the host in one call; raise [modules.{name}.limits] hostcall if it must",
                crate::units::format_size(module.limits.hostcall)
            ),
        ),
        _ if table_denied => (
            ErrorKind::TableLimit,
            format!(
                "module `{name}`: {what} failed after growing a table past {} elements was refused",
                crate::limits::MAX_TABLE_ELEMENTS
            ),
        ),
        _ if files_denied => (
            ErrorKind::FilesLimit,
            format!(
                "module `{name}`: {what} failed after opening more than {} files, directories or sockets was refused; \
                 close handles the module no longer needs, or raise [modules.{name}.limits] files",
                module.limits.files
            ),
        ),
        _ if quota_denied => (
            ErrorKind::DiskQuota,
            format!(
                "module `{name}`: {what} failed after a write past the disk quota of one of its grants was refused; \
                 raise `quota` or `quota_files` of that entry of [modules.{name}.grants] dirs"
            ),
        ),
        _ if memory_denied => (
            ErrorKind::MemoryLimit,
            format!(
                "module `{name}`: {what} failed after memory growth past its limit of {} was refused; raise [modules.{name}.limits] memory if it needs more",
                crate::units::format_size(module.limits.memory)
            ),
        ),
        Some(_) => (ErrorKind::Trap, format!("module `{name}`: {what} trapped")),
        None => (ErrorKind::Trap, format!("module `{name}`: {what} failed")),
    };
    Error::new(kind, message).with_source(crate::trap::GuestFailure::new(&err))
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
