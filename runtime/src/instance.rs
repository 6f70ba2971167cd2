//! One live instance: its own Store (memory, tables, WASI context, limits) and nothing shared.
//!
//! A failed call poisons a Store in wasmtime, so an instance whose call failed is dropped,
//! never reused.

use std::sync::Arc;

use wasmtime::component::{ComponentExportIndex, Instance, ResourceTable, Val};
use wasmtime::{Store, Trap};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::capability::{InstanceCx, RunContext};
use crate::error::{Error, ErrorKind, Result};
use crate::limits::{MemoryLimiter, deadline_ticks};
use crate::module::Module;

/// The data of one Store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
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
    store: Store<HostState>,
    instance: Instance,
}

impl LiveInstance {
    /// Creates a new instance with a fresh Store and the module's grants and limits.
    pub(crate) fn new(module: &Module, run: Option<&RunContext>) -> Result<LiveInstance> {
        let cx = InstanceCx {
            module: &module.name,
            run,
        };
        let wasi = module.policy.wasi_ctx(&cx)?;
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(module.limits.memory),
        };
        let mut store = Store::new(module.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(deadline_ticks(module.limits.timeout, module.epoch_tick));
        let instance = module
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, &mut store, &module.name, "instantiation", module))?;
        Ok(LiveInstance { store, instance })
    }

    /// Calls one export. On error the instance must be dropped.
    pub(crate) fn call(
        &mut self,
        module: &Module,
        export: &ComponentExportIndex,
        what: &str,
        args: &[Val],
    ) -> Result<Vec<Val>> {
        self.store.data_mut().limiter.denied = false;
        self.store
            .set_epoch_deadline(deadline_ticks(module.limits.timeout, module.epoch_tick));
        let func = self
            .instance
            .get_func(&mut self.store, export)
            .ok_or_else(|| {
                Error::not_found(format!("module `{}` has no function {what}", module.name))
            })?;
        let mut results = vec![Val::Bool(false); func.ty(&self.store).results().len()];
        func.call(&mut self.store, args, &mut results)
            .map_err(|e| classify(e, &mut self.store, &module.name, what, module))?;
        Ok(results)
    }
}

/// Maps a wasmtime failure to a typed error that names the module and what it was doing.
fn classify(
    err: wasmtime::Error,
    store: &mut Store<HostState>,
    module_name: &Arc<str>,
    what: &str,
    module: &Module,
) -> Error {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Error::exit(exit.0, module_name);
    }
    let memory_denied = store.data().limiter.denied;
    let (kind, message) = match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            ErrorKind::Timeout,
            format!(
                "module `{module_name}`: {what} ran past its timeout of {:?}; raise [modules.{module_name}.limits] timeout if it needs longer",
                module.limits.timeout
            ),
        ),
        Some(Trap::OutOfFuel) => (
            ErrorKind::OutOfFuel,
            format!("module `{module_name}`: {what} ran out of fuel"),
        ),
        Some(Trap::StackOverflow) => (
            ErrorKind::StackOverflow,
            format!("module `{module_name}`: {what} overflowed its wasm stack"),
        ),
        _ if memory_denied => (
            ErrorKind::MemoryLimit,
            format!(
                "module `{module_name}`: {what} failed after memory growth past its limit of {} was refused; raise [modules.{module_name}.limits] memory if it needs more",
                crate::units::format_size(module.limits.memory)
            ),
        ),
        Some(_) => (
            ErrorKind::Trap,
            format!("module `{module_name}`: {what} trapped"),
        ),
        None => (
            ErrorKind::Trap,
            format!("module `{module_name}`: {what} failed"),
        ),
    };
    Error::new(kind, message).with_source(err)
}
