//! The runtime's linkers, one per flavour: WASI and its wrappers, and the interfaces
//! capabilities serve (`wasi:config`, `wasi:keyvalue`). Each module adds its links to
//! clones of them. (Apart from `instance.rs`, which the capabilities' host functions use.)

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::capability::hooks;
use crate::instance::HostState;
use crate::limits::blocking;

/// The runtime's linkers, one per flavour: WASI and its wrappers. Each module adds its links
/// to clones of them.
#[derive(Clone)]
pub struct Linkers {
    /// For instances whose calls block the calling thread.
    pub sync: Linker<HostState>,
    /// For instances whose calls run on a fiber of the caller's task.
    pub async_: Linker<HostState>,
}

impl Linkers {
    /// Both linkers, with everything every module may import.
    pub fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        let mut sync = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut sync)?;
        hooks::sync::add_to_linker(&mut sync)?;
        blocking::add_to_linker(&mut sync)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut sync)?;
        crate::capability::config::add_to_linker(&mut sync)?;
        crate::capability::keyvalue::add_to_linker(&mut sync)?;
        crate::capability::keyvalue_draft2::add_to_linker(&mut sync)?;
        let mut async_ = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut async_)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut async_)?;
        hooks::async_::add_to_linker(&mut async_)?;
        blocking::add_to_linker_async(&mut async_)?;
        crate::capability::config::add_to_linker(&mut async_)?;
        crate::capability::keyvalue::add_to_linker(&mut async_)?;
        crate::capability::keyvalue_draft2::add_to_linker(&mut async_)?;
        Ok(Linkers { sync, async_ })
    }
}
